"""Events as received from devices, and the quarantine for records that were not accepted."""

from __future__ import annotations

import uuid

from peewee import (
    AutoField,
    BigIntegerField,
    BlobField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
    UUIDField,
)

from server.crypto.fields import SealedTextField
from server.models.base import BaseModel, utcnow
from server.models.device import Device
from server.models.operation import Operation
from server.models.staff import StaffUser


class Event(BaseModel):
    """An accepted event: immutable, exactly once per event id, decoded for reconciliation.

    ``body`` is the canonical JSON the device sealed; ``envelope`` the sealed bytes as they
    arrived, so authenticity can be re-checked at any time.
    """

    operation_id: int
    device_id: uuid.UUID

    id = UUIDField(primary_key=True)
    # Not indexed alone (migration 0008): they lead the composite indexes below and in 0006.
    operation = ForeignKeyField(Operation, backref="events", on_delete="CASCADE", index=False)
    device = ForeignKeyField(Device, backref="events", on_delete="CASCADE", index=False)
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
    # Indexed where not null only (migration 0010): only voids name another event.
    ref = UUIDField(null=True)
    captured_ms = BigIntegerField()
    # Indexed only with the operation (migration 0008): every read by receipt names one.
    received_at = DateTimeField(default=utcnow)
    # Implausible capture time: "future", "before_start" or "skew"; null when plausible.
    time_flag = CharField(max_length=16, null=True)
    # Device clock minus server clock when the event arrived (ms); orders events across devices.
    skew_ms = BigIntegerField(null=True)
    content_hash = CharField(max_length=64)
    body = SealedTextField()  # the decoded body: sealed at rest, it may hold personal data
    envelope = BlobField()

    class Meta:
        indexes = ((("device", "seq"), True), (("operation", "received_at"), False))


class QuarantinedRecord(BaseModel):
    """A record that was refused: kept for staff, never dropped, never merged silently."""

    operation_id: int | None
    device_id: uuid.UUID | None
    released_by_id: int | None

    id = AutoField()
    operation = ForeignKeyField(Operation, null=True, on_delete="SET NULL")
    device = ForeignKeyField(Device, null=True, on_delete="SET NULL")
    received_at = DateTimeField(default=utcnow, index=True)
    reason = CharField(max_length=32)
    message = TextField(default="")
    event_id = UUIDField(null=True, index=True)
    seq = BigIntegerField(null=True)
    envelope = BlobField()
    body = SealedTextField(null=True)
    released_at = DateTimeField(null=True)
    released_by = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
