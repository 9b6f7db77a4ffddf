"""Closing an operation schedules the expiry of personal data; counts and reports survive."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from server.db import database
from server.models import Event, Operation, Person, QuarantinedRecord, utcnow
from server.ops import purge
from tests.ops.conftest import NAMES


def _close(
    client: FlaskClient, headers: dict[str, str], op_id: int, runner: FlaskCliRunner
) -> dt.datetime:
    out = runner.invoke(args=["operation", "close", str(op_id), "--json"])
    assert out.exit_code == 0, out.output
    database.connect(reuse_if_open=True)
    closed_at = Operation.get_by_id(op_id).closed_at
    assert closed_at is not None
    return closed_at


def _counts(op_id: int) -> list[tuple[Any, ...]]:
    return sorted(
        (e.kind, str(e.person), e.checkpoint, e.captured_ms, str(e.received_at))
        for e in Event.select().where(Event.operation == op_id)
    )


def _text_everywhere() -> str:
    """Every text and blob value of every table, to look for personal data."""
    parts = []
    for table in database.get_tables():
        for row in database.execute_sql(f'SELECT * FROM "{table}"').fetchall():
            for value in row:
                if isinstance(value, memoryview | bytes):
                    parts.append(bytes(value).decode("utf-8", "replace"))
                elif value is not None:
                    parts.append(str(value))
    return "\n".join(parts)


def test_purge_expires_personal_data_after_retention_and_keeps_counts(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    runner: FlaskCliRunner,
    populated: dict[str, Any],
) -> None:
    op_id = populated["operation"]["id"]
    overview_before = client.get(f"/api/v1/operations/{op_id}/overview", headers=admin_headers)
    assert overview_before.status_code == 200
    closed_at = _close(client, admin_headers, op_id, runner)
    database.connect(reuse_if_open=True)
    counts_before = _counts(op_id)
    assert len(counts_before) == 10

    # Not yet due: one day before the retention period ends nothing changes.
    early = closed_at + dt.timedelta(days=89)
    out = runner.invoke(args=["purge", "--now", early.isoformat(), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout) == {"retention_days": 90, "purged": []}
    database.connect(reuse_if_open=True)
    assert sorted(p.full_name for p in Person.select()) == NAMES

    plan = runner.invoke(args=["purge", "--dry-run", "--json"])
    due = json.loads(plan.stdout)["operations"][0]
    assert due["operation"] == op_id and due["purged"] is False
    assert due["purge_due_at"].startswith(str((closed_at + dt.timedelta(days=90)).date()))

    late = closed_at + dt.timedelta(days=90, seconds=1)
    out = runner.invoke(args=["purge", "--now", late.isoformat(), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["purged"] == [
        {"operation": op_id, "people": 6, "events": 10, "quarantined": 1}
    ]
    database.connect(reuse_if_open=True)
    people = list(Person.select())
    assert [p.full_name for p in people] == [purge.PLACEHOLDER] * 6
    assert {(p.document_number, p.phone, p.birth_date, p.document_key) for p in people} == {
        ("", "", None, "")
    }
    assert {p.expiry_date for p in people} == {utcnow().date()}
    everything = _text_everywhere()
    for n, name in enumerate(NAMES):
        assert name not in everything
        assert f"E{n:08d}" not in everything
        assert f"+38050000{n:04d}" not in everything
    assert {bytes(e.envelope) for e in Event.select()} == {b""}
    assert {bytes(q.envelope) for q in QuarantinedRecord.select()} == {b""}
    # Counting still works: same kinds, people, checkpoints and times; same overview.
    assert _counts(op_id) == counts_before
    walkin = json.loads(Event.get(Event.kind == "walkin").body)
    assert sorted(walkin) == [
        "at",
        "author",
        "checkpoint",
        "details",
        "kind",
        "method",
        "op",
        "person",
        "v",
    ]
    assert walkin["details"] == {"group": populated["operation"]["group"]["id"]}
    overview_after = client.get(f"/api/v1/operations/{op_id}/overview", headers=admin_headers)
    assert overview_after.get_json() == overview_before.get_json()
    # Derived state rebuilt from the expired events gives the same numbers.
    rebuilt = runner.invoke(args=["rebuild", "--operation", str(op_id), "--json"])
    assert rebuilt.exit_code == 0, rebuilt.output
    overview_rebuilt = client.get(f"/api/v1/operations/{op_id}/overview", headers=admin_headers)
    assert overview_rebuilt.get_json() == overview_before.get_json()

    # A second run finds nothing left to do.
    again = runner.invoke(args=["purge", "--now", late.isoformat(), "--json"])
    assert json.loads(again.stdout)["purged"] == []


def test_an_open_operation_is_never_purged(
    app: Flask, runner: FlaskCliRunner, populated: dict[str, Any]
) -> None:
    far = utcnow() + dt.timedelta(days=10_000)
    with app.app_context():
        database.connect(reuse_if_open=True)
        assert purge.purge_due(90, now=far) == []
        assert sorted(p.full_name for p in Person.select()) == NAMES
