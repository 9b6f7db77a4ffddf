"""Floods get 429 with the one error shape and Retry-After; oversized bodies get 413."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.ratelimit import Rate, TokenBucketLimiter, parse_rate
from sync import Device, Offline
from tests.conftest import login
from tests.sync.helpers import enrol_device, enrolment_code

AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(db_url: str, instance_path: Path) -> Iterator[AppFactory]:
    """Build the real application with some settings changed (the limits under test)."""
    from server import create_app
    from server.db import database
    from server.setup import bootstrap

    def build(**overrides: Any) -> Flask:
        app = create_app(
            {
                "TESTING": True,
                "DATABASE_URL": db_url,
                "INSTANCE_PATH": str(instance_path),
                "KEYS_DIR": str(instance_path / "keys"),
                **overrides,
            }
        )
        app.config["BOOTSTRAP"] = bootstrap(app)
        return app

    yield build
    if not database.is_closed():
        database.close()


def _assert_limited(resp: Any) -> int:
    body = resp.json() if callable(getattr(resp, "json", None)) else resp.get_json()
    assert resp.status_code == 429
    assert body["error"]["code"] == "rate_limited"
    assert set(body["error"]) == {"code", "message", "details"}
    retry_after = int(resp.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


def test_a_login_flood_gets_429_per_address_and_username(make_app: AppFactory) -> None:
    app = make_app(RATE_LIMIT_LOGIN="5/minute")
    client = app.test_client()
    wrong = {"username": "admin", "password": "not the password"}
    assert [client.post("/api/v1/tokens", json=wrong).status_code for _ in range(5)] == [401] * 5
    # 5 a minute refill one every 12 s; the hashing above took some of that already.
    assert 1 <= _assert_limited(client.post("/api/v1/tokens", json=wrong)) <= 12
    # The right password does not get past the flood either...
    password = app.config["BOOTSTRAP"]["first_admin"]["password"]
    right = {"username": "admin", "password": password}
    _assert_limited(client.post("/api/v1/tokens", json=right))
    # ...but another username from the same address, or another address, still may log in.
    other = {"username": "olena", "password": "x"}
    assert client.post("/api/v1/tokens", json=other).status_code == 401
    elsewhere = client.post("/api/v1/tokens", json=right, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert elsewhere.status_code == 201


def test_an_enrolment_flood_gets_429_per_address(make_app: AppFactory) -> None:
    app = make_app(RATE_LIMIT_ENROL="3/minute")
    client = app.test_client()
    body = {"code": "AAAA-BBBB-CC", "signing_key": "x", "encryption_key": "y", "clock": 1}
    headers = {"Muster-Protocol": "1"}
    codes = [client.post("/api/v1/sync/enrol", json=body, headers=headers) for _ in range(4)]
    assert [r.status_code for r in codes[:3]] != [429] * 3
    assert 429 not in [r.status_code for r in codes[:3]]
    _assert_limited(codes[3])


def test_a_device_over_its_sync_limit_gets_429_and_keeps_its_records(
    make_app: AppFactory, tmp_path: Path
) -> None:
    app = make_app(RATE_LIMIT_SYNC="3/minute")
    client = app.test_client()
    headers = login(client, "admin", app.config["BOOTSTRAP"]["first_admin"]["password"])
    op = client.post(
        "/api/v1/operations", json={"name": "Odesa", "timezone": "Europe/Kyiv"}, headers=headers
    ).get_json()
    cp = client.post(
        f"/api/v1/operations/{op['id']}/checkpoints",
        json={"name": "Palanca crossing", "kind": "border"},
        headers=headers,
    ).get_json()["id"]
    flooding = enrol_device(app, client, headers, op["id"], tmp_path / "a.db")
    quiet = enrol_device(app, client, headers, op["id"], tmp_path / "b.db")
    for _ in range(3):
        flooding.headcount(checkpoint=cp, group=1, count=1)
        flooding.push(max_attempts=1)
    flooding.headcount(checkpoint=cp, group=1, count=1)
    with pytest.raises(Offline):
        flooding.push(max_attempts=1)
    assert flooding.queued_count() == 1
    raw = flooding.transport.client.post(
        "http://muster/api/v1/sync/push", headers={"Muster-Device": str(flooding.device_id)}
    )
    _assert_limited(raw)
    # Another device is not slowed by its neighbour's flood.
    quiet.headcount(checkpoint=cp, group=1, count=1)
    assert quiet.push(max_attempts=1).accepted == 1


def test_limits_set_to_empty_are_off(make_app: AppFactory) -> None:
    app = make_app(RATE_LIMIT_LOGIN="")
    client = app.test_client()
    wrong = {"username": "admin", "password": "wrong"}
    assert {client.post("/api/v1/tokens", json=wrong).status_code for _ in range(30)} == {401}


def test_a_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucketLimiter(Rate(2, 60.0), clock=lambda: now[0])
    assert [bucket.take("d"), bucket.take("d")] == [0.0, 0.0]
    assert bucket.take("d") == pytest.approx(30.0)
    now[0] = 30.0
    assert bucket.take("d") == 0.0
    assert bucket.take("e") == 0.0
    assert parse_rate("600/minute") == Rate(600, 60.0)
    assert parse_rate("5/hours") == Rate(5, 3600.0)
    assert parse_rate("") is None
    with pytest.raises(ValueError):
        parse_rate("many/minute")


def test_oversized_bodies_get_413_with_the_one_error_shape(app: Flask, client: FlaskClient) -> None:
    huge = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    for path in ("/api/v1/sync/push", "/api/v1/sync/enrol", "/api/v1/tokens"):
        resp = client.post(
            path, data=huge, headers={"Muster-Protocol": "1", "Content-Type": "application/json"}
        )
        assert resp.status_code == 413, path
        assert resp.get_json()["error"]["code"] == "payload_too_large"


def test_normal_syncing_is_not_throttled_by_the_default_limits(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    device: Device = enrol_device(app, client, admin_headers, operation["id"], tmp_path / "d.db")
    cp, group = operation["checkpoints"][0]["id"], operation["group"]["id"]
    for n in range(120):
        device.headcount(checkpoint=cp, group=group, count=n % 50)
        assert device.push(max_attempts=1).accepted == 1
    assert enrolment_code(client, admin_headers, operation["id"])
