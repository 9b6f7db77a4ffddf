"""Concurrent pushes share group commits: every record stored and acknowledged once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server.db import database
from server.models import Event
from sync import Device
from tests.sync.helpers import enrol_device


def _enrol(
    app: Flask, client: FlaskClient, headers: dict[str, str], op_id: int, path: Path
) -> Device:
    d = enrol_device(app, client, headers, op_id, path)
    d.pull()
    return d


def test_pushes_from_many_devices_at_once_are_each_stored_and_acknowledged_once(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    devices = [
        _enrol(app, client, admin_headers, operation["id"], tmp_path / f"d{i}.db") for i in range(6)
    ]
    checkpoint = int(operation["checkpoints"][0]["id"])
    for d in devices:
        for n in range(40):
            d.headcount(checkpoint=checkpoint, group=operation["group"]["id"], count=n)
    errors: list[BaseException] = []

    def push(d: Device) -> None:
        try:
            d.push(base_delay=0.01)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(d,)) for d in devices]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert [d.queued_count() for d in devices] == [0] * len(devices)
    with app.app_context(), database.connection_context():
        assert Event.select().count() == 6 * 40
