"""SIGKILL the field CLI during capture and during sync: nothing reported is lost or doubled."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sync import Device
from tests.conftest import REPO, LiveServer
from tests.reliability.helpers import SOAK, Site, server_events
from tests.sync.helpers import PASSPHRASE

ROUNDS = 200 if SOAK else 20
pytestmark = [pytest.mark.soak, pytest.mark.timeout(3600 if SOAK else 300)]


def _spawn(store: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "MUSTER_PASSPHRASE": PASSPHRASE, "MUSTER_STORE": str(store)}
    return subprocess.Popen(
        [sys.executable, "-m", "sync.cli", "--json", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _kill_after(proc: subprocess.Popen[str], seconds: float) -> tuple[bool, str]:
    """SIGKILL ``proc`` after ``seconds`` unless it finished; return (finished, its output)."""
    try:
        out, _ = proc.communicate(timeout=seconds)
        return proc.returncode == 0, out
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return False, out


def test_killing_the_field_cli_during_capture_and_sync_loses_and_doubles_nothing(
    site_server: tuple[LiveServer, Site], db_url: str, tmp_path: Path
) -> None:
    server, site = site_server
    store = tmp_path / "phone.db"
    site.enrol(store).close()
    rng = random.Random(2022)
    reported: list[str] = []
    kills = {"capture": 0, "sync": 0}
    started = time.monotonic()

    def capture_cli(n: int) -> subprocess.Popen[str]:
        return _spawn(
            store,
            "headcount",
            "--checkpoint",
            str(site.checkpoint),
            "--group",
            str(site.group),
            "--count",
            str(n),
        )

    # Calibrate on this machine: how long a whole capture takes, so kills land inside one.
    t0 = time.monotonic()
    finished, out = _kill_after(capture_cli(-1 % 1000), 120)
    assert finished, out
    reported.append(json.loads(out)["event_id"])
    whole = time.monotonic() - t0

    def queue_some(n: int) -> None:
        device = Device.open(store, PASSPHRASE)
        for _ in range(20):
            device.headcount(checkpoint=site.checkpoint, group=site.group, count=n)
        device.close()

    # And how long a whole sync of 20 records takes (the server answers pushes as soon as they
    # are durable, so a sync may be quicker than a capture).
    queue_some(999)
    t0 = time.monotonic()
    finished, out = _kill_after(_spawn(store, "sync"), 120)
    assert finished, out
    whole_sync = time.monotonic() - t0
    # The first runs are slower than later ones (cold caches, other tests starting), so each
    # kind's time is the quickest whole run seen so far; and rounds go on (up to three times
    # as many) until at least half of the planned ones have killed something.
    n = 0
    while n < ROUNDS or (kills["capture"] + kills["sync"] < ROUNDS // 2 and n < 3 * ROUNDS):
        t0 = time.monotonic()
        finished, out = _kill_after(capture_cli(n % 1000), rng.uniform(0.3, 1.2) * whole)
        if finished:
            reported.append(json.loads(out)["event_id"])
            whole = min(whole, time.monotonic() - t0)
        else:
            kills["capture"] += 1
        # Give the sync something to send, then kill it part-way.
        queue_some(n % 1000)
        t0 = time.monotonic()
        finished, _ = _kill_after(_spawn(store, "sync"), rng.uniform(0.3, 1.2) * whole_sync)
        if finished:
            whole_sync = min(whole_sync, time.monotonic() - t0)
        kills["sync"] += not finished
        n += 1
    final = _spawn(store, "sync")
    out, _ = final.communicate(timeout=120)
    assert final.returncode == 0, out
    assert json.loads(out)["still_queued"] == 0

    device = Device.open(store, PASSPHRASE)
    outbox = device.outbox()
    ids = [r["event_id"] for r in outbox]
    assert set(reported) <= set(ids)
    assert {r["state"] for r in outbox} == {"sent"}
    assert [r["seq"] for r in outbox] == list(range(1, len(outbox) + 1))
    mine = [e for e in server_events(db_url) if e[1] == str(device.device_id)]
    assert sorted(e[0] for e in mine) == sorted(ids)
    assert sorted(e[2] for e in mine) == list(range(1, len(outbox) + 1))
    device.close()
    with sqlite3.connect(store) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert kills["capture"] + kills["sync"] >= ROUNDS // 2
    print(
        f"\nfield CLI crashes: {kills['capture']} kills in capture, {kills['sync']} in sync, "
        f"{len(reported)} captures reported, {len(ids)} events, "
        f"{time.monotonic() - started:.1f}s"
    )
