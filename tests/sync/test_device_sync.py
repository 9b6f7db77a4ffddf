"""A device enrols, captures offline, pushes and pulls against the real application."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server.db import database
from server.models import Device as DeviceRow
from server.models import Event, Person, QuarantinedRecord
from tests.sync.helpers import enrol_device


def _person(app: Flask, op_id: int, name: str, doc: str) -> str:
    with app.app_context(), database.connection_context():
        from server import changelog

        pid = uuid.uuid4()
        Person.create(
            id=pid, operation=op_id, full_name=name, document_number=doc, document_key=doc.upper()
        )
        changelog.record(op_id, "person", [pid])
    return str(pid)


def test_captured_events_reach_the_server_exactly_once(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    pid = _person(app, operation["id"], "Zhang Wei", "E1234567")
    device = enrol_device(app, client, admin_headers, operation["id"], tmp_path / "d.db")
    cp = operation["checkpoints"][0]["id"]
    device.pull()
    assert [p["id"] for p in device.find("wei zhang")] == [pid]
    ids = [device.checkin(pid, checkpoint=cp, status="boarded") for _ in range(3)]
    walk = device.walkin({"full_name": "Li Na", "document_number": "G7654321"}, checkpoint=cp)
    device.headcount(checkpoint=cp, group=operation["group"]["id"], count=51)
    report = device.sync()
    assert (report.accepted, report.duplicate, report.rejected, report.still_queued) == (5, 0, 0, 0)
    with app.app_context(), database.connection_context():
        assert Event.select().count() == 5
        assert {e.id for e in Event.select().where(Event.kind == "checkin")} == set(ids)
        assert Person.get_by_id(walk).source == "walk-in"
        row = DeviceRow.get_by_id(device.device_id)
        assert (row.high_seq, row.contiguous_seq) == (5, 5)
    # Replaying everything changes nothing.
    m = device.store.m
    m.Outbox.update(state="queued").execute()
    again = device.sync()
    assert (again.accepted, again.duplicate) == (0, 5)
    with app.app_context(), database.connection_context():
        assert Event.select().count() == 5
        assert QuarantinedRecord.select().count() == 0
    assert device.status()["counts"] == {"queued": 0, "sent": 5, "rejected": 0}


def test_a_revoked_device_is_refused_and_its_records_quarantined(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    import pytest

    from sync import DeviceRevoked

    device = enrol_device(app, client, admin_headers, operation["id"], tmp_path / "d.db")
    cp = operation["checkpoints"][0]["id"]
    device.headcount(checkpoint=cp, group=operation["group"]["id"], count=50)
    assert device.sync().accepted == 1
    resp = client.post(
        f"/api/v1/operations/{operation['id']}/devices/{device.device_id}/revoke",
        json={"reason": "lost at the border"},
        headers=admin_headers,
    )
    assert resp.status_code == 200
    device.headcount(checkpoint=cp, group=operation["group"]["id"], count=49)
    with pytest.raises(DeviceRevoked):
        device.push()
    assert device.status()["revoked"] is True
    with app.app_context(), database.connection_context():
        assert Event.select().count() == 1
        q = list(QuarantinedRecord.select())
        assert [(r.reason, r.device_id) for r in q] == [("device_revoked", device.device_id)]
