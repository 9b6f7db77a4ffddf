"""Append to the change log that drives pull cursors, in the writer's transaction.

On PostgreSQL concurrent writers could commit change ids out of order, and a device whose
cursor had passed a later id would never see the earlier one. A transaction-scoped advisory
lock serialises change-log writers, so ids become visible in order. SQLite has one writer.
"""

from __future__ import annotations

from collections.abc import Iterable

from peewee import PostgresqlDatabase

from server.db import database
from server.models import Change

_LOCK_KEY = 0x6368616E6765  # "change"


def record(operation_id: int, entity: str, entity_ids: Iterable[str | int]) -> None:
    """Record that ``entity`` rows changed; call inside the transaction that changed them."""
    rows = [
        {"operation": operation_id, "entity": entity, "entity_id": str(eid)} for eid in entity_ids
    ]
    if not rows:
        return
    if isinstance(database.obj, PostgresqlDatabase):
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    for start in range(0, len(rows), 500):
        Change.insert_many(rows[start : start + 500]).execute()
