"""Drop three event indexes that only cost inserts.

Every read of events by receipt time also names the operation, and ``(operation_id,
received_at)`` serves those; ``operation_id`` and ``device_id`` alone are the leading columns
of other indexes (``(operation_id, ...)`` three times, the unique ``(device_id, seq)``), which
serve the lookups and the cascading deletes as well. Each was kept up to date by every
insert on the ingest path: three B-trees of ten.
"""


def up(migrator, db):
    for name in ("event_received_at", "event_operation_id", "event_device_id"):
        db.execute_sql(f'DROP INDEX IF EXISTS "{name}"')
