"""Migrations: from empty and from every older version, on SQLite and PostgreSQL."""

from __future__ import annotations

import os

import pytest
from playhouse.migrations import Runner

from server import migrations
from server.db import open_database


def _tables(db: object) -> set[str]:
    return set(db.get_tables())  # type: ignore[attr-defined]


ALL = sorted(
    name[:-3]
    for name in os.listdir(migrations.VERSIONS_DIR)
    if name[:4].isdigit() and name.endswith(".py")
)
OLDER, LATEST = ALL[:-1], ALL[-1]


@pytest.mark.parametrize("start", OLDER)
def test_a_database_at_an_older_version_upgrades_to_the_latest(db_url: str, start: str) -> None:
    db = open_database(db_url)
    db.connect()
    try:
        runner = Runner(db, directory=migrations.VERSIONS_DIR, table_name="schema_migration")
        runner.up(target=start)
        assert migrations.schema_version(db) == int(start[:4])
        applied = migrations.apply_pending(db)
        assert applied == [name for name in [*OLDER, LATEST] if name > start]
        assert migrations.schema_version(db) == migrations.latest_version()
        assert {"event", "device", "person", "quarantined_record"} <= _tables(db)
        assert migrations.apply_pending(db) == []
    finally:
        db.close()


def test_an_empty_database_reports_version_zero(db_url: str) -> None:
    db = open_database(db_url)
    db.connect()
    try:
        assert migrations.schema_version(db) == 0
        assert migrations.latest_version() >= 2
    finally:
        db.close()
