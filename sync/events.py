"""Event bodies: the one schema devices seal and the server opens.

An event body is a JSON object; its canonical bytes (sorted keys, no spaces, UTF-8) are
what a device seals into an envelope. Field meanings are in ``docs/protocol.md``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from sync.fastload import compile_loader

#: Version of the event body schema; bodies carry it as ``v``.
EVENT_SCHEMA_VERSION = 1

KINDS = ("checkin", "walkin", "headcount", "flag", "void")
CHECKIN_STATUSES = ("present", "boarded", "crossed", "arrived", "left", "absent")
METHODS = ("scan", "search", "walk-in", "manual")
FLAGS = ("medical", "injured", "vulnerable", "lost-documents", "other")
SEXES = ("female", "male", "other", "unknown")

# Largest capture time accepted (year 2200), so nothing overflows a 64-bit column.
_MAX_MS = 7_258_118_400_000


#: What no store keeps as given: NUL (PostgreSQL text cannot hold it) and lone surrogates
#: (not UTF-8). JSON can carry both (``\u0000``, ``\ud800``).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(value: str) -> None:
    """Free text must be storable as it is, on every backend; the message names no value."""
    if _UNSTORABLE.search(value):
        raise ValidationError("Must not contain NUL characters or lone surrogates.")


def free_text(max_length: int, min_length: int | None = None) -> list[Any]:
    """Validators of a free-text field: its length, and storable as it is."""
    return [validate.Length(min=min_length, max=max_length), storable]


class WalkInPersonSchema(Schema):
    """Details of a person registered on the spot (on no roster)."""

    class Meta:
        unknown = RAISE

    full_name = fields.Str(required=True, validate=free_text(300, min_length=1))
    given_name = fields.Str(validate=free_text(200))
    family_name = fields.Str(validate=free_text(200))
    alternate_names = fields.List(
        fields.Str(validate=free_text(300)), validate=validate.Length(max=10)
    )
    sex = fields.Str(validate=validate.OneOf(SEXES))
    birth_date = fields.Date()
    age = fields.Int(validate=validate.Range(min=0, max=130))
    nationality = fields.Str(validate=free_text(64))
    document_type = fields.Str(validate=free_text(32))
    document_number = fields.Str(validate=free_text(64))
    phone = fields.Str(validate=free_text(64))
    tags = fields.List(fields.Str(validate=free_text(32)), validate=validate.Length(max=10))
    group = fields.Int(validate=validate.Range(min=1))


class _EventSchema(Schema):
    """Fields every event kind carries."""

    class Meta:
        unknown = RAISE

    v = fields.Int(required=True, validate=validate.Equal(EVENT_SCHEMA_VERSION))
    kind = fields.Str(required=True)
    op = fields.Int(required=True, validate=validate.Range(min=1))
    at = fields.Int(required=True, validate=validate.Range(min=0, max=_MAX_MS))
    author = fields.Str(required=True, validate=free_text(100, min_length=1))
    note = fields.Str(validate=free_text(1000))


_CHECKPOINT = validate.Range(min=1)


class CheckinSchema(_EventSchema):
    """A person seen at a checkpoint."""

    person = fields.UUID(required=True)
    checkpoint = fields.Int(required=True, validate=_CHECKPOINT)
    status = fields.Str(required=True, validate=validate.OneOf(CHECKIN_STATUSES))
    method = fields.Str(required=True, validate=validate.OneOf(METHODS))
    group = fields.Int(validate=validate.Range(min=1))


class WalkinSchema(_EventSchema):
    """A person on no roster, registered on the spot under a new id made on the device."""

    person = fields.UUID(required=True)
    checkpoint = fields.Int(required=True, validate=_CHECKPOINT)
    details = fields.Nested(WalkInPersonSchema, required=True)
    status = fields.Str(validate=validate.OneOf(CHECKIN_STATUSES))
    method = fields.Str(validate=validate.OneOf(METHODS))


class HeadcountSchema(_EventSchema):
    """A counted number of people of a group at a checkpoint; no names."""

    checkpoint = fields.Int(required=True, validate=_CHECKPOINT)
    group = fields.Int(required=True, validate=validate.Range(min=1))
    count = fields.Int(required=True, validate=validate.Range(min=0, max=100000))


class FlagSchema(_EventSchema):
    """A person who needs attention: medical help, injured, ..."""

    person = fields.UUID(required=True)
    flag = fields.Str(required=True, validate=validate.OneOf(FLAGS))
    checkpoint = fields.Int(validate=_CHECKPOINT)


class VoidSchema(_EventSchema):
    """Retracts one of the same device's earlier events."""

    ref = fields.UUID(required=True)


#: The schema of each event kind; a body is validated by the one its ``kind`` names.
SCHEMAS: dict[str, Schema] = {
    "checkin": CheckinSchema(),
    "walkin": WalkinSchema(),
    "headcount": HeadcountSchema(),
    "flag": FlagSchema(),
    "void": VoidSchema(),
}


_LOADERS = {kind: compile_loader(schema) for kind, schema in SCHEMAS.items()}


def canonical_bytes(body: dict[str, Any]) -> bytes:
    """The canonical encoding that is sealed: sorted keys, no spaces, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def validate_body(body: dict[str, Any]) -> dict[str, Any]:
    """Validate an event body (JSON types as sent); return the loaded form or raise."""
    kind = body.get("kind")
    schema = SCHEMAS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise ValidationError({"kind": [f"Must be one of: {', '.join(KINDS)}."]})
    return _LOADERS[kind](body)  # type: ignore[index]


def decode_body(plaintext: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse and validate sealed plaintext; return (raw JSON body, loaded body).

    Raises ``ValueError`` for bytes that are not a JSON object and ``ValidationError`` for
    a body that breaks the schema.
    """
    raw = json.loads(plaintext)
    if not isinstance(raw, dict):
        raise ValueError("event body is not a JSON object")
    return raw, validate_body(raw)
