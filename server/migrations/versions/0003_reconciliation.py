"""Reconciliation: person states, resolutions, merge links, and each event's clock skew.

A frozen copy of the models as they were at this migration: never edit it; add a new one.
"""

import datetime

from peewee import (
    AutoField,
    BigIntegerField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
    UUIDField,
)


def _now():
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Operation(Base):
        id = AutoField()

    class PersonState(Base):
        person = UUIDField(primary_key=True)
        operation = ForeignKeyField(Operation, on_delete="CASCADE")
        group = IntegerField(null=True)
        state = CharField(max_length=24)
        reason = CharField(max_length=200, default="")
        last_checkpoint = IntegerField(null=True)
        last_seen_ms = BigIntegerField(null=True)
        route_pos = IntegerField(null=True)
        merged_into = UUIDField(null=True)
        conflicts = TextField(default="[]")
        flags = TextField(default="[]")
        name_keys = TextField(default="[]")
        event_count = IntegerField(default=0)
        version = CharField(max_length=16)
        updated_at = DateTimeField(default=_now)

        class Meta:
            table_name = "person_state"
            indexes = ((("operation", "group", "state"), False),)

    class Resolution(Base):
        id = UUIDField(primary_key=True)
        operation = ForeignKeyField(Operation, on_delete="CASCADE")
        kind = CharField(max_length=24)
        person = UUIDField(null=True, index=True)
        payload = TextField(default="{}")
        actor = CharField(max_length=100)
        at = DateTimeField(default=_now)
        at_ms = BigIntegerField()
        reason = TextField(default="")
        based_on_version = CharField(max_length=16, null=True)
        reverted_by = UUIDField(null=True)

        class Meta:
            indexes = ((("operation", "at_ms"), False),)

    class PersonLink(Base):
        id = AutoField()
        operation = ForeignKeyField(Operation, on_delete="CASCADE")
        duplicate = UUIDField(unique=True)
        primary = UUIDField(index=True)
        resolution = UUIDField()
        created_at = DateTimeField(default=_now)

        class Meta:
            table_name = "person_link"

    db.create_tables([PersonState, Resolution, PersonLink])
    migrator.migrate(
        migrator.add_column("event", "skew_ms", BigIntegerField(null=True)),
        migrator.add_index("event", ("ref",), False),
    )
