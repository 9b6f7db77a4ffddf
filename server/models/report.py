"""Nightly report runs: which night of which operation was written where, and its digest."""

from __future__ import annotations

from peewee import AutoField, CharField, DateField, DateTimeField, ForeignKeyField

from server.models.base import BaseModel, utcnow
from server.models.operation import Operation


class ReportRun(BaseModel):
    """One stored report folder (``instance/reports/<operation>/<date>/``)."""

    operation_id: int

    id = AutoField()
    operation = ForeignKeyField(Operation, backref="reports", on_delete="CASCADE")
    date = DateField()
    cutoff = DateTimeField()  # naive UTC
    folder = CharField(max_length=500)
    manifest_sha256 = CharField(max_length=64)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "report_run"
        indexes = ((("operation", "date"), True),)
