"""Contracts of the reconciliation API: resolution input, states, summaries and queue items."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from server.models.person import PERSON_SOURCES
from server.operations.schemas import ID_RANGE, MAX_ID, StrictSchema, UtcDateTime
from server.reconcile.derive import RESOLUTION_KINDS, STATES
from server.reconcile.queues import QUEUES


class ResolutionCreateSchema(StrictSchema):
    """A resolution as a coordinator sends it; which fields are needed depends on ``kind``."""

    kind = fields.Str(required=True, validate=validate.OneOf(RESOLUTION_KINDS))
    reason = fields.Str(required=True, validate=validate.Length(min=1, max=1000))
    person = fields.UUID(load_default=None)
    into = fields.UUID(load_default=None)
    group = fields.Int(load_default=None, validate=ID_RANGE)
    key = fields.Str(load_default=None, validate=validate.Length(max=200))
    record = fields.Int(load_default=None, validate=ID_RANGE)
    resolution = fields.UUID(load_default=None)
    based_on_version = fields.Str(load_default=None, validate=validate.Length(max=16))

    @validates_schema
    def _needed(self, data: dict[str, Any], **_: Any) -> None:
        needs = {
            "merge": ("person", "into"),
            "move": ("person", "group"),
            "accept_walkin": ("person", "group"),
            "confirm": ("person",),
            "declare_missing": ("person",),
            "resolve": ("key",),
            "release_quarantine": ("record",),
            "revert": ("resolution",),
        }
        missing = [f for f in needs[data["kind"]] if data.get(f) is None]
        if missing:
            raise ValidationError(
                {f: [f"Required for a {data['kind']} resolution."] for f in missing}
            )


class ResolutionSchema(Schema):
    id = fields.UUID(dump_only=True)
    kind = fields.Str(dump_only=True)
    person = fields.UUID(dump_only=True, allow_none=True)
    payload = fields.Dict(dump_only=True)
    actor = fields.Str(dump_only=True)
    at = fields.Str(dump_only=True)
    at_ms = fields.Int(dump_only=True)
    reason = fields.Str(dump_only=True)
    based_on_version = fields.Str(dump_only=True, allow_none=True)
    reverted_by = fields.UUID(dump_only=True, allow_none=True)


class ResolutionPageSchema(Schema):
    items = fields.List(fields.Nested(ResolutionSchema), dump_only=True)
    total = fields.Int(dump_only=True)


class StateSchema(Schema):
    """The reconciliation state of one person record."""

    state = fields.Str(dump_only=True, metadata={"enum": list(STATES)})
    reason = fields.Str(dump_only=True)
    group = fields.Int(dump_only=True, allow_none=True)
    last_checkpoint = fields.Int(dump_only=True, allow_none=True)
    last_seen_ms = fields.Int(dump_only=True, allow_none=True)
    route_pos = fields.Int(dump_only=True, allow_none=True)
    merged_into = fields.Str(dump_only=True, allow_none=True)
    conflicts = fields.List(fields.Dict(), dump_only=True)
    flags = fields.List(fields.Str(), dump_only=True)
    event_count = fields.Int(dump_only=True)
    version = fields.Str(dump_only=True)


class GroupSummarySchema(Schema):
    group = fields.Int(dump_only=True, allow_none=True)
    name = fields.Str(dump_only=True)
    planned_size = fields.Int(dump_only=True)
    records = fields.Int(dump_only=True)
    expected = fields.Int(dump_only=True)
    accounted = fields.Int(dump_only=True)
    unaccounted = fields.Int(dump_only=True)
    by_state = fields.Dict(keys=fields.Str(), values=fields.Int(), dump_only=True)
    by_checkpoint = fields.Dict(keys=fields.Str(), values=fields.Int(), dump_only=True)


class OverviewSchema(Schema):
    operation = fields.Int(dump_only=True)
    totals = fields.Nested(GroupSummarySchema, dump_only=True)
    groups = fields.List(fields.Nested(GroupSummarySchema), dump_only=True)
    queues = fields.Dict(
        keys=fields.Str(validate=validate.OneOf(QUEUES)), values=fields.Int(), dump_only=True
    )


class RosterItemSchema(Schema):
    person = fields.Dict(dump_only=True)
    state = fields.Nested(StateSchema, dump_only=True)


class RosterPageSchema(Schema):
    items = fields.List(fields.Nested(RosterItemSchema), dump_only=True)
    total = fields.Int(dump_only=True)
    limit = fields.Int(dump_only=True)
    offset = fields.Int(dump_only=True)


class RosterFilterSchema(StrictSchema):
    """Roster filters and search terms as staff send them: in a request body, never a URL.

    ``q`` is a name in any script or (for coordinators and admins) a document number; names
    and documents in a URL would reach proxy logs, browser history and ``Referer`` headers.
    """

    q = fields.Str(load_default="", validate=validate.Length(max=300))
    group = fields.Int(load_default=None, allow_none=True, validate=ID_RANGE)
    state = fields.List(
        fields.Str(validate=validate.OneOf(STATES)),
        load_default=list,
        validate=validate.Length(max=len(STATES)),
    )
    source = fields.Str(load_default=None, allow_none=True, validate=validate.OneOf(PERSON_SOURCES))


class RosterSearchSchema(RosterFilterSchema):
    """A roster search with its page: the filters plus ``limit`` and ``offset``."""

    limit = fields.Int(load_default=100, validate=validate.Range(min=1, max=1000))
    offset = fields.Int(load_default=0, validate=validate.Range(min=0, max=MAX_ID))


class TimelineSchema(Schema):
    person = fields.Dict(dump_only=True)
    state = fields.Nested(StateSchema, dump_only=True)
    timeline = fields.List(fields.Dict(), dump_only=True)


class QueuePageSchema(Schema):
    queue = fields.Str(dump_only=True)
    items = fields.List(fields.Dict(), dump_only=True)
    total = fields.Int(dump_only=True)
    limit = fields.Int(dump_only=True)
    offset = fields.Int(dump_only=True)


class AuditEntrySchema(Schema):
    id = fields.Int(dump_only=True)
    at = UtcDateTime(dump_only=True)
    actor = fields.Str(dump_only=True)
    action = fields.Str(dump_only=True)
    target = fields.Str(dump_only=True)
    details = fields.Method("_details", dump_only=True)
    reason = fields.Str(dump_only=True)

    def _details(self, entry: Any) -> Any:
        import json

        return json.loads(entry.details or "{}")


class AuditPageSchema(Schema):
    items = fields.List(fields.Nested(AuditEntrySchema), dump_only=True)
    total = fields.Int(dump_only=True)
