"""Helpers for the reliability suites: set up a live server over HTTP and read its database."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from server.db import open_database
from sync import Device, Transport
from tests.sync.helpers import FAST_VAULT, PASSPHRASE

#: Long runs (``make soak``) set MUSTER_SOAK=1.
SOAK = os.environ.get("MUSTER_SOAK", "") not in ("", "0")


def first_admin_password(log: str) -> str:
    """The one-time first-administrator password the server printed when it set itself up."""
    found = re.findall(r"password: (\S+)", log)
    assert found, "the server did not print a first administrator password"
    return found[-1]


@dataclass
class Site:
    """An operation on a live server, with what devices need: a checkpoint and a group."""

    url: str
    headers: dict[str, str]
    op_id: int
    checkpoint: int
    group: int

    def code(self) -> str:
        resp = httpx.post(
            f"{self.url}/api/v1/operations/{self.op_id}/enrolments",
            json={},
            headers=self.headers,
            timeout=30,
        )
        assert resp.status_code == 201, resp.text
        return str(resp.json()["code"])

    def enrol(self, path: Path, author: str = "olena") -> Device:
        """Enrol a device directly against the server (no faults in the way)."""
        return Device.enrol(
            path,
            self.url,
            self.code(),
            passphrase=PASSPHRASE,
            author=author,
            vault_params=FAST_VAULT,
        )


def make_site(url: str, password: str) -> Site:
    """Log in as the first administrator and create an operation with a checkpoint and a group."""
    resp = httpx.post(
        f"{url}/api/v1/tokens", json={"username": "admin", "password": password}, timeout=30
    )
    assert resp.status_code == 201, resp.text
    headers = {"Authorization": "Bearer " + resp.json()["token"]}
    op = httpx.post(
        f"{url}/api/v1/operations",
        json={"name": "Kharkiv students", "timezone": "Europe/Kyiv"},
        headers=headers,
        timeout=30,
    ).json()
    cp = httpx.post(
        f"{url}/api/v1/operations/{op['id']}/checkpoints",
        json={"name": "Medyka crossing", "kind": "border"},
        headers=headers,
        timeout=30,
    ).json()
    group = httpx.post(
        f"{url}/api/v1/operations/{op['id']}/groups",
        json={"name": "Bus 1", "expected_size": 52, "route": [cp["id"]]},
        headers=headers,
        timeout=30,
    ).json()
    return Site(url, headers, int(op["id"]), int(cp["id"]), int(group["id"]))


def one_shot_transport(device: Device, base_url: str, timeout: float = 10.0) -> Transport:
    """A transport for ``device`` that opens a new connection per request (one fault each)."""
    client = httpx.Client(
        timeout=timeout, limits=httpx.Limits(max_keepalive_connections=0, max_connections=4)
    )
    return Transport(base_url, device_id=device.device_id, keys=device.keys, client=client)


def server_events(db_url: str) -> list[tuple[str, str, int]]:
    """Every stored event as (event id, device id, sequence), read straight from the database."""
    db = open_database(db_url)
    db.connect()
    try:
        rows = db.execute_sql('SELECT "id", "device_id", "seq" FROM "event"').fetchall()
    finally:
        db.close()
    return [(str(uuid.UUID(str(i))), str(uuid.UUID(str(d))), int(s)) for i, d, s in rows]


def quarantined_ids(db_url: str) -> list[str]:
    """Event ids of every quarantined record (refused records are kept there)."""
    db = open_database(db_url)
    db.connect()
    try:
        rows = db.execute_sql('SELECT "event_id" FROM "quarantined_record"').fetchall()
    finally:
        db.close()
    return [str(uuid.UUID(str(r[0]))) if r[0] is not None else "" for r in rows]


def integrity_check(db_url: str) -> str:
    """``PRAGMA integrity_check`` of an SQLite database ("ok" when sound); "n/a" for PostgreSQL."""
    if not db_url.startswith("sqlite"):
        return "n/a"
    db = open_database(db_url)
    db.connect()
    try:
        return "\n".join(str(r[0]) for r in db.execute_sql("PRAGMA integrity_check").fetchall())
    finally:
        db.close()


def outbox_ids(device: Device, state: str | None = None) -> list[str]:
    return [r["event_id"] for r in device.outbox(state)]


def assert_exactly_once(db_url: str, devices: list[Device]) -> dict[str, Any]:
    """Every event each device captured is on the server once, sent, and nothing else is."""
    events = server_events(db_url)
    ids = [e[0] for e in events]
    assert len(ids) == len(set(ids))
    assert len({(d, s) for _, d, s in events}) == len(events)
    captured: set[str] = set()
    for device in devices:
        mine = outbox_ids(device)
        assert len(mine) == len(set(mine))
        captured |= set(mine)
        assert device.queued_count() == 0
        assert outbox_ids(device, "rejected") == []
        assert set(outbox_ids(device, "sent")) == set(mine)
    assert set(ids) == captured
    return {"events": len(ids)}
