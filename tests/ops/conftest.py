"""Fixtures for operations tests: an operation with real synced events, people and quarantine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sync.device import now_ms
from tests.sync.helpers import enrol_device

WALKINS = 6
CHECKINS = 4
NAMES = [f"Zhang Wei {n}" for n in range(WALKINS)]


@pytest.fixture
def populated(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> dict[str, Any]:
    """One device pushed walk-ins and check-ins through the real sync API; one record is
    quarantined. Returns ids and the personal values that must survive or expire."""
    device = enrol_device(app, client, admin_headers, operation["id"], tmp_path / "phone.db")
    cps = operation["checkpoints"]
    people = [
        device.walkin(
            {
                "full_name": name,
                "document_number": f"E{n:08d}",
                "phone": f"+38050000{n:04d}",
                "birth_date": "2001-02-03",
                "group": operation["group"]["id"],
            },
            checkpoint=cps[0]["id"],
            note=f"arrived with {name}",
        )
        for n, name in enumerate(NAMES)
    ]
    for person in people[:CHECKINS]:
        device.checkin(person, checkpoint=cps[1]["id"])
    report = device.push()
    assert report.accepted == WALKINS + CHECKINS
    # A malformed envelope: refused, kept in quarantine.
    answer = device.transport.call(
        "POST",
        "/sync/push",
        {"clock": now_ms(), "sessions": [], "envelopes": ["bm90IGFuIGVudmVsb3Bl"]},
    )
    assert answer["results"][0]["status"] == "rejected"
    event_ids = {str(e.event_id) for e in device.store.m.Outbox.select()}
    device.close()
    return {
        "operation": operation,
        "device_id": str(device.device_id),
        "people": [str(p) for p in people],
        "event_ids": event_ids,
    }
