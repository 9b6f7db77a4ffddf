"""Access control: every cell of ``matrix.py`` run against the real app, on both backends.

One world per backend (module scope: building it per case would take minutes): two operations
A and B with a checkpoint, a group, people, devices, a resolution and a nightly report each;
staff assigned to A only (viewer, coordinator, admin), an admin whose token was revoked and an
admin whose account was disabled. "own" is operation A, "other" is B. Console form posts carry
a valid CSRF token for their session: a missing token would hide the access decision behind a
400 (CSRF has its own tests in ``tests/console``).
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sync import Device
from sync.crypto import DeviceKeys
from sync.errors import ServerRefused
from sync.transport import Transport
from tests.conftest import BACKENDS, PG_URL, login, reset_postgresql
from tests.security.matrix import API, CONSOLE, SYNC, Case, Row, SyncRow, cases
from tests.sync.helpers import FAST_VAULT, PASSPHRASE, enrolment_code, wsgi_transport

pytestmark = pytest.mark.storage

PASSWORD = "a long staff password"
NIGHT = (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).date()
_counter = itertools.count(1)


@dataclass
class Op:
    """Objects of one operation that path parameters point at."""

    id: int
    checkpoint: int
    group: int
    people: list[str]
    device: Device
    resolution: str


@dataclass
class World:
    app: Flask
    api: FlaskClient
    tmp: Path
    admin: dict[str, str]
    ops: dict[str, Op]
    headers: dict[str, dict[str, str]]
    console: dict[str, FlaskClient]
    usernames: dict[str, str]
    revoked_device: Device
    spare: list[Device] = field(default_factory=list)

    def device(self, target: str) -> Device:
        """A new enrolled device of the operation (for cases that revoke one)."""
        return Device.enrol(
            self.tmp / f"d{next(_counter)}.db",
            "http://muster",
            enrolment_code(self.api, self.admin, self.ops[target].id),
            passphrase=PASSPHRASE,
            author="officer",
            vault_params=FAST_VAULT,
            transport=wsgi_transport(self.app),
        )


def _roster(rows: list[tuple[str, str]]) -> bytes:
    lines = ["external id,full name,group"] + [f"{e},{n},Bus 1" for e, n in rows]
    return ("\n".join(lines) + "\n").encode()


def _operation(w: World, name: str) -> Op:
    c, h = w.api, w.admin
    starts = (dt.datetime.now(dt.UTC) - dt.timedelta(days=4)).isoformat()
    op = c.post(
        "/api/v1/operations", json={"name": name, "timezone": "UTC", "starts_at": starts}, headers=h
    ).get_json()
    base = f"/api/v1/operations/{op['id']}"
    cp = c.post(f"{base}/checkpoints", json={"name": "Station"}, headers=h).get_json()["id"]
    group = c.post(
        f"{base}/groups", json={"name": "Bus 1", "expected_size": 3, "route": [cp]}, headers=h
    ).get_json()["id"]
    resp = c.post(
        f"{base}/rosters",
        data={
            "file": (
                io.BytesIO(_roster([("X1", "Ann Ash"), ("X2", "Bo Birch")])),
                "r.csv",
            )
        },
        headers=h,
    )
    assert resp.status_code == 201, resp.get_json()
    people = [p["id"] for p in c.get(f"{base}/people", headers=h).get_json()["items"]]
    device = Device.enrol(
        w.tmp / f"{name}.db",
        "http://muster",
        enrolment_code(c, h, op["id"]),
        passphrase=PASSPHRASE,
        author="officer",
        vault_params=FAST_VAULT,
        transport=wsgi_transport(w.app),
    )
    device.checkin(people[0], checkpoint=cp)
    assert device.sync().accepted == 1
    res = c.post(
        f"{base}/resolutions",
        json={"kind": "confirm", "person": people[1], "reason": "seen"},
        headers=h,
    )
    assert res.status_code == 201, res.get_json()
    result = w.app.test_cli_runner().invoke(
        args=["report", "nightly", "--operation", str(op["id"]), "--date", NIGHT.isoformat()]
    )
    assert result.exit_code == 0, result.output
    return Op(op["id"], cp, group, people, device, res.get_json()["id"])


def _csrf(app: Flask, client: FlaskClient) -> str:
    """A valid CSRF token for the client's session, made as Flask-WTF makes it."""
    from itsdangerous import URLSafeTimedSerializer

    client.get("/console/login")  # a first request sets the secret key from the keyring
    with client.session_transaction() as session:
        raw = session.setdefault("csrf_token", uuid.uuid4().hex)
    return URLSafeTimedSerializer(app.secret_key, salt="wtf-csrf-token").dumps(raw)


def _console_client(app: Flask, username: str, password: str) -> FlaskClient:
    client = app.test_client()
    form = {"username": username, "password": password, "csrf_token": _csrf(app, client)}
    resp = client.post("/console/login", data=form)
    assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
    return client


