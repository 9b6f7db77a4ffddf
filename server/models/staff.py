"""Staff accounts, their operation assignments and API tokens; the audit log."""

from __future__ import annotations

from typing import Any

from peewee import (
    AutoField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    TextField,
)

from server.models.base import BaseModel, utcnow
from server.models.operation import Operation

#: Roles in increasing order of privilege.
ROLES = ("viewer", "coordinator", "admin")


class StaffUser(BaseModel):
    """A staff member. Sees only the operations they are assigned to."""

    assignments: Any  # backref
    tokens: Any  # backref

    id = AutoField()
    username = CharField(max_length=64, unique=True)
    display_name = CharField(max_length=200, default="")
    password_hash = CharField(max_length=255)
    role = CharField(max_length=16, default="viewer")
    is_active = BooleanField(default=True)
    must_change_password = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)


class Assignment(BaseModel):
    """Gives a staff member access to one operation."""

    staff_id: int
    operation_id: int

    id = AutoField()
    staff = ForeignKeyField(StaffUser, backref="assignments", on_delete="CASCADE")
    operation = ForeignKeyField(Operation, backref="assignments", on_delete="CASCADE")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("staff", "operation"), True),)


class ApiToken(BaseModel):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    staff_id: int

    id = AutoField()
    staff = ForeignKeyField(StaffUser, backref="tokens", on_delete="CASCADE")
    token_hash = CharField(max_length=64, unique=True)
    label = CharField(max_length=100, default="")
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    revoked_at = DateTimeField(null=True)
    last_used_at = DateTimeField(null=True)


class AuditEntry(BaseModel):
    """Who did what, when. Details hold ids and counts, never personal data."""

    operation_id: int | None

    id = AutoField()
    at = DateTimeField(default=utcnow, index=True)
    actor = CharField(max_length=100)
    operation = ForeignKeyField(Operation, null=True, on_delete="SET NULL")
    action = CharField(max_length=64)
    target = CharField(max_length=200, default="")
    details = TextField(default="{}")
    reason = TextField(default="")
