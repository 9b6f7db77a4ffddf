"""Cryptographic wire layer of the sync protocol: session blobs, event envelopes, signatures, vault.

Every byte layout here is specified in ``docs/protocol.md (Part B)``; this module is its reference
implementation. Only primitives that browsers' WebCrypto also offers are used: X25519, Ed25519,
HKDF-SHA256 and AES-256-GCM (HPKE, RFC 9180 base mode, is built from those). The one exception is
Argon2id for the on-device vault, which never crosses the wire.

Errors: everything that fails on untrusted bytes raises a :class:`CryptoError` subclass:
:class:`MalformedError` when the bytes do not parse, :class:`AuthenticityError` when a tag or a
signature does not verify. Messages never contain the data being processed. Programming errors
by the caller (a reused sequence number, an invalid key id) raise :class:`ValueError`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import struct
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

__all__ = [
    "AuthenticityError",
    "CryptoError",
    "DeviceKeys",
    "EnvelopeHeader",
    "MalformedError",
    "SealingSession",
    "ServerKey",
    "SessionInfo",
    "Vault",
    "b64d",
    "b64e",
    "open_envelope",
    "open_from_server",
    "open_session",
    "parse_envelope_header",
    "parse_session_header",
    "request_string_to_sign",
    "seal_to_device",
    "sign_request",
    "verify_request",
]

# --- constants (see docs/protocol.md (Part B)) -------------------------------------------------

SESSION_MAGIC = b"MSS1"
SESSION_INFO_LABEL = b"muster/session/v1"
EVENT_AAD_LABEL = b"muster/event/v1"
PULL_INFO_LABEL = b"muster/pull/v1"
REQUEST_PREFIX = b"MUSTER-REQ-1\n"
VAULT_CHECK_AAD = b"muster/vault-check/v1"
VAULT_CHECK_PLAINTEXT = b"muster vault check v1"

ENVELOPE_VERSION = 1
KEY_LEN = 32
UUID_LEN = 16
SESSION_ID_LEN = 16
TAG_LEN = 16
NONCE_LEN = 12
HPKE_ENC_LEN = 32
WRAPPED_KEY_LEN = HPKE_ENC_LEN + KEY_LEN + TAG_LEN  # 80
SIGNATURE_LEN = 64
KID_MAX_LEN = 64
SESSION_FIXED_LEN = 45  # magic, session_id, device_id, created_ms, L
ENVELOPE_HEADER_LEN = 41
ENVELOPE_MIN_LEN = ENVELOPE_HEADER_LEN + TAG_LEN
SEALED_MIN_LEN = HPKE_ENC_LEN + TAG_LEN
U64_MAX = 2**64 - 1

_HPKE = Suite(KEM.X25519, KDF.HKDF_SHA256, AEAD.AES_256_GCM)
_KID_RE = re.compile(r"[\x21-\x7e]{1,64}")
_B64_RE = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_U64 = struct.Struct(">Q")


# --- errors ----------------------------------------------------------------------------------


class CryptoError(Exception):
    """Root of every failure to parse or authenticate protocol bytes."""


class MalformedError(CryptoError):
    """The bytes do not parse: wrong length, magic, version or field value."""


class AuthenticityError(CryptoError):
    """A tag or signature does not verify, or the wrong key was used."""


# --- base64url -------------------------------------------------------------------------------


def b64e(data: bytes) -> str:
    """Encode bytes as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Decode base64url text, with or without padding; raise MalformedError on anything else.

    Only the canonical encoding of a value is accepted (unused trailing bits must be zero), so
    every byte string has exactly one accepted unpadded spelling.
    """
    if not isinstance(text, str) or not _B64_RE.fullmatch(text):
        raise MalformedError("not base64url")
    bare = text.rstrip("=")
    if len(text) != len(bare) and len(text) % 4:
        raise MalformedError("bad base64url padding")
    try:
        data = base64.urlsafe_b64decode(bare + "=" * (-len(bare) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedError("not base64url") from exc
    if b64e(data) != bare:
        raise MalformedError("non-canonical base64url")
    return data


# --- small helpers ---------------------------------------------------------------------------


def _u64(value: int) -> bytes:
    """Encode an unsigned 64-bit integer big-endian; ValueError if out of range."""
    if not 0 <= value <= U64_MAX:
        raise ValueError("value does not fit in u64")
    return _U64.pack(value)


def _check_kid(kid: str) -> bytes:
    """Return a server key id as ASCII bytes; ValueError unless 1..64 printable ASCII chars."""
    if not _KID_RE.fullmatch(kid):
        raise ValueError("server key id must be 1..64 printable ASCII characters")
    return kid.encode("ascii")


def _x25519_public(raw: bytes) -> X25519PublicKey:
    """Load a raw 32-byte X25519 public key; MalformedError if it is not one."""
    if len(raw) != KEY_LEN:
        raise MalformedError("X25519 public key must be 32 bytes")
    return X25519PublicKey.from_public_bytes(bytes(raw))


def _ed25519_public(raw: bytes) -> Ed25519PublicKey:
    """Load a raw 32-byte Ed25519 public key; MalformedError if it is not one."""
    if len(raw) != KEY_LEN:
        raise MalformedError("Ed25519 public key must be 32 bytes")
    try:
        return Ed25519PublicKey.from_public_bytes(bytes(raw))
    except ValueError as exc:
        raise MalformedError("invalid Ed25519 public key") from exc


def _hpke_seal(plaintext: bytes, public: X25519PublicKey, info: bytes) -> bytes:
    """HPKE base-mode single-shot seal; returns enc || ciphertext || tag."""
    return _HPKE.encrypt(plaintext, public, info=info)


def _hpke_open(sealed: bytes, private: X25519PrivateKey, info: bytes) -> bytes:
    """HPKE base-mode single-shot open; AuthenticityError on any failure."""
    try:
        return _HPKE.decrypt(sealed, private, info=info)
    except (InvalidTag, ValueError) as exc:
        raise AuthenticityError("HPKE open failed") from exc


# --- keys ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceKeys:
    """A device's long-term key pair: Ed25519 for signing, X25519 for receiving sealed data."""

    signing: Ed25519PrivateKey = field(repr=False)
    encryption: X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> DeviceKeys:
        """Create fresh random device keys."""
        return cls(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    def to_bytes(self) -> bytes:
        """Serialise as 64 raw bytes: Ed25519 seed (32) || X25519 private key (32)."""
        return self.signing.private_bytes_raw() + self.encryption.private_bytes_raw()

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceKeys:
        """Load keys serialised by :meth:`to_bytes`; MalformedError unless exactly 64 bytes."""
        if len(data) != 2 * KEY_LEN:
            raise MalformedError("device keys must be 64 bytes")
        return cls(
            Ed25519PrivateKey.from_private_bytes(data[:KEY_LEN]),
            X25519PrivateKey.from_private_bytes(data[KEY_LEN:]),
        )

    @property
    def signing_public_raw(self) -> bytes:
        """Return the raw 32-byte Ed25519 public key."""
        return self.signing.public_key().public_bytes_raw()

    @property
    def encryption_public_raw(self) -> bytes:
        """Return the raw 32-byte X25519 public key."""
        return self.encryption.public_key().public_bytes_raw()


@dataclass(frozen=True)
class ServerKey:
    """One of the server's X25519 session-wrapping keys, named by its key id (kid)."""

    kid: str
    private: X25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        """Validate the key id."""
        _check_kid(self.kid)

    @classmethod
    def generate(cls, kid: str) -> ServerKey:
        """Create a fresh random server key with the given key id."""
        return cls(kid, X25519PrivateKey.generate())

    @classmethod
    def from_private_raw(cls, kid: str, raw: bytes) -> ServerKey:
        """Load a server key from its raw 32-byte X25519 private key."""
        if len(raw) != KEY_LEN:
            raise MalformedError("X25519 private key must be 32 bytes")
        return cls(kid, X25519PrivateKey.from_private_bytes(raw))

    @property
    def private_raw(self) -> bytes:
        """Return the raw 32-byte X25519 private key (for storage by the server only)."""
        return self.private.private_bytes_raw()

    @property
    def public_raw(self) -> bytes:
        """Return the raw 32-byte X25519 public key that devices pin under this kid."""
        return self.private.public_key().public_bytes_raw()


# --- capture sessions ------------------------------------------------------------------------


def _session_header(session_id: bytes, device_id: uuid.UUID, created_ms: int, kid: bytes) -> bytes:
    """Build blob[0:45+L]: magic, session id, device id, created_ms, L, kid."""
    return b"".join(
        (SESSION_MAGIC, session_id, device_id.bytes, _u64(created_ms), bytes([len(kid)]), kid)
    )


def _envelope_header(event_id: uuid.UUID, session_id: bytes, seq: int) -> bytes:
    """Build envelope[0:41]: version, event id, session id, seq."""
    return b"".join((bytes([ENVELOPE_VERSION]), event_id.bytes, session_id, _u64(seq)))


def _event_nonce(seq: int) -> bytes:
    """Return the AES-GCM nonce of an event: 4 zero bytes || seq (u64)."""
    return b"\x00\x00\x00\x00" + _u64(seq)


def _event_aad(header: bytes, device_id: uuid.UUID) -> bytes:
    """Return the AES-GCM associated data of an event."""
    return EVENT_AAD_LABEL + header + device_id.bytes


class SealingSession:
    """A device's capture session: seals events under one in-memory key K.

    K is random, wrapped once to the server in :attr:`blob`, and never leaves this object; once
    the object is discarded the device can no longer read what it sealed. Each ``seq`` may be
    sealed at most once per session (the AES-GCM nonce is derived from it). If a sealed envelope
    fails to commit, discard the session and start a new one rather than resealing that seq.
    """

    __slots__ = ("_aead", "_used", "blob", "device_id", "session_id")

    def __init__(self, device_id: uuid.UUID, session_id: bytes, blob: bytes, key: bytes) -> None:
        """Hold a session's identity, its blob and its key; use :meth:`start` to create one."""
        self.device_id = device_id
        self.session_id = session_id
        self.blob = blob
        self._aead: AESGCM | None = AESGCM(key)
        self._used: set[int] = set()

    @classmethod
    def start(
        cls,
        device_id: uuid.UUID,
        keys: DeviceKeys,
        server_kid: str,
        server_public_raw: bytes,
        now_ms: int,
    ) -> SealingSession:
        """Start a session: draw K and a session id, wrap K to the server, sign the blob."""
        kid = _check_kid(server_kid)
        server_public = _x25519_public(server_public_raw)
        session_id = os.urandom(SESSION_ID_LEN)
        key = os.urandom(KEY_LEN)
        header = _session_header(session_id, device_id, now_ms, kid)
        wrapped = _hpke_seal(key, server_public, SESSION_INFO_LABEL + header)
        signed = header + wrapped
        blob = signed + keys.signing.sign(signed)
        return cls(device_id, session_id, blob, key)

    @property
    def discarded(self) -> bool:
        """Tell whether :meth:`discard` has been called."""
        return self._aead is None

    def discard(self) -> None:
        """Drop the key so nothing more can be sealed in this session."""
        self._aead = None

    def seal(self, event_id: uuid.UUID, seq: int, plaintext: bytes) -> bytes:
        """Seal one event body into an envelope; ValueError on seq < 1, reuse, or discard."""
        if self._aead is None:
            raise ValueError("session has been discarded")
        if not 1 <= seq <= U64_MAX:
            raise ValueError("seq must be in 1..2**64-1")
        if seq in self._used:
            raise ValueError("seq already sealed in this session")
        header = _envelope_header(event_id, self.session_id, seq)
        self._used.add(seq)
        return header + self._aead.encrypt(
            _event_nonce(seq), plaintext, _event_aad(header, self.device_id)
        )


@dataclass(frozen=True)
class SessionInfo:
    """An opened session blob: who made it, when, under which server key, and its key K."""

    session_id: bytes
    device_id: uuid.UUID
    created_ms: int
    server_kid: str
    key: bytes = field(repr=False)

    @cached_property
    def aead(self) -> AESGCM:
        """AES-GCM with K, made once per session (a server opens thousands of its events)."""
        return AESGCM(self.key)


def parse_session_header(blob: bytes) -> tuple[bytes, uuid.UUID, int, str]:
    """Parse a session blob without crypto: (session_id, device_id, created_ms, server kid).

    Checks magic, the kid length and alphabet, and the exact total length. Raises MalformedError.
    The values are unauthenticated until :func:`open_session` succeeds.
    """
    blob = bytes(blob)
    if len(blob) < SESSION_FIXED_LEN or blob[:4] != SESSION_MAGIC:
        raise MalformedError("not a session blob")
    kid_len = blob[44]
    if not 1 <= kid_len <= KID_MAX_LEN:
        raise MalformedError("bad server key id length")
    if len(blob) != SESSION_FIXED_LEN + kid_len + WRAPPED_KEY_LEN + SIGNATURE_LEN:
        raise MalformedError("bad session blob length")
    kid_bytes = blob[SESSION_FIXED_LEN : SESSION_FIXED_LEN + kid_len]
    if not _KID_RE.fullmatch(kid_bytes.decode("latin-1")):
        raise MalformedError("bad server key id")
    (created_ms,) = _U64.unpack(blob[36:44])
    return blob[4:20], uuid.UUID(bytes=blob[20:36]), created_ms, kid_bytes.decode("ascii")


def open_session(
    blob: bytes, device_signing_public_raw: bytes, server_private: X25519PrivateKey
) -> SessionInfo:
    """Verify a session blob's device signature, then unwrap K with the server's private key.

    Raises MalformedError if the blob does not parse, AuthenticityError if the signature or the
    HPKE tag fails (wrong device key, wrong server key, any altered byte).
    """
    blob = bytes(blob)
    session_id, device_id, created_ms, kid = parse_session_header(blob)
    signed, signature = blob[:-SIGNATURE_LEN], blob[-SIGNATURE_LEN:]
    try:
        _ed25519_public(device_signing_public_raw).verify(signature, signed)
    except InvalidSignature as exc:
        raise AuthenticityError("session signature does not verify") from exc
    header_len = len(signed) - WRAPPED_KEY_LEN
    key = _hpke_open(signed[header_len:], server_private, SESSION_INFO_LABEL + signed[:header_len])
    return SessionInfo(session_id, device_id, created_ms, kid, key)


# --- event envelopes -------------------------------------------------------------------------


@dataclass(frozen=True)
class EnvelopeHeader:
    """The cleartext header of an event envelope (unauthenticated until opened)."""

    version: int
    event_id: uuid.UUID
    session_id: bytes
    seq: int


def parse_envelope_header(envelope: bytes) -> EnvelopeHeader:
    """Parse an envelope's 41-byte header without crypto; MalformedError if it cannot be one."""
    envelope = bytes(envelope)
    if len(envelope) < ENVELOPE_MIN_LEN:
        raise MalformedError("envelope too short")
    if envelope[0] != ENVELOPE_VERSION:
        raise MalformedError("unsupported envelope version")
    (seq,) = _U64.unpack(envelope[33:41])
    if seq < 1:
        raise MalformedError("envelope seq must be at least 1")
    return EnvelopeHeader(envelope[0], uuid.UUID(bytes=envelope[1:17]), envelope[17:33], seq)


def open_envelope(
    envelope: bytes, session: SessionInfo, header: EnvelopeHeader | None = None
) -> tuple[EnvelopeHeader, bytes]:
    """Authenticate and decrypt an envelope with its session's key: (header, plaintext).

    ``header``: ``parse_envelope_header`` of these very bytes, when the caller has it already
    (the tag covers the header's bytes as they are in ``envelope`` either way).
    MalformedError if it does not parse or names another session; AuthenticityError if the tag
    fails (altered header or body, wrong key, or a session of another device).
    """
    envelope = bytes(envelope)
    if header is None:
        header = parse_envelope_header(envelope)
    if header.session_id != session.session_id:
        raise MalformedError("envelope belongs to another session")
    raw_header = envelope[:ENVELOPE_HEADER_LEN]
    try:
        plaintext = session.aead.decrypt(
            _event_nonce(header.seq),
            envelope[ENVELOPE_HEADER_LEN:],
            _event_aad(raw_header, session.device_id),
        )
    except InvalidTag as exc:
        raise AuthenticityError("envelope does not authenticate") from exc
    return header, plaintext


# --- request signing -------------------------------------------------------------------------


def _ascii_field(value: str, name: str) -> bytes:
    """Encode a request field as ASCII; ValueError on non-ASCII or control characters."""
    if not value or not value.isascii() or any(ord(c) < 0x21 or ord(c) == 0x7F for c in value):
        raise ValueError(f"request {name} must be non-empty printable ASCII without spaces")
    return value.encode("ascii")


def request_string_to_sign(
    method: str, path: str, device_id: uuid.UUID, timestamp_ms: int, body: bytes
) -> bytes:
    """Build the bytes a device signs for one HTTP request (see docs/protocol.md (Part B))."""
    if timestamp_ms < 0:
        raise ValueError("timestamp must be non-negative")
    return b"\n".join(
        (
            REQUEST_PREFIX + _ascii_field(method, "method"),
            _ascii_field(path, "path"),
            str(device_id).encode("ascii"),
            str(int(timestamp_ms)).encode("ascii"),
            hashlib.sha256(body).hexdigest().encode("ascii"),
        )
    )


def sign_request(
    keys: DeviceKeys,
    method: str,
    path: str,
    device_id: uuid.UUID,
    timestamp_ms: int,
    body: bytes,
) -> str:
    """Sign a request with the device's Ed25519 key; returns the Muster-Signature value."""
    message = request_string_to_sign(method, path, device_id, timestamp_ms, body)
    return b64e(keys.signing.sign(message))


def verify_request(
    signing_public_raw: bytes,
    signature_b64: str,
    method: str,
    path: str,
    device_id: uuid.UUID,
    timestamp_ms: int,
    body: bytes,
) -> None:
    """Verify a request signature; raises AuthenticityError on any failure, including bad input.

    Freshness of ``timestamp_ms`` (clock skew, replay window) is the caller's policy.
    """
    try:
        message = request_string_to_sign(method, path, device_id, timestamp_ms, body)
        signature = b64d(signature_b64)
        public = _ed25519_public(signing_public_raw)
    except (ValueError, MalformedError) as exc:
        raise AuthenticityError("request signature does not verify") from exc
    if len(signature) != SIGNATURE_LEN:
        raise AuthenticityError("request signature does not verify")
    try:
        public.verify(signature, message)
    except InvalidSignature as exc:
        raise AuthenticityError("request signature does not verify") from exc


# --- sealing to a device (pull responses) ----------------------------------------------------


def seal_to_device(
    device_encryption_public_raw: bytes, device_id: uuid.UUID, plaintext: bytes
) -> bytes:
    """HPKE-seal data to one device's X25519 key; returns enc (32) || ciphertext || tag."""
    public = _x25519_public(device_encryption_public_raw)
    return _hpke_seal(plaintext, public, PULL_INFO_LABEL + device_id.bytes)


def open_from_server(keys: DeviceKeys, device_id: uuid.UUID, sealed: bytes) -> bytes:
    """Open data the server sealed to this device; MalformedError if short, else Authenticity."""
    sealed = bytes(sealed)
    if len(sealed) < SEALED_MIN_LEN:
        raise MalformedError("sealed data too short")
    return _hpke_open(sealed, keys.encryption, PULL_INFO_LABEL + device_id.bytes)


# --- device vault ----------------------------------------------------------------------------

#: RFC 9106 section 4, second recommended option (64 MiB, 3 passes, 4 lanes).
VAULT_DEFAULTS: dict[str, int] = {"memory_cost": 65536, "iterations": 3, "lanes": 4}
_VAULT_LIMITS: dict[str, tuple[int, int]] = {
    "memory_cost": (8, 4 * 1024 * 1024),
    "iterations": (1, 64),
    "lanes": (1, 64),
}
VAULT_SALT_LEN = 16


def _vault_key(
    passphrase: str, salt: bytes, memory_cost: int, iterations: int, lanes: int
) -> bytes:
    """Derive the 32-byte vault key from a passphrase with Argon2id."""
    kdf = Argon2id(
        salt=salt, length=KEY_LEN, iterations=iterations, lanes=lanes, memory_cost=memory_cost
    )
    return kdf.derive(passphrase.encode("utf-8"))


def _vault_cost(params: dict[str, Any], name: str) -> int:
    """Read one Argon2 cost parameter from stored vault params; MalformedError if out of range."""
    value = params.get(name)
    low, high = _VAULT_LIMITS[name]
    if type(value) is not int or not low <= value <= high:
        raise MalformedError(f"vault parameter {name} invalid")
    return value


def _vault_costs(params: dict[str, Any]) -> tuple[int, int, int]:
    """Read (memory_cost, iterations, lanes) from vault params; MalformedError if invalid."""
    memory_cost = _vault_cost(params, "memory_cost")
    lanes = _vault_cost(params, "lanes")
    if memory_cost < 8 * lanes:
        raise MalformedError("vault memory_cost must be at least 8 KiB per lane")
    return memory_cost, _vault_cost(params, "iterations"), lanes


class Vault:
    """AES-256-GCM encryption of personal data at rest, under a passphrase-derived key."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        """Wrap a 32-byte key; use :meth:`create` or :meth:`unlock` instead of calling this."""
        if len(key) != KEY_LEN:
            raise ValueError("vault key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def create(
        cls,
        passphrase: str,
        *,
        memory_cost: int = VAULT_DEFAULTS["memory_cost"],
        iterations: int = VAULT_DEFAULTS["iterations"],
        lanes: int = VAULT_DEFAULTS["lanes"],
    ) -> tuple[Vault, dict[str, Any]]:
        """Create a vault with a fresh salt; returns it and the JSON-able params to store."""
        costs = {"memory_cost": memory_cost, "iterations": iterations, "lanes": lanes}
        try:
            _vault_costs(costs)  # same bounds as unlock, so whatever is written can be read
        except MalformedError as exc:
            raise ValueError("vault cost parameters out of range") from exc
        salt = os.urandom(VAULT_SALT_LEN)
        vault = cls(_vault_key(passphrase, salt, memory_cost, iterations, lanes))
        params: dict[str, Any] = {
            "v": 1,
            "kdf": "argon2id",
            "salt": b64e(salt),
            **costs,
            "check": b64e(vault.encrypt(VAULT_CHECK_PLAINTEXT, VAULT_CHECK_AAD)),
        }
        return vault, params

    @classmethod
    def unlock(cls, passphrase: str, params: dict[str, Any]) -> Vault:
        """Re-derive the key from stored params; AuthenticityError on a wrong passphrase."""
        if params.get("v") != 1 or params.get("kdf") != "argon2id":
            raise MalformedError("unsupported vault parameters")
        salt, check = params.get("salt"), params.get("check")
        if not isinstance(salt, str) or not isinstance(check, str):
            raise MalformedError("vault parameters incomplete")
        salt_bytes = b64d(salt)
        if len(salt_bytes) < VAULT_SALT_LEN:
            raise MalformedError("vault salt too short")
        vault = cls(_vault_key(passphrase, salt_bytes, *_vault_costs(params)))
        try:
            ok = vault.decrypt(b64d(check), VAULT_CHECK_AAD) == VAULT_CHECK_PLAINTEXT
        except AuthenticityError as exc:
            raise AuthenticityError("wrong passphrase") from exc
        if not ok:
            raise AuthenticityError("wrong passphrase")
        return vault

    def encrypt(self, plaintext: bytes, aad: bytes = b"") -> bytes:
        """Encrypt: random 12-byte nonce || AES-256-GCM ciphertext || tag."""
        nonce = os.urandom(NONCE_LEN)
        return nonce + self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, data: bytes, aad: bytes = b"") -> bytes:
        """Decrypt what :meth:`encrypt` produced; MalformedError if short, else Authenticity."""
        data = bytes(data)
        if len(data) < NONCE_LEN + TAG_LEN:
            raise MalformedError("vault ciphertext too short")
        try:
            return self._aead.decrypt(data[:NONCE_LEN], data[NONCE_LEN:], aad)
        except InvalidTag as exc:
            raise AuthenticityError("vault ciphertext does not authenticate") from exc
