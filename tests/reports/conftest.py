"""The scripted two-day evacuation shared by the report tests (see ``script.py``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.reports.helpers import KYIV, ScriptClock, add_people, enrolled_at, make_operation
from tests.sync.helpers import enrol_device


@pytest.fixture
def evacuation(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """Bus 1 (10) and Train 2 (4); three devices; day 1's records ingested, nothing else."""
    now = dt.datetime.now(KYIV)
    # Day 2 is the latest night whose 21:00 cut-off has passed, day 1 the one before.
    day2 = now.date() if now.time() >= dt.time(21) else now.date() - dt.timedelta(days=1)
    day1 = day2 - dt.timedelta(days=1)
    op = make_operation(client, admin_headers, day1)
    bus, train = op["groups"]
    bus_people = add_people(
        app,
        op["id"],
        bus,
        ["张伟", "Олена Коваленко"] + [f"Student {i}" for i in range(2, 10)],
        op["start"],
    )
    train_people = add_people(
        app, op["id"], train, [f"Traveller {i}" for i in range(4)], op["start"]
    )
    clock = ScriptClock()
    monkeypatch.setattr("sync.device.now_ms", clock)
    devices = [
        enrol_device(app, client, admin_headers, op["id"], tmp_path / f"d{i}.db", author=a)
        for i, a in enumerate(["olena", "taras", "li"], start=1)
    ]
    enrolled_at(app, op["start"])
    for d in devices:
        d.pull()
    return {
        **op,
        "day1": day1,
        "day2": day2,
        "bus": bus_people,
        "train": train_people,
        "clock": clock,
        "devices": devices,
    }