@pytest.fixture(scope="module", params=BACKENDS)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The two-operation world on one backend."""
    from server import create_app
    from server.db import database
    from server.setup import bootstrap

    tmp = tmp_path_factory.mktemp(f"matrix-{request.param}")
    if request.param == "postgresql":
        reset_postgresql(PG_URL)
        url = PG_URL
    else:
        url = f"sqlite:///{tmp / 'muster.db'}"
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(tmp),
            "KEYS_DIR": str(tmp / "keys"),
            "RATE_LIMIT_LOGIN": "",
            "RATE_LIMIT_ENROL": "",
            "RATE_LIMIT_SYNC": "",
        }
    )
    boot = bootstrap(app)
    api = app.test_client()
    admin = login(api, "admin", boot["first_admin"]["password"])
    w = World(app, api, tmp, admin, {}, {}, {}, {}, None)  # type: ignore[arg-type]
    w.ops = {"own": _operation(w, "A"), "other": _operation(w, "B")}
    names = {
        "viewer": "viewer",
        "coordinator": "coordinator",
        "admin": "admin2",
        "revoked": "admin3",
        "disabled": "admin4",
    }
    for principal, username in names.items():
        role = principal if principal in ("viewer", "coordinator") else "admin"
        resp = api.post(
            "/api/v1/staff",
            json={
                "username": username,
                "role": role,
                "password": PASSWORD,
                "operations": [w.ops["own"].id],
            },
            headers=admin,
        )
        assert resp.status_code == 201, resp.get_json()
        w.headers[principal] = login(api, username, PASSWORD)
        w.console[principal] = _console_client(app, username, PASSWORD)
    w.usernames = names
    w.headers["anonymous"] = {}
    w.console["anonymous"] = app.test_client()
    # The revoked admin: both their API token and their console session's token revoked.
    assert api.delete("/api/v1/tokens/current", headers=w.headers["revoked"]).status_code == 204
    with w.console["revoked"].session_transaction() as session:
        secret = session["token"]
    gone = api.delete("/api/v1/tokens/current", headers={"Authorization": f"Bearer {secret}"})
    assert gone.status_code == 204
    result = app.test_cli_runner().invoke(args=["staff", "disable", "admin4"])
    assert result.exit_code == 0, result.output
    w.revoked_device = w.device("own")
    revoked = api.post(
        f"/api/v1/operations/{w.ops['own'].id}/devices/{w.revoked_device.device_id}/revoke",
        json={"reason": "lost"},
        headers=admin,
    )
    assert revoked.status_code == 200, revoked.get_json()
    yield w
    if not database.is_closed():
        database.close()


def _path(w: World, row: Row, target: str, allowed: bool) -> str:
    op = w.ops[target or "own"]
    device_id = str(w.device(target or "own").device_id) if allowed else str(op.device.device_id)
    values = {
        "op_id": str(op.id),
        "device_id": device_id,
        "group_id": str(op.group),
        "person_id": op.people[0],
        "queue": "missing",
        "name": row.variant or "missing",
        "date": NIGHT.isoformat(),
        "filename": "console.css",
    }
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], row.rule)


def _credentials(w: World, principal: str) -> dict[str, str]:
    username = w.usernames.get(principal, "admin")
    return {"username": username, "password": PASSWORD if principal != "anonymous" else "wrong"}


def _api_request(w: World, case: Case, row: Row) -> int:
    n = next(_counter)
    op = w.ops[case.target or "own"]
    headers = w.headers[case.principal]
    if row.rule == "/api/v1/tokens/current" and case.principal in (
        "viewer",
        "coordinator",
        "admin",
    ):
        headers = login(w.api, w.usernames[case.principal], PASSWORD)  # a token to spend
    path = _path(w, row, case.target, case.expected < 400)
    bodies: dict[str, Any] = {
        "/api/v1/operations": {"name": f"op {n}", "timezone": "UTC"},
        "/api/v1/staff": {"username": f"user{n}", "role": "viewer", "password": PASSWORD},
        "/api/v1/tokens": _credentials(w, case.principal),
        "checkpoints": {"name": f"cp {n}"},
        "revoke": {"reason": "lost"},
        "enrolments": {},
        "groups": {"name": f"Bus {n}", "expected_size": 3, "route": [op.checkpoint]},
        "resolutions": {"kind": "confirm", "person": op.people[0], "reason": "seen"},
        "search": {"q": "Cedar"},
        "search.csv": {"q": "Cedar"},
    }
    kw: dict[str, Any] = {"headers": headers}
    if row.rule.endswith("/rosters"):
        roster = _roster([(f"N{n}", f"Cy Cedar{n}")])
        kw["data"] = {"file": (io.BytesIO(roster), "r.csv")}
    elif row.method == "POST":
        key = row.rule if row.rule in bodies else row.rule.rsplit("/", 1)[-1]
        kw["json"] = bodies[key]
    return w.api.open(path, method=row.method, **kw).status_code


def _console_request(w: World, case: Case, row: Row) -> int:
    op = w.ops[case.target or "own"]
    client = w.console[case.principal]
    if row.rule in ("/console/login", "/console/logout"):
        client = w.app.test_client()
        if row.rule == "/console/logout" and case.principal in ("viewer", "coordinator", "admin"):
            client = _console_client(w.app, w.usernames[case.principal], PASSWORD)
    path = _path(w, row, case.target, case.expected < 400)
    forms: dict[str, dict[str, str]] = {
        "login": _credentials(w, case.principal),
        "lang": {"lang": "en"},
        "logout": {},
        "resolutions": {"kind": "confirm", "person": op.people[0], "reason": "seen"},
        "code": {"label": "phone"},
        "revoke": {"reason": "lost"},
        "roster": {"q": "Cedar"},
    }
    data = None
    if row.method == "POST":
        data = {**forms[row.rule.rsplit("/", 1)[-1]], "csrf_token": _csrf(w.app, client)}
    return client.open(path, method=row.method, data=data).status_code


def _sync_request(w: World, case: Case, row: SyncRow) -> int:
    device = w.ops["own"].device
    client = wsgi_transport(w.app).client
    if row.rule.endswith("/enrol"):
        if case.principal == "unsigned":
            transport = Transport("http://muster", client=client)
            try:
                transport.call("POST", "/sync/enrol", {})
            except ServerRefused as exc:
                return exc.status
            return 200
        code = {
            "unknown": "ABCD-EFGH-JKLM",
            "revoked": None,
            "ok": enrolment_code(w.api, w.admin, w.ops["own"].id),
        }[case.principal]
        if code is None:
            code = enrolment_code(w.api, w.admin, w.ops["own"].id)
            w.spare.append(_enrol(w, code))
        try:
            w.spare.append(_enrol(w, code))
        except ServerRefused as exc:
            return exc.status
        return 201
    if case.principal == "ok" and row.method == "POST":
        device.checkin(w.ops["own"].people[1], checkpoint=w.ops["own"].checkpoint)
        return 200 if device.push().accepted == 1 else 0
    transport = {
        "unsigned": Transport("http://muster", client=client),
        "unknown": Transport(
            "http://muster", device_id=uuid.uuid4(), keys=DeviceKeys.generate(), client=client
        ),
        "revoked": w.revoked_device.transport,
        "ok": device.transport,
    }[case.principal]
    body = {"envelopes": [], "sessions": []} if row.method == "POST" else None
    path = "/sync/push" if row.method == "POST" else "/sync/pull?cursor=0"
    try:
        transport.call(row.method, path, body)
    except ServerRefused as exc:
        return exc.status
    return 200


def _enrol(w: World, code: str) -> Device:
    return Device.enrol(
        w.tmp / f"e{next(_counter)}.db",
        "http://muster",
        code,
        passphrase=PASSPHRASE,
        author="officer",
        vault_params=FAST_VAULT,
        transport=wsgi_transport(w.app),
    )


CASES = cases()


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_cell_of_the_access_matrix_gets_its_expected_status(world: World, case: Case) -> None:
    if isinstance(case.row, SyncRow):
        status = _sync_request(world, case, case.row)
    elif case.row.rule.startswith("/console"):
        status = _console_request(world, case, case.row)
    else:
        status = _api_request(world, case, case.row)
    assert status == case.expected


def test_the_matrix_covers_every_api_rule_and_console_page(world: World) -> None:
    rules = {
        (method, rule.rule)
        for rule in world.app.url_map.iter_rules()
        if rule.rule.startswith(("/api/v1", "/console"))
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    table = {(r.method, r.rule) for r in [*API, *CONSOLE, *SYNC]}
    assert rules - table == set()
    assert table - rules == set()
    assert len(CASES) == 492


def test_ids_from_another_operation_answer_404_not_their_data(world: World) -> None:
    own, other = world.ops["own"], world.ops["other"]
    h = world.admin  # the first admin is assigned to both operations
    base = f"/api/v1/operations/{own.id}"
    stranger = other.people[0]
    foreign_device = other.device.device_id
    checks = {
        "person": world.api.get(f"{base}/people/{stranger}", headers=h),
        "timeline": world.api.get(f"{base}/people/{stranger}/timeline", headers=h),
        "group": world.api.get(f"{base}/groups/{other.group}/summary", headers=h),
        "device": world.api.post(
            f"{base}/devices/{foreign_device}/revoke", json={"reason": "x"}, headers=h
        ),
        "revert": world.api.post(
            f"{base}/resolutions",
            json={"kind": "revert", "resolution": other.resolution, "reason": "x"},
            headers=h,
        ),
        "confirm": world.api.post(
            f"{base}/resolutions",
            json={"kind": "confirm", "person": stranger, "reason": "x"},
            headers=h,
        ),
        "console person": world.console["admin"].get(
            f"/console/operations/{own.id}/people/{stranger}"
        ),
    }
    statuses = {name: resp.status_code for name, resp in checks.items()}
    assert statuses == {name: 404 for name in checks}
    for name, resp in checks.items():
        text = resp.get_data(as_text=True)
        assert "Ann Ash" not in text and stranger not in text.replace(f"/{stranger}", ""), name
    devices = world.api.get(f"/api/v1/operations/{other.id}/devices", headers=h).get_json()
    assert {d["revoked_at"] for d in devices["items"]} == {None}
