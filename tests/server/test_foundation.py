"""The application factory, health, configuration, migrations and the error shape."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from server import migrations
from server.db import current_settings, database


def test_healthz_reports_backend_and_schema_version(client: FlaskClient, backend: str) -> None:
    resp = client.get("/healthz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "ok"
    assert body["database"] == backend
    assert body["schema_version"] == migrations.latest_version()


def test_sqlite_connections_run_wal_with_full_synchronous(app: Flask, backend: str) -> None:
    if backend != "sqlite":
        return
    with app.app_context():
        database.connect(reuse_if_open=True)
        assert current_settings() == {"journal_mode": "wal", "synchronous": 2}


def test_migrations_are_idempotent_and_reach_the_latest_version(app: Flask) -> None:
    with app.app_context(), database.connection_context():
        assert migrations.apply_pending(database.obj) == []
        assert migrations.schema_version(database.obj) == migrations.latest_version()
        assert all(m["applied"] for m in migrations.status(database.obj))


def test_key_files_are_readable_by_the_owner_only(app: Flask) -> None:
    keys = Path(app.config["KEYS_DIR"])
    files = list(keys.iterdir())
    assert len(files) >= 4
    for f in files:
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f.name
    assert stat.S_IMODE(os.stat(keys).st_mode) == 0o700


def test_first_administrator_is_created_once(app: Flask) -> None:
    from server.setup import bootstrap

    assert app.config["BOOTSTRAP"]["first_admin"]["username"] == "admin"
    assert len(app.config["BOOTSTRAP"]["first_admin"]["password"]) == 20
    assert bootstrap(app)["first_admin"] is None


def test_unknown_route_answers_the_one_error_shape(client: FlaskClient) -> None:
    resp = client.get("/api/v1/nothing-here")
    assert resp.status_code == 404
    assert resp.get_json() == {
        "error": {"code": "not_found", "message": "Not Found.", "details": {}}
    }


def test_wrong_method_answers_405_with_allow_header(client: FlaskClient) -> None:
    resp = client.delete("/healthz")
    assert resp.status_code == 405
    assert resp.get_json()["error"]["code"] == "method_not_allowed"
    assert "GET" in resp.headers["Allow"]


def test_validation_errors_name_each_field(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    resp = client.post(
        "/api/v1/operations",
        json={"name": "", "timezone": "Mars/Olympus", "colour": "red"},
        headers=admin_headers,
    )
    assert resp.status_code == 422
    err = resp.get_json()["error"]
    assert err["code"] == "validation_failed"
    assert set(err["details"]["fields"]) == {"name", "timezone", "colour"}


def test_non_json_body_is_refused_with_415(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    resp = client.post("/api/v1/operations", data="name=x", headers=admin_headers)
    assert resp.status_code == 415
    assert resp.get_json()["error"]["code"] == "unsupported_media_type"


def test_oversized_body_is_refused_with_413(
    client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    big = "x" * (9 * 1024 * 1024)
    resp = client.post(
        "/api/v1/operations",
        data=big,
        headers={**admin_headers, "Content-Type": "application/json"},
    )
    assert resp.status_code == 413
    assert resp.get_json()["error"]["code"] == "payload_too_large"


def test_create_app_does_nothing_at_import_time() -> None:
    import importlib

    import server

    importlib.reload(server)
    assert not hasattr(server, "app")
