"""A small operation with real objects behind every path parameter, built over real HTTP.

Fixture people have distinctive names, document numbers and phones so that a scan of logs,
error bodies, URLs and database bytes for them cannot match anything by chance.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sync import Device
from tests.conftest import REPO, LiveServer
from tests.sync.helpers import FAST_VAULT, PASSPHRASE

#: (full name, document number, phone) of the roster; none of these strings occurs in the code.
ROSTER = [
    (f"Quillon Marchetti{suffix}", f"QX{774400 + i}", f"+380 67 913 {4400 + i}")
    for i, suffix in enumerate(
        ["ova", "enko", "yuk", "chuk", "ska", "ich", "ovsky", "ina", "ko", "as", "ez", "son"]
    )
]
#: Walk-ins registered on the devices (not on any list), with a note that repeats the phone.
WALKINS = [
    ("Zebulon Okonkwo-Hartfield", "ZW5518203", "+48 601 772 914"),
    ("Perpetua Vandersloot", "PV9902716", "+373 69 448 027"),
]


def digits(phone: str) -> str:
    return "".join(c for c in phone if c.isdigit())


def secrets_of(people: list[tuple[str, str, str]]) -> tuple[list[str], list[str]]:
    """Names, and documents plus phones (raw and digits-only), to look for."""
    names = [p[0] for p in people]
    sealed = [p[1] for p in people] + [p[2] for p in people] + [digits(p[2]) for p in people]
    return names, sealed


def roster_csv() -> bytes:
    lines = ["external id,full name,passport number,phone,group"]
    lines += [f"R{i:03d},{n},{d},{p},Bus 1" for i, (n, d, p) in enumerate(ROSTER)]
    return ("\n".join(lines) + "\n").encode()


def admin_cli(server: LiveServer, *args: str, log: list[str] | None = None) -> Any:
    """Run ``muster-server ... --json`` against the server's instance; keep its stderr."""
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", *args, "--json"],
        cwd=REPO,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if log is not None:
        log.append(out.stderr)
    assert out.returncode == 0, out.stderr + out.stdout
    return json.loads(out.stdout)


@dataclass
class Seeded:
    """Ids of the objects the seed made."""

    token: str
    op: int
    checkpoints: list[int]
    group: int
    people: list[str]
    devices: list[Device]
    walkins: list[str]
    resolution: str
    urls: list[str] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)


def admin_token(server: LiveServer) -> str:
    return str(admin_cli(server, "staff", "token", "admin")["token"])


def seed(server: LiveServer, tmp: Path, cli_log: list[str] | None = None) -> Seeded:
    """Make an operation, import the roster, enrol two devices that sync walk-ins, resolve."""
    token = admin_token(server)
    urls: list[str] = []
    bodies: list[str] = []

    def call(method: str, path: str, expect: int, **kw: Any) -> Any:
        resp = http.request(method, path, **kw)
        urls.append(str(resp.request.url))
        if resp.status_code >= 400:
            bodies.append(resp.text)
        assert resp.status_code == expect, (path, resp.status_code, resp.text)
        return resp.json() if resp.content else None

    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as http:
        op = call("POST", "/api/v1/operations", 201, json={"name": "Odesa", "timezone": "UTC"})
        cps = [
            call("POST", f"/api/v1/operations/{op['id']}/checkpoints", 201, json=body)["id"]
            for body in ({"name": "Odesa station", "kind": "station"}, {"name": "Palanca"})
        ]
        group = call(
            "POST",
            f"/api/v1/operations/{op['id']}/groups",
            201,
            json={"name": "Bus 1", "expected_size": 14, "route": cps},
        )
        report = call(
            "POST",
            f"/api/v1/operations/{op['id']}/rosters",
            201,
            files={"file": ("roster.csv", roster_csv(), "text/csv")},
        )
        assert report["created"] == len(ROSTER), report
        people = [
            p["id"] for p in call("GET", f"/api/v1/operations/{op['id']}/people", 200)["items"]
        ]
        devices = []
        for i in range(2):
            code = call("POST", f"/api/v1/operations/{op['id']}/enrolments", 201, json={})
            devices.append(
                Device.enrol(
                    tmp / f"device{i}.db",
                    server.url,
                    code["code"],
                    passphrase=PASSPHRASE,
                    author=f"officer{i}",
                    vault_params=FAST_VAULT,
                )
            )
        walkins = []
        for device, (name, doc, phone) in zip(devices, WALKINS, strict=True):
            walkins.append(
                str(
                    device.walkin(
                        {"full_name": name, "document_number": doc, "phone": phone},
                        checkpoint=cps[1],
                        note=f"came on foot; call back on {phone}",
                    )
                )
            )
            for person in people[:5]:
                device.checkin(person, checkpoint=cps[0])
            assert device.sync().accepted == 6
        resolution = call(
            "POST",
            f"/api/v1/operations/{op['id']}/resolutions",
            201,
            json={"kind": "declare_missing", "person": people[-1], "reason": "not on the bus"},
        )["id"]
    return Seeded(
        token, op["id"], cps, group["id"], people, devices, walkins, resolution, urls, bodies
    )
