"""The field CLI against a real server process: enrol, capture offline, sync, replay."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO, LiveServer


def _admin(server: LiveServer, *args: str) -> Any:
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", *args, "--json"],
        cwd=REPO,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr + out.stdout
    return json.loads(out.stdout)


def _field(store: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MUSTER_PASSPHRASE": "a long field passphrase", "MUSTER_STORE": str(store)}
    out = subprocess.run(
        [sys.executable, "-m", "sync.cli", "--json", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if ok:
        assert out.returncode == 0, out.stderr + out.stdout
    return out


def test_two_devices_capture_offline_and_the_server_holds_each_event_once(
    live_server: LiveServer, tmp_path: Path
) -> None:
    op = _admin(live_server, "operation", "create", "Kharkiv students", "--timezone", "Europe/Kyiv")
    cp = _admin(
        live_server,
        "checkpoint",
        "add",
        "--operation",
        str(op["id"]),
        "Medyka crossing",
        "--kind",
        "border",
    )
    group = _admin(
        live_server,
        "group",
        "add",
        "--operation",
        str(op["id"]),
        "Bus 3",
        "--expected",
        "52",
        "--route",
        "Medyka crossing",
    )
    stores = [tmp_path / "phone-a.db", tmp_path / "phone-b.db"]
    for i, store in enumerate(stores):
        code = _admin(live_server, "device", "code", "--operation", str(op["id"]))["code"]
        _field(store, "enrol", live_server.url, code, "--author", f"officer-{i}")
    # The connection drops: everything below is captured with the server down.
    live_server.stop()
    person_ids = []
    for i, store in enumerate(stores):
        for n in range(3):
            out = _field(
                store, "walkin", "--name", f"Walk In {i}-{n}", "--checkpoint", "Medyka crossing"
            )
            person_ids.append(json.loads(out.stdout)["person_id"])
        _field(
            store,
            "headcount",
            "--checkpoint",
            "Medyka crossing",
            "--group",
            "Bus 3",
            "--count",
            "52",
        )
    offline = _field(stores[0], "sync", ok=False)
    assert offline.returncode == 2
    assert json.loads(offline.stdout)["still_queued"] == 4
    status = json.loads(_field(stores[0], "status").stdout)
    assert status["counts"] == {"queued": 4, "sent": 0, "rejected": 0}
    # The connection returns.
    live_server.start()
    for store in stores:
        report = json.loads(_field(store, "sync").stdout)
        assert (report["accepted"], report["rejected"], report["still_queued"]) == (4, 0, 0)
    devices = _admin(live_server, "device", "list", "--operation", str(op["id"]))
    assert sorted((d["high_seq"], d["contiguous_seq"], d["gaps"]) for d in devices) == [
        (4, 4, []),
        (4, 4, []),
    ]
    # Each device now finds the other's walk-ins after the pull, and finds its own offline.
    hits = json.loads(_field(stores[1], "find", "walk in 0-1").stdout)
    assert [h["id"] for h in hits] == [person_ids[1]]
    assert group["expected_size"] == 52 and cp["kind"] == "border"
