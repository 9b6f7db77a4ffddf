"""Operations, checkpoints, groups and their routes."""

from __future__ import annotations

from peewee import (
    AutoField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from server.models.base import BaseModel, utcnow

OPERATION_STATUSES = ("planned", "active", "closed")
CHECKPOINT_KINDS = ("assembly", "station", "border", "reception", "hotel", "flight", "other")


class Operation(BaseModel):
    """One evacuation. Everything else belongs to exactly one operation."""

    id = AutoField()
    name = CharField(max_length=200, unique=True)
    timezone = CharField(max_length=64, default="UTC")
    starts_at = DateTimeField()
    status = CharField(max_length=16, default="active")
    # Local time (HH:MM, operation time zone) of the nightly report's cut-off.
    report_cutoff = CharField(max_length=5, default="21:00")
    created_at = DateTimeField(default=utcnow)
    closed_at = DateTimeField(null=True)


class Checkpoint(BaseModel):
    """A named place on routes: assembly point, station, border crossing, reception..."""

    operation_id: int

    id = AutoField()
    operation = ForeignKeyField(Operation, backref="checkpoints", on_delete="CASCADE")
    name = CharField(max_length=200)
    kind = CharField(max_length=16, default="other")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("operation", "name"), True),)


class Group(BaseModel):
    """People travelling together under a leader, with a planned route and expected size."""

    operation_id: int

    id = AutoField()
    operation = ForeignKeyField(Operation, backref="groups", on_delete="CASCADE")
    name = CharField(max_length=200)
    leader = CharField(max_length=200, default="")
    expected_size = IntegerField(default=0)
    notes = TextField(default="")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "travel_group"
        indexes = ((("operation", "name"), True),)


class RouteStop(BaseModel):
    """One checkpoint of a group's planned route, in order (position 1 is the start)."""

    group_id: int
    checkpoint_id: int

    id = AutoField()
    group = ForeignKeyField(Group, backref="route", on_delete="CASCADE")
    checkpoint = ForeignKeyField(Checkpoint, on_delete="CASCADE")
    position = IntegerField()

    class Meta:
        indexes = ((("group", "position"), True),)
