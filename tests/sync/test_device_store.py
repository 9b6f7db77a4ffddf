"""The device store: nothing personal in its files, durable capture, the passphrase."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server import changelog
from server.db import database
from server.models import Person
from sync import Device, InvalidEvent, WrongPassphrase
from tests.sync.helpers import PASSPHRASE, enrol_device

FIXTURE_PEOPLE = [
    ("张伟", "Zhang Wei", "E98765432"),
    ("Олександр Шевченко", "Oleksandr Shevchenko", "FB1122334"),
    ("李娜", "Li Na", "G55667788"),
]


def _seed(app: Flask, op_id: int) -> list[str]:
    ids = []
    with app.app_context(), database.connection_context():
        for name, alt, doc in FIXTURE_PEOPLE:
            pid = uuid.uuid4()
            Person.create(
                id=pid,
                operation=op_id,
                full_name=name,
                alternate_names=f'["{alt}"]',
                document_number=doc,
                document_key=doc,
                phone="+380501234567",
            )
            ids.append(str(pid))
        changelog.record(op_id, "person", ids)
    return ids


def test_device_files_hold_no_name_or_document_number_from_the_fixtures(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    ids = _seed(app, operation["id"])
    path = tmp_path / "field.db"
    device = enrol_device(app, client, admin_headers, operation["id"], path)
    device.pull()
    cp = operation["checkpoints"][0]["id"]
    assert [p["id"] for p in device.find("shevchenko oleksandr")] == [ids[1]]
    assert [p["id"] for p in device.find("e 9876 5432")] == [ids[0]]
    device.checkin(ids[0], checkpoint=cp, note="Zhang Wei boarded with E98765432")
    device.walkin(
        {"full_name": "Walk Innova", "document_number": "WK0099887", "alternate_names": ["沃克"]},
        checkpoint=cp,
    )
    files = [p for p in tmp_path.iterdir() if p.name.startswith("field.db")]
    assert {p.name for p in files} >= {"field.db", "field.db-wal"}
    secrets = [s for row in FIXTURE_PEOPLE for s in row] + [
        "Walk Innova",
        "WK0099887",
        "沃克",
        "+380501234567",
        "Zhang",
        "Shevchenko",
    ]
    for f in files:
        data = f.read_bytes()
        for secret in secrets:
            for encoded in (secret.encode("utf-8"), secret.encode("utf-16-le")):
                assert encoded not in data, (f.name, "fixture value found")
    device.close()
    # After unlocking again, everything is there.
    again = Device.open(path, PASSPHRASE)
    assert len(again.find("walk innova")) == 1
    assert again.queued_count() == 2


def test_a_wrong_passphrase_opens_nothing(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    path = tmp_path / "field.db"
    enrol_device(app, client, admin_headers, operation["id"], path).close()
    with pytest.raises(WrongPassphrase):
        Device.open(path, "not the passphrase")


def test_an_invalid_capture_records_nothing(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    device = enrol_device(app, client, admin_headers, operation["id"], tmp_path / "f.db")
    with pytest.raises(InvalidEvent) as info:
        device.headcount(
            checkpoint=operation["checkpoints"][0]["id"], group=operation["group"]["id"], count=-3
        )
    assert "count" in info.value.fields
    assert device.queued_count() == 0
    assert device.store.get("next_seq") == 1


def test_a_capture_is_committed_before_it_returns(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    """A second connection (another process would do the same) sees the record at once."""
    import sqlite3

    path = tmp_path / "f.db"
    device = enrol_device(app, client, admin_headers, operation["id"], path)
    eid = device.headcount(
        checkpoint=operation["checkpoints"][0]["id"], group=operation["group"]["id"], count=52
    )
    other = sqlite3.connect(path)
    rows = other.execute("SELECT event_id, state FROM outbox").fetchall()
    assert rows == [(str(eid), "queued")]
    assert device.store.db.execute_sql("PRAGMA synchronous").fetchone()[0] == 2
    assert device.store.db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert device.store.db.execute_sql("PRAGMA secure_delete").fetchone()[0] == 1
