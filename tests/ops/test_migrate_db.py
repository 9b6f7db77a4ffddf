"""``migrate-db`` copies a SQLite instance to PostgreSQL record for record, and refuses data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskCliRunner

from server.db import database, open_database
from server.models import ALL_MODELS, Device, Event, Person, QuarantinedRecord
from server.ops.checksums import table_digest
from server.ops.migrate_db import copied_models
from tests.ops.helpers import PG_URL, needs_postgresql, reset_postgresql

pytestmark = needs_postgresql


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """The source is always a SQLite file: that is the deployment moving up."""
    return f"sqlite:///{tmp_path / 'muster.db'}"


def _snapshot(db: Any) -> dict[str, Any]:
    with db.bind_ctx(ALL_MODELS):
        return {
            "events": sorted(
                (str(e.id), e.seq, e.kind, str(e.person), e.content_hash, bytes(e.envelope), e.body)
                for e in Event.select()
            ),
            "people": sorted(
                (str(p.id), p.full_name, p.document_number, p.phone, str(p.birth_date))
                for p in Person.select()
            ),
            "devices": sorted(
                (str(d.id), bytes(d.signing_key), d.high_seq, d.contiguous_seq)
                for d in Device.select()
            ),
            "quarantine": sorted(
                (q.reason, bytes(q.envelope), str(q.device_id)) for q in QuarantinedRecord.select()
            ),
        }


def test_migrate_db_copies_every_record_to_postgresql_and_verifies_it(
    runner: FlaskCliRunner, populated: dict[str, Any]
) -> None:
    reset_postgresql(PG_URL)
    out = runner.invoke(args=["migrate-db", "--to", PG_URL, "--batch", "3", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert report["source"] == "sqlite" and report["target"] == "postgresql"
    assert report["tables"]["event"]["rows"] == 10
    assert report["tables"]["person"]["rows"] == 6
    assert report["tables"]["quarantined_record"]["rows"] == 1
    assert report["tables"]["device"]["rows"] == 1

    database.connect(reuse_if_open=True)
    source = _snapshot(database.obj)
    target = open_database(PG_URL)
    target.connect()
    try:
        copied = _snapshot(target)
        assert copied == source
        assert {e[0] for e in copied["events"]} == populated["event_ids"]
        assert len(copied["people"]) == 6
        for model in copied_models():
            assert table_digest(model, target) == table_digest(model, database.obj)
        # Ids continue after the copied ones: the next operation gets the next number.
        next_id = target.execute_sql(
            "INSERT INTO operation (name, timezone, starts_at, status, report_cutoff, created_at)"
            " VALUES ('next', 'UTC', now(), 'active', '21:00', now()) RETURNING id"
        ).fetchone()[0]
        assert next_id == populated["operation"]["id"] + 1
    finally:
        target.close()


def test_migrate_db_refuses_a_target_that_holds_data(
    runner: FlaskCliRunner, populated: dict[str, Any]
) -> None:
    reset_postgresql(PG_URL)
    first = runner.invoke(args=["migrate-db", "--to", PG_URL, "--json"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(args=["migrate-db", "--to", PG_URL, "--json"])
    assert again.exit_code == 1
    body = json.loads(again.stdout)
    assert body["error"]["code"] == "conflict"
    assert "event" in body["error"]["details"]["tables_with_rows"]
