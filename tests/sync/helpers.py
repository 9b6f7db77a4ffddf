"""Helpers for device tests: enrol devices against an in-process app or a live server."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from flask import Flask
from flask.testing import FlaskClient

from sync import Device, Transport

#: Light Argon2id settings so tests stay fast; production uses RFC 9106's 64 MiB, t=3, p=4.
FAST_VAULT = {"memory_cost": 1024, "iterations": 1, "lanes": 1}
PASSPHRASE = "correct horse battery staple"


def enrolment_code(client: FlaskClient, headers: dict[str, str], op_id: int) -> str:
    resp = client.post(f"/api/v1/operations/{op_id}/enrolments", json={}, headers=headers)
    assert resp.status_code == 201, resp.get_json()
    return str(resp.get_json()["code"])


def wsgi_transport(app: Flask) -> Transport:
    """A transport that speaks real HTTP semantics to the app in this process."""
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://muster")
    return Transport("http://muster", client=client)


def enrol_device(
    app: Flask,
    client: FlaskClient,
    headers: dict[str, str],
    op_id: int,
    path: Path,
    author: str = "olena",
    **kw: Any,
) -> Device:
    code = enrolment_code(client, headers, op_id)
    return Device.enrol(
        path,
        "http://muster",
        code,
        passphrase=PASSPHRASE,
        author=author,
        vault_params=FAST_VAULT,
        transport=wsgi_transport(app),
        **kw,
    )


def add_roster(app: Flask, operation: dict[str, Any], n: int) -> list[uuid.UUID]:
    """Put ``n`` people on the operation's roster (in its first group); their ids."""
    from server import changelog
    from server.db import database
    from server.models import Person

    roster = [uuid.uuid4() for _ in range(n)]
    with app.app_context(), database.connection_context():
        Person.insert_many(
            [
                {
                    "id": pid,
                    "operation": operation["id"],
                    "group": operation["group"]["id"],
                    "full_name": f"Student {i}",
                }
                for i, pid in enumerate(roster)
            ]
        ).execute()
        changelog.record(operation["id"], "person", roster)
    return roster
