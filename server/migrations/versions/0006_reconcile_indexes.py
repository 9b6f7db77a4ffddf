"""Reconciliation read paths: a per-operation change mark and the indexes the queues use.

``reconcile_mark`` holds one random token per operation, replaced whenever derived state may
have changed (ingest, resolutions, rebuild); cached cross-person queues are keyed by it.
A frozen copy of the models as they were at this migration: never edit it; add a new one.
"""

import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, Model


def _now():
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class Operation(Base):
        class Meta:
            table_name = "operation"

    class ReconcileMark(Base):
        operation = ForeignKeyField(Operation, primary_key=True, on_delete="CASCADE")
        token = CharField(max_length=32)
        updated_at = DateTimeField(default=_now)

        class Meta:
            table_name = "reconcile_mark"

    db.create_tables([ReconcileMark])
    migrator.migrate(
        migrator.add_index("event", ("operation_id", "kind"), False),
        migrator.add_index("person", ("operation_id", "updated_at"), False),
        migrator.add_index("person", ("operation_id", "group_id"), False),
        migrator.add_index("person_state", ("operation_id", "state"), False),
    )
    # Headcounts look for check-ins at their checkpoint within a window of corrected time
    # (capture time minus the device's measured skew): an index on that very expression.
    db.execute_sql(
        'CREATE INDEX IF NOT EXISTS "event_operation_checkpoint_corrected" ON "event" '
        '("operation_id", "checkpoint", ("captured_ms" - COALESCE("skew_ms", 0)))'
    )
