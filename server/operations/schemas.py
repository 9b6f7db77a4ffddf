"""Contracts for operations, checkpoints and groups at the HTTP and CLI boundaries."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from server.models import CHECKPOINT_KINDS, OPERATION_STATUSES

#: Database ids are 64-bit; a larger number in a body is a validation error, not an overflow.
MAX_ID = 2**63 - 1
ID_RANGE = validate.Range(min=1, max=MAX_ID)


class StrictSchema(Schema):
    """Base for every input schema: unknown fields are an error, not silently dropped."""

    class Meta:
        unknown = RAISE


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc_text(value: dt.datetime | None) -> str | None:
    # The database stores naive UTC; RFC 3339 (OpenAPI's date-time) needs the offset.
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


class UtcDateTime(fields.DateTime):
    """A stored naive-UTC datetime, dumped as RFC 3339 text ending in ``Z``."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return _utc_text(value)


class UtcAwareDateTime(fields.AwareDateTime):
    """Loads an aware datetime (naive input taken as UTC); dumps like ``UtcDateTime``."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return _utc_text(value)


class OperationSchema(StrictSchema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    # The enum is for the OpenAPI document (clients and schemathesis see the valid names).
    timezone = fields.Str(
        load_default="UTC", metadata={"enum": sorted(zoneinfo.available_timezones())}
    )
    starts_at = UtcAwareDateTime(load_default=_utcnow, default_timezone=dt.UTC)
    status = fields.Str(load_default="active", validate=validate.OneOf(OPERATION_STATUSES))
    report_cutoff = fields.Str(
        load_default="21:00",
        validate=validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="Use HH:MM, 24-hour."),
    )
    created_at = UtcDateTime(dump_only=True)
    closed_at = UtcDateTime(dump_only=True, allow_none=True)

    @validates("timezone")
    def _known_zone(self, value: str, **_: Any) -> None:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError("Unknown time zone; use an IANA name like Europe/Kyiv.") from exc


class CheckpointSchema(StrictSchema):
    id = fields.Int(dump_only=True)
    operation_id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.Str(load_default="other", validate=validate.OneOf(CHECKPOINT_KINDS))


class GroupSchema(StrictSchema):
    id = fields.Int(dump_only=True)
    operation_id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    leader = fields.Str(load_default="", validate=validate.Length(max=200))
    expected_size = fields.Int(load_default=0, validate=validate.Range(min=0, max=100000))
    notes = fields.Str(load_default="", validate=validate.Length(max=2000))
    # The planned route: checkpoint ids in travel order.
    route = fields.List(fields.Int(validate=ID_RANGE), load_default=list)
