"""Planner statistics kept up as tables grow (``server.db.statistics``), on both backends.

Without them SQLite reads a person's events and the voids aimed at them by scanning every
event (0.33 s a query at 1,000,000 events, 18 ms with statistics: docs/performance.md); at
the few rows a test holds a scan is the right plan, so this checks that the statistics are
there, and the benchmark that they pay."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.db import database, statistics
from tests.sync.helpers import add_roster, enrol_device


def test_pushes_that_grow_the_event_table_have_it_analysed_on_either_backend(
    backend: str,
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(statistics, "EVERY", 10)
    op_id = operation["id"]
    cp = operation["checkpoints"][0]["id"]
    roster = add_roster(app, operation, 8)
    device = enrol_device(app, client, admin_headers, op_id, tmp_path / "d.db")
    for i in range(24):
        device.checkin(roster[i % 8], checkpoint=cp, status="boarded")
    device.push(base_delay=0, max_delay=0)
    device.close()
    with app.app_context(), database.connection_context():
        if backend == "sqlite":
            analysed = database.execute_sql(
                "SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'event'"
            ).fetchone()[0]
            assert analysed > 0
        else:
            (last,) = database.execute_sql(
                "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'event'"
            ).fetchone()
            assert last is not None
