"""Derived reconciliation state (person states, merge links) and staff resolutions.

``PersonState`` and ``PersonLink`` are derived: ``muster-server rebuild`` recomputes them from
events and resolutions alone. ``Resolution`` rows are source data, like events: never edited,
except that a later ``revert`` resolution names the one it undoes in ``reverted_by``.
"""

from __future__ import annotations

from peewee import (
    AutoField,
    BigAutoField,
    BigIntegerField,
    BlobField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
    UUIDField,
)

from server.models.base import BaseModel, utcnow
from server.models.operation import Operation


class PersonState(BaseModel):
    """The reconciled state of one person record, updated on ingest and by resolutions."""

    person = UUIDField(primary_key=True)
    operation = ForeignKeyField(Operation, on_delete="CASCADE")
    group = IntegerField(null=True)
    state = CharField(max_length=24)
    reason = CharField(max_length=200, default="")
    last_checkpoint = IntegerField(null=True)
    # Skew-corrected capture time of the last observation, in ms since the epoch.
    last_seen_ms = BigIntegerField(null=True)
    # Position of ``last_checkpoint`` on the group's route (1 = start); null when off-route.
    route_pos = IntegerField(null=True)
    merged_into = UUIDField(null=True)
    # JSON: open conflicts [{"key", "kind", "events"}], open flags, name keys.
    conflicts = TextField(default="[]")
    flags = TextField(default="[]")
    name_keys = TextField(default="[]")
    event_count = IntegerField(default=0)
    # The first observation at the furthest route position reached (route reversals name it).
    furthest = UUIDField(null=True)
    # A digest of everything above but ``furthest`` (which only events change): resolutions name it to detect stale decisions.
    version = CharField(max_length=16)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "person_state"
        indexes = ((("operation", "group", "state"), False),)


class Resolution(BaseModel):
    """A decision made by staff on the server: an audited event that devices also pull."""

    id = UUIDField(primary_key=True)
    operation = ForeignKeyField(Operation, on_delete="CASCADE")
    kind = CharField(max_length=24)
    person = UUIDField(null=True, index=True)
    payload = TextField(default="{}")
    actor = CharField(max_length=100)
    at = DateTimeField(default=utcnow)
    at_ms = BigIntegerField()
    reason = TextField(default="")
    based_on_version = CharField(max_length=16, null=True)
    reverted_by = UUIDField(null=True)

    class Meta:
        indexes = ((("operation", "at_ms"), False),)


class PersonLink(BaseModel):
    """A merge, Person Finder style: the duplicate record points at its primary; both stay."""

    id = AutoField()
    operation = ForeignKeyField(Operation, on_delete="CASCADE")
    duplicate = UUIDField(unique=True)
    primary = UUIDField(index=True)
    resolution = UUIDField()
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "person_link"


class ReconcileMark(BaseModel):
    """A random token per operation, replaced whenever its derived state may have changed.

    Cross-person queues (duplicates, headcounts) are cached keyed by it, so repeated pages
    between two changes cost a page, not a recomputation.
    """

    operation = ForeignKeyField(Operation, primary_key=True, on_delete="CASCADE")
    token = CharField(max_length=32)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "reconcile_mark"


class DeriveBacklog(BaseModel):
    """Events stored and acknowledged whose effect on derived state is not folded in yet.

    Only with ``DERIVE = "behind"`` (``server.reconcile.backlog``): ingest writes one row per
    operation and commit, holding the ids of the events it accepted (16 bytes each), in the
    transaction that stores them; whoever next takes the derive turn of the operation (the
    deriver process, a staff request, a resolution) folds every row of the operation in and
    deletes them in the same transaction. The event table stays the source of truth: the rows
    only say which events the stored states do not include yet.
    """

    id = BigAutoField()
    # No foreign key: written on the hot path of ingest, and a row lives for milliseconds.
    operation = IntegerField(column_name="operation_id", index=True)
    events = BlobField()

    class Meta:
        table_name = "derive_backlog"
