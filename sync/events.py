"""Event bodies: the one schema devices seal and the server opens.

An event body is a JSON object; its canonical bytes (sorted keys, no spaces, UTF-8) are
what a device seals into an envelope. Field meanings are in ``docs/protocol.md``.
"""

from __future__ import annotations

import json
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

#: Version of the event body schema; bodies carry it as ``v``.
EVENT_SCHEMA_VERSION = 1

KINDS = ("checkin", "walkin", "headcount", "flag", "void")
CHECKIN_STATUSES = ("present", "boarded", "crossed", "arrived", "left", "absent")
METHODS = ("scan", "search", "walk-in", "manual")
FLAGS = ("medical", "injured", "vulnerable", "lost-documents", "other")
SEXES = ("female", "male", "other", "unknown")

# Largest capture time accepted (year 2200), so nothing overflows a 64-bit column.
_MAX_MS = 7_258_118_400_000


class WalkInPersonSchema(Schema):
    """Details of a person registered on the spot (on no roster)."""

    class Meta:
        unknown = RAISE

    full_name = fields.Str(required=True, validate=validate.Length(min=1, max=300))
    given_name = fields.Str(validate=validate.Length(max=200))
    family_name = fields.Str(validate=validate.Length(max=200))
    alternate_names = fields.List(
        fields.Str(validate=validate.Length(max=300)), validate=validate.Length(max=10)
    )
    sex = fields.Str(validate=validate.OneOf(SEXES))
    birth_date = fields.Date()
    age = fields.Int(validate=validate.Range(min=0, max=130))
    nationality = fields.Str(validate=validate.Length(max=64))
    document_type = fields.Str(validate=validate.Length(max=32))
    document_number = fields.Str(validate=validate.Length(max=64))
    phone = fields.Str(validate=validate.Length(max=64))
    tags = fields.List(
        fields.Str(validate=validate.Length(max=32)), validate=validate.Length(max=10)
    )
    group = fields.Int(validate=validate.Range(min=1))


class EventSchema(Schema):
    """The body of every event kind; which fields are required depends on ``kind``."""

    class Meta:
        unknown = RAISE

    v = fields.Int(required=True, validate=validate.Equal(EVENT_SCHEMA_VERSION))
    kind = fields.Str(required=True, validate=validate.OneOf(KINDS))
    op = fields.Int(required=True, validate=validate.Range(min=1))
    at = fields.Int(required=True, validate=validate.Range(min=0, max=_MAX_MS))
    author = fields.Str(required=True, validate=validate.Length(min=1, max=100))
    checkpoint = fields.Int(validate=validate.Range(min=1))
    person = fields.UUID()
    status = fields.Str(validate=validate.OneOf(CHECKIN_STATUSES))
    method = fields.Str(validate=validate.OneOf(METHODS))
    group = fields.Int(validate=validate.Range(min=1))
    count = fields.Int(validate=validate.Range(min=0, max=100000))
    flag = fields.Str(validate=validate.OneOf(FLAGS))
    ref = fields.UUID()
    note = fields.Str(validate=validate.Length(max=1000))
    details = fields.Nested(WalkInPersonSchema)

    @validates_schema
    def _fields_of_kind(self, data: dict[str, Any], **_: Any) -> None:
        required = REQUIRED[data["kind"]]
        missing = [name for name in required if name not in data]
        if missing:
            raise ValidationError(
                {name: [f"Required for a {data['kind']} event."] for name in missing}
            )
        forbidden = [n for n in data if n not in required and n not in OPTIONAL[data["kind"]]]
        if forbidden:
            raise ValidationError(
                {name: [f"Not allowed in a {data['kind']} event."] for name in forbidden}
            )


_COMMON = ("v", "kind", "op", "at", "author")
REQUIRED: dict[str, tuple[str, ...]] = {
    "checkin": (*_COMMON, "person", "checkpoint", "status", "method"),
    "walkin": (*_COMMON, "person", "checkpoint", "details"),
    "headcount": (*_COMMON, "checkpoint", "group", "count"),
    "flag": (*_COMMON, "person", "flag"),
    "void": (*_COMMON, "ref"),
}
OPTIONAL: dict[str, tuple[str, ...]] = {
    "checkin": ("note", "group"),
    "walkin": ("note", "method", "status"),
    "headcount": ("note",),
    "flag": ("note", "checkpoint"),
    "void": ("note",),
}

event_schema = EventSchema()


def canonical_bytes(body: dict[str, Any]) -> bytes:
    """The canonical encoding that is sealed: sorted keys, no spaces, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def validate_body(body: dict[str, Any]) -> dict[str, Any]:
    """Validate an event body (JSON types as sent); return the loaded form or raise."""
    loaded: dict[str, Any] = event_schema.load(body)
    return loaded


def decode_body(plaintext: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parse and validate sealed plaintext; return (raw JSON body, loaded body).

    Raises ``ValueError`` for bytes that are not a JSON object and ``ValidationError`` for
    a body that breaks the schema.
    """
    raw = json.loads(plaintext)
    if not isinstance(raw, dict):
        raise ValueError("event body is not a JSON object")
    return raw, validate_body(raw)
