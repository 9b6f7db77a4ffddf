"""Contracts for operations, checkpoints and groups at the HTTP and CLI boundaries."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates

from server.models import CHECKPOINT_KINDS, OPERATION_STATUSES


class StrictSchema(Schema):
    """Base for every input schema: unknown fields are an error, not silently dropped."""

    class Meta:
        unknown = RAISE


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OperationSchema(StrictSchema):
    id = fields.Int(dump_only=True)
    name = fields.Str(required=True, validate=validate.Length(min=1, max=200))
    timezone = fields.Str(load_default="UTC")
    starts_at = fields.AwareDateTime(load_default=_utcnow, default_timezone=dt.UTC)
    status = fields.Str(load_default="active", validate=validate.OneOf(OPERATION_STATUSES))
    report_cutoff = fields.Str(
        load_default="21:00",
        validate=validate.Regexp(r"^([01]\d|2[0-3]):[0-5]\d$", error="Use HH:MM, 24-hour."),
    )
    created_at = fields.DateTime(dump_only=True)
    closed_at = fields.DateTime(dump_only=True)

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
    route = fields.List(fields.Int(), load_default=list)
