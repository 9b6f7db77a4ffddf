"""Enrolled devices, their one-time enrolment codes and capture sessions."""

from __future__ import annotations

import uuid

from peewee import (
    AutoField,
    BigIntegerField,
    BlobField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    UUIDField,
)

from server.models.base import BaseModel, utcnow
from server.models.operation import Operation
from server.models.staff import StaffUser


class Device(BaseModel):
    """A phone or laptop enrolled into one operation, identified by its own key pair."""

    operation_id: int
    enrolled_by_id: int | None

    id = UUIDField(primary_key=True)
    operation = ForeignKeyField(Operation, backref="devices", on_delete="CASCADE")
    label = CharField(max_length=100, default="")
    signing_key = BlobField()  # Ed25519 public key, 32 bytes
    encryption_key = BlobField()  # X25519 public key, 32 bytes
    enrolled_at = DateTimeField(default=utcnow)
    enrolled_by = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
    revoked_at = DateTimeField(null=True)
    last_seen_at = DateTimeField(null=True)
    # The device clock minus the server clock at its last request, in milliseconds.
    skew_ms = BigIntegerField(null=True)
    # Highest sequence number received, and the highest below which none is missing.
    high_seq = BigIntegerField(default=0)
    contiguous_seq = BigIntegerField(default=0)


class EnrolmentCode(BaseModel):
    """A short one-time code that lets one device enrol into one operation."""

    operation_id: int
    created_by_id: int | None
    device_id: uuid.UUID | None

    id = AutoField()
    operation = ForeignKeyField(Operation, on_delete="CASCADE")
    code_hash = CharField(max_length=64, unique=True)
    label = CharField(max_length=100, default="")
    created_by = ForeignKeyField(StaffUser, null=True, on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)
    device = ForeignKeyField(Device, null=True, on_delete="SET NULL")


class CaptureSession(BaseModel):
    """A device's sealed session key, kept so stored envelopes can be re-verified later."""

    device_id: uuid.UUID

    id = CharField(max_length=32, primary_key=True)  # session id, hex
    device = ForeignKeyField(Device, backref="sessions", on_delete="CASCADE")
    server_kid = CharField(max_length=64)
    created_ms = BigIntegerField()
    blob = BlobField()
    first_seen_at = DateTimeField(default=utcnow)
