"""Operations, checkpoints, groups, routes, people, staff, tokens, audit log, change log.

A frozen copy of the models as they were at this migration: never edit it; add a new one.
"""

import datetime

from peewee import (
    AutoField,
    BigAutoField,
    BooleanField,
    CharField,
    DateField,
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
        name = CharField(max_length=200, unique=True)
        timezone = CharField(max_length=64, default="UTC")
        starts_at = DateTimeField()
        status = CharField(max_length=16, default="active")
        report_cutoff = CharField(max_length=5, default="21:00")
        created_at = DateTimeField(default=_now)
        closed_at = DateTimeField(null=True)

    class Checkpoint(Base):
        id = AutoField()
        operation = ForeignKeyField(Operation, on_delete="CASCADE")
        name = CharField(max_length=200)
        kind = CharField(max_length=16, default="other")
        created_at = DateTimeField(default=_now)

        class Meta:
            indexes = ((("operation", "name"), True),)

    class Group(Base):
        id = AutoField()
        operation = ForeignKeyField(Operation, on_delete="CASCADE")
        name = CharField(max_length=200)
        leader = CharField(max_length=200, default="")
        expected_size = IntegerField(default=0)
        notes = TextField(default="")
        created_at = DateTimeField(default=_now)

        class Meta:
            table_name = "travel_group"
            indexes = ((("operation", "name"), True),)

    class RouteStop(Base):
        id = AutoField()
        group = ForeignKeyField(Group, on_delete="CASCADE")
        checkpoint = ForeignKeyField(Checkpoint, on_delete="CASCADE")
        position = IntegerField()

        class Meta:
            indexes = ((("group", "position"), True),)

    class Person(Base):
        id = UUIDField(primary_key=True)
        operation = ForeignKeyField(Operation, on_delete="CASCADE")
        group = ForeignKeyField(Group, null=True, on_delete="SET NULL")
        external_id = CharField(max_length=100, null=True)
        full_name = CharField(max_length=300)
        given_name = CharField(max_length=200, default="")
        family_name = CharField(max_length=200, default="")
        alternate_names = TextField(default="[]")
        sex = CharField(max_length=8, default="unknown")
        birth_date = DateField(null=True)
        age = IntegerField(null=True)
        nationality = CharField(max_length=64, default="")
        document_type = CharField(max_length=32, default="")
        document_number = CharField(max_length=64, default="")
        document_key = CharField(max_length=64, default="", index=True)
        phone = CharField(max_length=64, default="")
        tags = TextField(default="[]")
        source = CharField(max_length=8, default="roster")
        source_date = DateField(null=True)
        entry_date = DateTimeField(default=_now)
        expiry_date = DateField(null=True)
        updated_at = DateTimeField(default=_now)

        class Meta:
            indexes = ((("operation", "external_id"), True),)

    class StaffUser(Base):
        id = AutoField()
        username = CharField(max_length=64, unique=True)
        display_name = CharField(max_length=200, default="")
        password_hash = CharField(max_length=255)
        role = CharField(max_length=16, default="viewer")
        is_active = BooleanField(default=True)
        must_change_password = BooleanField(default=False)
        created_at = DateTimeField(default=_now)

    class Assignment(Base):
        id = AutoField()
        staff = ForeignKeyField(StaffUser, on_delete="CASCADE")
        operation = ForeignKeyField(Operation, on_delete="CASCADE")
        created_at = DateTimeField(default=_now)

        class Meta:
            indexes = ((("staff", "operation"), True),)

    class ApiToken(Base):
        id = AutoField()
        staff = ForeignKeyField(StaffUser, on_delete="CASCADE")
        token_hash = CharField(max_length=64, unique=True)
        label = CharField(max_length=100, default="")
        created_at = DateTimeField(default=_now)
        expires_at = DateTimeField()
        revoked_at = DateTimeField(null=True)
        last_used_at = DateTimeField(null=True)

    class AuditEntry(Base):
        id = AutoField()
        at = DateTimeField(default=_now, index=True)
        actor = CharField(max_length=100)
        operation = ForeignKeyField(Operation, null=True, on_delete="SET NULL")
        action = CharField(max_length=64)
        target = CharField(max_length=200, default="")
        details = TextField(default="{}")
        reason = TextField(default="")

    class Change(Base):
        id = BigAutoField()
        operation = ForeignKeyField(Operation, on_delete="CASCADE")
        entity = CharField(max_length=16)
        entity_id = CharField(max_length=64)
        at = DateTimeField(default=_now)

        class Meta:
            indexes = ((("operation", "id"), False),)

    db.create_tables(
        [
            Operation,
            Checkpoint,
            Group,
            RouteStop,
            Person,
            StaffUser,
            Assignment,
            ApiToken,
            AuditEntry,
            Change,
        ]
    )
