"""Numbered schema migrations, run by peewee's ``playhouse.migrations`` runner.

Each file in ``versions/`` is ``NNNN_name.py`` with ``up(migrator, db)``; new tables are
declared there as frozen copies so that old migrations never change meaning when the
application's models do. ``muster-server init`` and every server start apply what is pending.
On PostgreSQL the run holds an advisory lock, so processes starting together migrate once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from peewee import Database, PostgresqlDatabase
from playhouse.migrations import Runner

VERSIONS_DIR = os.path.join(os.path.dirname(__file__), "versions")
_ADVISORY_LOCK_KEY = 0x6D75737465  # "muste"


def _runner(db: Database) -> Runner:
    return Runner(db, directory=VERSIONS_DIR, table_name="schema_migration")


@contextmanager
def exclusive(db: Database) -> Iterator[None]:
    """Hold the setup lock (a PostgreSQL advisory lock; re-entrant) so one process sets up."""
    if not isinstance(db, PostgresqlDatabase):
        yield
        return
    db.execute_sql("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
    try:
        yield
    finally:
        db.execute_sql("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))


def apply_pending(db: Database) -> list[str]:
    """Apply every pending migration in order; return the names applied."""
    if isinstance(db, PostgresqlDatabase):
        db.execute_sql("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        try:
            return list(_runner(db).up())
        finally:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
    return list(_runner(db).up())


def status(db: Database) -> list[dict[str, Any]]:
    """Each known migration with whether (and when) it was applied."""
    return [
        {"name": m.name, "applied": m.applied.isoformat() if m.applied else None}
        for m in _runner(db).status()
    ]


def schema_version(db: Database) -> int:
    """The number of the latest applied migration (0 for an empty database)."""
    applied = [int(m.name[:4]) for m in _runner(db).status() if m.applied]
    return max(applied, default=0)


def latest_version() -> int:
    """The number of the newest migration shipped with this code."""
    names = [n for n in os.listdir(VERSIONS_DIR) if n[:4].isdigit() and n.endswith(".py")]
    return max((int(n[:4]) for n in names), default=0)
