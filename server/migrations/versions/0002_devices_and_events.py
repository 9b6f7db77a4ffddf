"""Devices, enrolment codes, capture sessions, events and the quarantine.

A frozen copy of the models as they were at this migration: never edit it; add a new one.
"""

import datetime

from peewee import (
    AutoField,
    BigIntegerField,
    BlobField,
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

    class StaffUser(Base):
        id = AutoField()

    class Device(Base):
        id = UUIDField(primary_key=True)
        operation = ForeignKeyField(Operation, on_delete="CASCADE")
        label = CharField(max_length=100, default="")
        signing_key = BlobField()
        encryption_key = BlobField()
        enrolled_at = DateTimeField(default=_now)
        enrolled_by = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
        revoked_at = DateTimeField(null=True)
        last_seen_at = DateTimeField(null=True)
        skew_ms = BigIntegerField(null=True)
        high_seq = BigIntegerField(default=0)
        contiguous_seq = BigIntegerField(default=0)

    class EnrolmentCode(Base):
        id = AutoField()
        operation = ForeignKeyField(Operation, on_delete="CASCADE")
        code_hash = CharField(max_length=64, unique=True)
        label = CharField(max_length=100, default="")
        created_by = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
        created_at = DateTimeField(default=_now)
        expires_at = DateTimeField()
        used_at = DateTimeField(null=True)
        device = ForeignKeyField(Device, null=True, on_delete="SET NULL")

    class CaptureSession(Base):
        id = CharField(max_length=32, primary_key=True)
        device = ForeignKeyField(Device, on_delete="CASCADE")
        server_kid = CharField(max_length=64)
        created_ms = BigIntegerField()
        blob = BlobField()
        first_seen_at = DateTimeField(default=_now)

    class Event(Base):
        id = UUIDField(primary_key=True)
        operation = ForeignKeyField(Operation, on_delete="CASCADE")
        device = ForeignKeyField(Device, on_delete="CASCADE")
        seq = BigIntegerField()
        session = CharField(max_length=32)
        kind = CharField(max_length=16)
        person = UUIDField(null=True, index=True)
        checkpoint = IntegerField(null=True)
        group = IntegerField(null=True)
        status = CharField(max_length=16, null=True)
        method = CharField(max_length=16, null=True)
        author = CharField(max_length=100, default="")
        count = IntegerField(null=True)
        ref = UUIDField(null=True)
        captured_ms = BigIntegerField()
        received_at = DateTimeField(default=_now, index=True)
        time_flag = CharField(max_length=16, null=True)
        content_hash = CharField(max_length=64)
        body = TextField()
        envelope = BlobField()

        class Meta:
            indexes = ((("device", "seq"), True), (("operation", "received_at"), False))

    class QuarantinedRecord(Base):
        id = AutoField()
        operation = ForeignKeyField(Operation, null=True, on_delete="SET NULL")
        device = ForeignKeyField(Device, null=True, on_delete="SET NULL")
        received_at = DateTimeField(default=_now, index=True)
        reason = CharField(max_length=32)
        message = TextField(default="")
        event_id = UUIDField(null=True, index=True)
        seq = BigIntegerField(null=True)
        envelope = BlobField()
        body = TextField(null=True)
        released_at = DateTimeField(null=True)
        released_by = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")

    db.create_tables([Device, EnrolmentCode, CaptureSession, Event, QuarantinedRecord])
