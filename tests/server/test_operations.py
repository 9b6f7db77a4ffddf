"""Operations, checkpoints, groups and routes through the API and the CLI."""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient, FlaskCliRunner


def test_a_group_keeps_its_route_in_order(
    client: FlaskClient, admin_headers: dict[str, str], operation: dict[str, Any]
) -> None:
    groups = client.get(
        f"/api/v1/operations/{operation['id']}/groups", headers=admin_headers
    ).get_json()["items"]
    assert groups == [
        {
            "id": operation["group"]["id"],
            "operation_id": operation["id"],
            "name": "Bus 1",
            "leader": "",
            "expected_size": 52,
            "notes": "",
            "route": [c["id"] for c in operation["checkpoints"]],
        }
    ]


def test_a_route_through_unknown_checkpoints_is_refused(
    client: FlaskClient, admin_headers: dict[str, str], operation: dict[str, Any]
) -> None:
    resp = client.post(
        f"/api/v1/operations/{operation['id']}/groups",
        headers=admin_headers,
        json={"name": "Bus 2", "route": [9999]},
    )
    assert resp.status_code == 422
    assert resp.get_json()["error"]["details"]["fields"]["route"] == ["unknown checkpoint id 9999"]


def test_duplicate_names_conflict(
    client: FlaskClient, admin_headers: dict[str, str], operation: dict[str, Any]
) -> None:
    resp = client.post(
        "/api/v1/operations", json={"name": "Kharkiv students"}, headers=admin_headers
    )
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "conflict"


def test_the_cli_creates_an_operation_with_checkpoints_and_a_group(runner: FlaskCliRunner) -> None:
    out = runner.invoke(
        args=["operation", "create", "Odesa convoy", "--timezone", "Europe/Kyiv", "--json"]
    )
    assert out.exit_code == 0, out.output
    op = json.loads(out.output)
    assert op["timezone"] == "Europe/Kyiv"
    for name in ("Odesa assembly", "Palanca crossing"):
        res = runner.invoke(args=["checkpoint", "add", "--operation", "Odesa convoy", name])
        assert res.exit_code == 0, res.output
    res = runner.invoke(
        args=[
            "group",
            "add",
            "--operation",
            str(op["id"]),
            "Bus 7",
            "--expected",
            "55",
            "--route",
            "Odesa assembly,Palanca crossing",
            "--json",
        ]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["expected_size"] == 55
    assert len(json.loads(res.output)["route"]) == 2
    listed = json.loads(runner.invoke(args=["operation", "list", "--json"]).output)
    assert [o["name"] for o in listed] == ["Odesa convoy"]


def test_cli_errors_are_clear_and_exit_nonzero(runner: FlaskCliRunner) -> None:
    res = runner.invoke(args=["checkpoint", "add", "--operation", "nope", "X", "--json"])
    assert res.exit_code == 1
    assert json.loads(res.output)["error"]["code"] == "not_found"
    res = runner.invoke(args=["operation", "create", "Y", "--timezone", "Nowhere/City"])
    assert res.exit_code == 1
    assert "timezone" in res.output


def test_every_command_has_help_with_an_example(runner: FlaskCliRunner) -> None:
    for args in (
        ["operation", "create"],
        ["checkpoint", "add"],
        ["group", "add"],
        ["staff", "add"],
        ["staff", "token"],
        ["init"],
        ["serve"],
        ["keys", "rotate"],
    ):
        res = runner.invoke(args=[*args, "--help"])
        assert res.exit_code == 0
        assert "Example:" in res.output, args
