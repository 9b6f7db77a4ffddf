"""Nightly reports: one row per stored report folder.

A frozen copy of the model as it was at this migration: never edit it; add a new one.
"""

import datetime

from peewee import AutoField, CharField, DateField, DateTimeField, ForeignKeyField, Model


def _now():
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Operation(Base):
        id = AutoField()

    class ReportRun(Base):
        id = AutoField()
        operation = ForeignKeyField(Operation, on_delete="CASCADE")
        date = DateField()
        cutoff = DateTimeField()
        folder = CharField(max_length=500)
        manifest_sha256 = CharField(max_length=64)
        created_at = DateTimeField(default=_now)

        class Meta:
            table_name = "report_run"
            indexes = ((("operation", "date"), True),)

    db.create_tables([ReportRun])
