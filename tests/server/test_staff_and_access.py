"""Staff accounts, tokens and who can see which operation."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from server.auth.passwords import hash_password, verify_password
from server.db import database
from server.models import ApiToken, AuditEntry, utcnow
from tests.conftest import login


def _staff(
    client: FlaskClient, headers: dict[str, str], username: str, role: str, operations: list[int]
) -> dict[str, Any]:
    resp = client.post(
        "/api/v1/staff",
        headers=headers,
        json={"username": username, "role": role, "operations": operations},
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def test_password_hashes_verify_only_the_right_password() -> None:
    stored = hash_password("correct horse battery", log_n=10)
    assert stored.startswith("scrypt$10$8$1$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterz", stored)
    assert not verify_password("x", "garbage")


def test_wrong_password_and_unknown_user_get_the_same_answer(
    client: FlaskClient, app: Flask
) -> None:
    a = client.post("/api/v1/tokens", json={"username": "admin", "password": "wrong"})
    b = client.post("/api/v1/tokens", json={"username": "nobody", "password": "wrong"})
    assert a.status_code == b.status_code == 401
    assert a.get_json() == b.get_json()
    assert a.get_json()["error"]["code"] == "invalid_credentials"


def test_requests_without_a_token_are_refused(client: FlaskClient) -> None:
    resp = client.get("/api/v1/operations")
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"


def test_staff_see_only_operations_they_are_assigned_to(
    client: FlaskClient, admin_headers: dict[str, str], operation: dict[str, Any]
) -> None:
    other = client.post(
        "/api/v1/operations", json={"name": "Odesa convoy"}, headers=admin_headers
    ).get_json()
    created = _staff(client, admin_headers, "olena", "coordinator", [operation["id"]])
    headers = login(client, "olena", created["one_time_password"])
    listed = client.get("/api/v1/operations", headers=headers).get_json()["items"]
    assert [o["id"] for o in listed] == [operation["id"]]
    assert client.get(f"/api/v1/operations/{other['id']}", headers=headers).status_code == 404
    assert (
        client.get(f"/api/v1/operations/{other['id']}/people", headers=headers).status_code == 404
    )
    assert (
        client.get(f"/api/v1/operations/{operation['id']}/people", headers=headers).status_code
        == 200
    )


def test_viewers_cannot_create_and_coordinators_cannot_administer(
    client: FlaskClient, admin_headers: dict[str, str], operation: dict[str, Any]
) -> None:
    viewer = _staff(client, admin_headers, "vika", "viewer", [operation["id"]])
    vh = login(client, "vika", viewer["one_time_password"])
    resp = client.post(
        f"/api/v1/operations/{operation['id']}/checkpoints", headers=vh, json={"name": "Lviv"}
    )
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "forbidden"
    coord = _staff(client, admin_headers, "coco", "coordinator", [operation["id"]])
    ch = login(client, "coco", coord["one_time_password"])
    assert (
        client.post(
            "/api/v1/staff", headers=ch, json={"username": "x1", "role": "admin"}
        ).status_code
        == 403
    )


def test_revoked_and_expired_tokens_are_refused(
    client: FlaskClient, app: Flask, admin_headers: dict[str, str]
) -> None:
    assert client.get("/api/v1/me", headers=admin_headers).status_code == 200
    assert client.delete("/api/v1/tokens/current", headers=admin_headers).status_code == 204
    assert client.get("/api/v1/me", headers=admin_headers).status_code == 401
    headers = login(client, "admin", app.config["BOOTSTRAP"]["first_admin"]["password"])
    with app.app_context(), database.connection_context():
        ApiToken.update(expires_at=utcnow()).where(ApiToken.revoked_at.is_null()).execute()
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_tokens_are_stored_only_as_hashes(
    client: FlaskClient, app: Flask, admin_headers: dict[str, str]
) -> None:
    secret = admin_headers["Authorization"].split()[1]
    with app.app_context(), database.connection_context():
        stored = [t.token_hash for t in ApiToken.select()]
    assert secret not in stored
    assert all(len(h) == 64 for h in stored)


def test_administrative_acts_are_audited_without_personal_data(
    client: FlaskClient, app: Flask, admin_headers: dict[str, str], operation: dict[str, Any]
) -> None:
    _staff(client, admin_headers, "olena", "coordinator", [operation["id"]])
    with app.app_context(), database.connection_context():
        actions = [a.action for a in AuditEntry.select().order_by(AuditEntry.id)]
    assert actions[:1] == ["staff.create"]
    assert "operation.create" in actions
    assert actions.count("checkpoint.create") == 3
    assert "group.create" in actions
    assert "staff.assign" in actions
