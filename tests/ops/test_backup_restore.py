"""Backups and restores find every event; restore refuses to overwrite data unless forced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask.testing import FlaskCliRunner

from server.db import database
from server.models import Event, Person, QuarantinedRecord


def _state() -> tuple[set[str], set[str], int]:
    events = {str(e.id) for e in Event.select(Event.id)}
    names = {p.full_name for p in Person.select(Person.full_name)}
    return events, names, QuarantinedRecord.select().count()


def test_a_restored_backup_holds_every_event(
    runner: FlaskCliRunner, populated: dict[str, Any], tmp_path: Path
) -> None:
    database.connect(reuse_if_open=True)
    before = _state()
    assert before[0] == populated["event_ids"]
    assert len(before[0]) == 10
    target = tmp_path / "backups" / "muster-test.bak"

    out = runner.invoke(args=["backup", "--to", str(target), "--json"])
    assert out.exit_code == 0, out.output
    assert target.stat().st_size > 0
    # Lose everything after the backup: the events table is emptied.
    database.connect(reuse_if_open=True)
    Event.delete().execute()
    assert Event.select().count() == 0

    refused = runner.invoke(args=["restore", str(target), "--json"])
    assert refused.exit_code == 1
    assert '"conflict"' in refused.output
    database.connect(reuse_if_open=True)
    assert Event.select().count() == 0

    out = runner.invoke(args=["restore", str(target), "--force", "--json"])
    assert out.exit_code == 0, out.output
    database.connect(reuse_if_open=True)
    assert _state() == before


def test_backup_refuses_to_overwrite_an_existing_file(
    runner: FlaskCliRunner, populated: dict[str, Any], tmp_path: Path
) -> None:
    target = tmp_path / "exists.bak"
    target.write_bytes(b"keep me")
    out = runner.invoke(args=["backup", "--to", str(target), "--json"])
    assert out.exit_code == 1
    assert target.read_bytes() == b"keep me"


def test_restore_refuses_a_file_that_is_not_a_backup(
    runner: FlaskCliRunner, populated: dict[str, Any], tmp_path: Path, backend: str
) -> None:
    junk = tmp_path / "junk.bak"
    junk.write_bytes(b"not a database" * 100)
    out = runner.invoke(args=["restore", str(junk), "--force", "--json"])
    assert out.exit_code == 1
    database.connect(reuse_if_open=True)
    assert Event.select().count() == 10
