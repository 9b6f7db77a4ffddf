"""Several server processes on one PostgreSQL: overlapping retries land once, marks stay right."""

from __future__ import annotations

import random
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from playhouse.db_url import connect

from sync import Device, Transport
from sync.crypto import b64e
from sync.transport import Offline
from tests.conftest import REPO
from tests.ops.helpers import (
    PG_URL,
    Processes,
    cli_json,
    free_port,
    instance_env,
    needs_postgresql,
    reset_postgresql,
)
from tests.sync.helpers import FAST_VAULT, PASSPHRASE

pytestmark = needs_postgresql

DEVICES = 4
WALKINS = 75  # per device; each device then checks in its own and a neighbour's walk-ins
WINDOW, STRIDE, REPEATS = 100, 50, 3


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    reset_postgresql(PG_URL)
    procs = Processes(tmp_path)
    yield procs
    procs.stop()


def _pg_rows(sql: str) -> list[tuple[Any, ...]]:
    db = connect(PG_URL)
    db.connect()
    try:
        return list(db.execute_sql(sql).fetchall())
    finally:
        db.close()


def _batches(device: Device) -> list[dict[str, Any]]:
    """Overlapping windows over the device's outbox, as push bodies (sessions included)."""
    m = device.store.m
    entries = list(m.Outbox.select().order_by(m.Outbox.seq))
    sessions = {s.id: b64e(bytes(s.blob)) for s in m.Session.select()}
    bodies = []
    for start in range(0, len(entries) - WINDOW + STRIDE, STRIDE):
        window = entries[start : start + WINDOW]
        bodies.append(
            {
                "sessions": sorted({sessions[e.session_id] for e in window}),
                "envelopes": [b64e(bytes(e.envelope)) for e in window],
                "ids": [e.event_id for e in window],
            }
        )
    return bodies


