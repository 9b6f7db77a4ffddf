"""The change log behind pull cursors: one row per change to data devices download."""

from __future__ import annotations

from peewee import BigAutoField, CharField, DateTimeField, ForeignKeyField

from server.models.base import BaseModel, utcnow
from server.models.operation import Operation


class Change(BaseModel):
    """A change to a checkpoint, group, person or resolution. Its id is the pull cursor."""

    operation_id: int

    id = BigAutoField()
    operation = ForeignKeyField(Operation, on_delete="CASCADE")
    entity = CharField(max_length=16)
    entity_id = CharField(max_length=64)
    at = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("operation", "id"), False),)
