"""Wire constants shared by the server and every device: versions, headers and error codes.

This module is the single definition of the protocol's vocabulary. The server imports it;
it imports nothing from the server. See ``docs/protocol.md`` for the full specification.
"""

from __future__ import annotations

from enum import StrEnum

#: Version of the sync protocol spoken by this code. Every request carries it.
PROTOCOL_VERSION = 1
#: Oldest protocol version the server still answers.
MIN_PROTOCOL_VERSION = 1

#: HTTP header that carries the protocol version on every request and response.
HEADER_PROTOCOL = "Muster-Protocol"
HEADER_DEVICE = "Muster-Device"
HEADER_TIMESTAMP = "Muster-Timestamp"
HEADER_SIGNATURE = "Muster-Signature"


class ErrorCode(StrEnum):
    """Stable error codes of the JSON API and the sync protocol.

    Codes never change meaning once published; new ones may be added. Each is documented in
    ``docs/errors.md``.
    """

    # Generic HTTP level
    BAD_REQUEST = "bad_request"
    VALIDATION_FAILED = "validation_failed"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    CONFLICT = "conflict"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"
    SERVICE_UNAVAILABLE = "service_unavailable"
    # Authentication of staff
    INVALID_CREDENTIALS = "invalid_credentials"
    TOKEN_EXPIRED = "token_expired"
    # Rosters
    ROSTER_INVALID = "roster_invalid"
    ROSTER_UNREADABLE = "roster_unreadable"
    # Sync protocol
    PROTOCOL_VERSION_UNSUPPORTED = "protocol_version_unsupported"
    ENROLMENT_CODE_INVALID = "enrolment_code_invalid"
    DEVICE_UNKNOWN = "device_unknown"
    DEVICE_REVOKED = "device_revoked"
    SIGNATURE_INVALID = "signature_invalid"
    CURSOR_RESET = "cursor_reset"
    # Reconciliation
    STALE_RESOLUTION = "stale_resolution"
    CATCHING_UP = "catching_up"
    # Per-record answers inside a push
    ENVELOPE_MALFORMED = "envelope_malformed"
    ENVELOPE_UNAUTHENTIC = "envelope_unauthentic"
    SESSION_UNKNOWN = "session_unknown"
    KEY_UNKNOWN = "key_unknown"
    EVENT_INVALID = "event_invalid"
    EQUIVOCATION = "equivocation"
    WRONG_OPERATION = "wrong_operation"