def _push(url: str, device: Device, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Send one batch as the device would, retrying on retryable answers (deadlocks, 503)."""
    import time as _time

    from sync.device import now_ms

    transport = Transport(url, device_id=device.device_id, keys=device.keys)
    try:
        for attempt in range(8):
            try:
                answer = transport.call(
                    "POST",
                    "/sync/push",
                    {
                        "clock": now_ms(),
                        "sessions": body["sessions"],
                        "envelopes": body["envelopes"],
                    },
                )
            except Offline:
                _time.sleep(0.2 * (attempt + 1))
                continue
            results = answer["results"]
            if all(r["status"] != "retry" for r in results):
                return results
            _time.sleep(0.2 * (attempt + 1))
        raise AssertionError("a batch was never answered")
    finally:
        transport.close()


def test_four_processes_store_each_overlapping_retry_once(
    processes: Processes, tmp_path: Path
) -> None:
    instance = tmp_path / "instance"
    env = instance_env(instance, PG_URL)
    # gunicorn with 4 workers on one port, and a separate instance of the same deployment.
    urls = [processes.gunicorn(env, 4, free_port()), processes.serve(env, free_port())]
    for url in urls:
        processes.wait_ready(url)

    op = cli_json(env, "operation", "create", "Kharkiv students", "--timezone", "Europe/Kyiv")
    cps = [
        cli_json(env, "checkpoint", "add", "--operation", str(op["id"]), name, "--kind", kind)
        for name, kind in [("Kharkiv station", "station"), ("Medyka crossing", "border")]
    ]
    devices: list[Device] = []
    for i in range(DEVICES):
        code = cli_json(env, "device", "code", "--operation", str(op["id"]))["code"]
        devices.append(
            Device.enrol(
                tmp_path / f"phone-{i}.db",
                urls[i % len(urls)],
                code,
                passphrase=PASSPHRASE,
                author=f"officer-{i}",
                vault_params=FAST_VAULT,
            )
        )
    # Offline capture: walk-ins at the station, then check-ins at the border of this device's
    # walk-ins and of its neighbour's, so derived state of one person moves in two processes.
    people: list[list[uuid.UUID]] = [
        [
            d.walkin({"full_name": f"Walk In {i}-{n}"}, checkpoint=cps[0]["id"])
            for n in range(WALKINS)
        ]
        for i, d in enumerate(devices)
    ]
    for i, d in enumerate(devices):
        for n in range(WALKINS):
            other = people[(i + 1) % DEVICES] if n % 2 else people[i]
            d.checkin(other[n], checkpoint=cps[1]["id"])
    per_device = 2 * WALKINS
    all_ids = {e.event_id for d in devices for e in d.store.m.Outbox.select()}
    assert len(all_ids) == DEVICES * per_device

    # Every window goes REPEATS times, each copy through a different process, all at once.
    jobs = [
        (urls[(k + r) % len(urls)], d, body)
        for d in devices
        for k, body in enumerate(_batches(d))
        for r in range(REPEATS)
    ]
    random.Random(9).shuffle(jobs)
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda job: _push(*job), jobs))

    statuses = Counter(r["status"] for results in answers for r in results)
    assert statuses["rejected"] == 0, [r for a in answers for r in a if r["status"] == "rejected"]
    answered = {r["id"] for results in answers for r in results}
    assert answered == all_ids
    assert _pg_rows("select count(*), count(distinct id) from event") == [
        (DEVICES * per_device, DEVICES * per_device)
    ]
    assert _pg_rows("select count(*) from quarantined_record") == [(0,)]
    assert _pg_rows("select count(*) from person") == [(DEVICES * WALKINS,)]
    marks = cli_json(env, "device", "list", "--operation", str(op["id"]))
    assert (
        sorted((m["high_seq"], m["contiguous_seq"], m["gaps"]) for m in marks)
        == [(per_device, per_device, [])] * DEVICES
    )

    # Concurrent resolutions through every process: each stored once, derived state consistent.
    _confirm_concurrently(env, urls, op["id"], [p for ps in people for p in ps[:10]])
    before = _pg_rows(
        "select person::text, state, event_count, version from person_state order by 1"
    )
    cli_json(env, "rebuild", "--operation", str(op["id"]))
    after = _pg_rows(
        "select person::text, state, event_count, version from person_state order by 1"
    )
    assert len(before) == DEVICES * WALKINS
    assert before == after


def _confirm_concurrently(
    env: dict[str, str], urls: list[str], op_id: int, people: list[uuid.UUID]
) -> None:
    user = cli_json(
        env, "staff", "add", "coord", "--role", "coordinator", "--operation", str(op_id)
    )
    with httpx.Client(timeout=30) as c:
        resp = c.post(
            urls[0] + "/api/v1/tokens",
            json={"username": "coord", "password": user["one_time_password"]},
        )
        assert resp.status_code == 201, resp.text
        headers = {"Authorization": "Bearer " + resp.json()["token"]}

    def confirm(job: tuple[int, uuid.UUID]) -> int:
        k, person = job
        with httpx.Client(timeout=60) as c:
            resp = c.post(
                f"{urls[k % len(urls)]}/api/v1/operations/{op_id}/resolutions",
                json={"kind": "confirm", "person": str(person), "reason": "seen at the border"},
                headers=headers,
            )
            return resp.status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(confirm, enumerate(people)))
    assert codes == [201] * len(people)
    assert _pg_rows(f"select count(*) from resolution where operation_id = {op_id}") == [
        (len(people),)
    ]


def test_four_processes_starting_together_migrate_an_empty_database_once(
    processes: Processes, tmp_path: Path
) -> None:
    env = instance_env(tmp_path / "instance", PG_URL)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "server.cli", "init", "--json"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    import json

    results = [json.loads(out) for out, _ in outs]
    applied = sorted(len(r["migrations_applied"]) for r in results)
    from server import migrations

    assert applied == [0, 0, 0, migrations.latest_version()]
    assert _pg_rows("select count(*) from schema_migration") == [(migrations.latest_version(),)]
    assert _pg_rows("select count(*) from staff_user") == [(1,)]
    assert sum(1 for r in results if r["first_admin"]) == 1


def test_disjoint_batches_of_one_device_in_four_processes_leave_exact_sequence_marks(
    processes: Processes, tmp_path: Path
) -> None:
    env = instance_env(tmp_path / "instance", PG_URL)
    url = processes.gunicorn(env, 4, free_port())
    processes.wait_ready(url)
    op = cli_json(env, "operation", "create", "Odesa students", "--timezone", "Europe/Kyiv")
    cp = cli_json(
        env, "checkpoint", "add", "--operation", str(op["id"]), "Palanca", "--kind", "border"
    )
    devices = []
    for i in range(6):
        code = cli_json(env, "device", "code", "--operation", str(op["id"]))["code"]
        d = Device.enrol(
            tmp_path / f"phone-{i}.db",
            url,
            code,
            passphrase=PASSPHRASE,
            author=f"officer-{i}",
            vault_params=FAST_VAULT,
        )
        for n in range(4 * WINDOW):
            d.headcount(checkpoint=cp["id"], group=1, count=n)
        devices.append(d)
    # Each device's records in 4 disjoint windows, each sent exactly once, all at the same time:
    # no retry repairs a mark computed from a stale view.
    jobs = []
    for d in devices:
        m = d.store.m
        entries = list(m.Outbox.select().order_by(m.Outbox.seq))
        blobs = sorted(b64e(bytes(s.blob)) for s in m.Session.select())
        for k in range(4):
            window = entries[k * WINDOW : (k + 1) * WINDOW]
            jobs.append(
                (
                    url,
                    d,
                    {"sessions": blobs, "envelopes": [b64e(bytes(e.envelope)) for e in window]},
                )
            )
    random.Random(4).shuffle(jobs)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda job: _push(*job), jobs))
    assert Counter(r["status"] for a in answers for r in a) == {"accepted": 6 * 4 * WINDOW}
    marks = cli_json(env, "device", "list", "--operation", str(op["id"]))
    assert (
        sorted((m["high_seq"], m["contiguous_seq"], m["gaps"]) for m in marks)
        == [(4 * WINDOW, 4 * WINDOW, [])] * 6
    )
