"""Building blocks for report tests: an operation that started days ago, people, clocks."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server.db import database
from server.models import Device, Event, Person

KYIV = zoneinfo.ZoneInfo("Europe/Kyiv")


def local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    """An aware Kyiv time."""
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=KYIV)


def naive_utc(when: dt.datetime) -> dt.datetime:
    return when.astimezone(dt.UTC).replace(tzinfo=None)


def ms(when: dt.datetime) -> int:
    return int(when.timestamp() * 1000)


def make_operation(
    client: FlaskClient, headers: dict[str, str], first_day: dt.date
) -> dict[str, Any]:
    """An operation in Kyiv starting at 06:00 on ``first_day``, cut-off 21:00, two groups."""
    op = client.post(
        "/api/v1/operations",
        json={
            "name": "Kharkiv students",
            "timezone": "Europe/Kyiv",
            "starts_at": local(first_day, 6).isoformat(),
            "report_cutoff": "21:00",
        },
        headers=headers,
    ).get_json()
    cps = [
        client.post(
            f"/api/v1/operations/{op['id']}/checkpoints",
            json={"name": name, "kind": kind},
            headers=headers,
        ).get_json()["id"]
        for name, kind in [
            ("Kharkiv station", "station"),
            ("Medyka crossing", "border"),
            ("Przemysl reception", "reception"),
        ]
    ]
    groups = [
        client.post(
            f"/api/v1/operations/{op['id']}/groups",
            json={"name": name, "expected_size": size, "route": cps},
            headers=headers,
        ).get_json()["id"]
        for name, size in [("Bus 1", 10), ("Train 2", 4)]
    ]
    return {"id": op["id"], "cps": cps, "groups": groups, "start": local(first_day, 6)}


def add_people(
    app: Flask, op_id: int, group: int, names: list[str], entry: dt.datetime
) -> list[str]:
    """Roster people entered at ``entry`` (so the first night's snapshot includes them)."""
    ids = []
    with app.app_context(), database.connection_context():
        for i, name in enumerate(names):
            pid = uuid.uuid4()
            Person.create(
                id=pid,
                operation=op_id,
                group=group,
                full_name=name,
                external_id=f"g{group}-{i}",
                entry_date=naive_utc(entry),
            )
            ids.append(str(pid))
    return ids


def arrived_at(app: Flask, when: dt.datetime) -> int:
    """Stamp the events just ingested as received at ``when`` with no clock skew.

    Ingest stamps the real clock; the script moves the events it just pushed to their
    scripted arrival time (all earlier events were already moved days back, so "just
    ingested" means received within the last hour). Returns how many were moved.
    """
    recent = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(hours=1)
    with app.app_context(), database.connection_context():
        return (
            Event.update(received_at=naive_utc(when), skew_ms=0)
            .where(Event.received_at > recent)
            .execute()
        )


def enrolled_at(app: Flask, when: dt.datetime) -> None:
    with app.app_context(), database.connection_context():
        Device.update(enrolled_at=naive_utc(when)).where(Device.id.is_null(False)).execute()


class ScriptClock:
    """The devices' capture clock, set by the script (one second per capture)."""

    def __init__(self) -> None:
        self.t = 0

    def at(self, when: dt.datetime) -> None:
        self.t = ms(when)

    def __call__(self) -> int:
        self.t += 1000
        return self.t
