"""SIGKILL the server during ingest, again and again: every acknowledged event survives."""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from sync import Device, Offline
from tests.conftest import REPO, LiveServer, free_port
from tests.reliability.helpers import (
    SOAK,
    Site,
    assert_exactly_once,
    integrity_check,
    make_site,
    one_shot_transport,
    outbox_ids,
    server_events,
)

KILLS = 3000 if SOAK else 120
pytestmark = [pytest.mark.soak, pytest.mark.timeout(7200 if SOAK else 400)]


class ForkServer:
    """The supervisor of :mod:`tests.reliability.forkserver` and the pids of its children."""

    def __init__(self, instance: Path, db_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "MUSTER_INSTANCE_PATH": str(instance),
            "MUSTER_DATABASE_URL": db_url,
            "MUSTER_RATE_LIMIT_SYNC": "",
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.forkserver", str(self.port)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.report = json.loads(self.proc.stdout.readline())
        self.pids: queue.Queue[int] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.pids.put(int(line))

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("the forked server did not become ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def fork_server(db_url: str, tmp_path: Path) -> Iterator[ForkServer]:
    instance = tmp_path / "crash-instance"
    instance.mkdir()
    server = ForkServer(instance, db_url)
    yield server
    server.stop()


class Pushers:
    """Devices capturing and pushing from background threads, counting pushes in flight."""

    def __init__(self, devices: list[Device], site: Site) -> None:
        self.devices, self.site = devices, site
        self.in_flight = 0
        self.pushes = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(d, i), daemon=True)
            for i, d in enumerate(devices)
        ]

    def __enter__(self) -> Pushers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(60)

    def _run(self, device: Device, seed: int) -> None:
        rng = random.Random(seed)
        while not self.stopping.is_set():
            if device.queued_count() < 400:
                for _ in range(rng.randint(10, 80)):
                    device.headcount(
                        checkpoint=self.site.checkpoint,
                        group=self.site.group,
                        count=rng.randint(0, 55),
                    )
            with self.lock:
                self.in_flight += 1
                self.pushes += 1
            try:
                with suppress(Offline):
                    device.push(max_attempts=1, base_delay=0, max_delay=0)
            finally:
                with self.lock:
                    self.in_flight -= 1


def _acknowledged_are_stored(devices: list[Device], db_url: str) -> int:
    """Read what devices hold as acknowledged, then check the server holds all of it."""
    sent = {e for d in devices for e in outbox_ids(d, "sent")}
    missing = sent - {e[0] for e in server_events(db_url)}
    assert missing == set(), f"{len(missing)} acknowledged events are missing"
    return len(sent)


def _crash_loop(
    devices: list[Device],
    site: Site,
    db_url: str,
    kills: int,
    kill_once: Callable[[random.Random, Pushers], bool],
) -> dict[str, int]:
    """Kill the server ``kills`` times while devices push; check acknowledgements as we go."""
    rng = random.Random(1986)
    during_push = 0
    with Pushers(devices, site) as pushers:
        for k in range(kills):
            during_push += kill_once(rng, pushers)
            if k % 10 == 9 or k == kills - 1:
                _acknowledged_are_stored(devices, db_url)
    for device in devices:
        for _ in range(50):
            with suppress(Offline):
                device.push(max_attempts=20, base_delay=0.01, max_delay=0.1)
            if device.queued_count() == 0:
                break
    return {"during_push": during_push, "pushes": pushers.pushes}


def test_a_hundred_sigkills_during_ingest_lose_no_acknowledged_event(
    fork_server: ForkServer, db_url: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    site = make_site_when_ready(fork_server)
    devices = [site.enrol(tmp_path / f"phone-{i}.db", author=f"officer-{i}") for i in range(3)]
    for device in devices:
        device.transport.close()
        device.transport = one_shot_transport(device, fork_server.url, timeout=5)
    pids = [fork_server.pids.get(timeout=30)]
    killed: list[int] = []

    def kill_once(rng: random.Random, pushers: Pushers) -> bool:
        fork_server.wait_ready()
        time.sleep(rng.uniform(0.03, 0.3))
        in_push = pushers.in_flight > 0
        os.kill(pids[-1], signal.SIGKILL)
        killed.append(pids[-1])
        pids.append(fork_server.pids.get(timeout=30))
        return in_push

    figures = _crash_loop(devices, site, db_url, KILLS, kill_once)
    fork_server.wait_ready()
    result = assert_exactly_once(db_url, devices)
    assert len(set(killed)) == KILLS
    assert integrity_check(db_url) in ("ok", "n/a")
    print(
        f"\nserver crashes: {KILLS} SIGKILLs ({figures['during_push']} with a push in flight), "
        f"{figures['pushes']} pushes, {result['events']} events, "
        f"{time.monotonic() - started:.1f}s"
    )
    for device in devices:
        device.close()


def make_site_when_ready(server: ForkServer) -> Site:
    server.wait_ready()
    return make_site(server.url, server.report["first_admin"]["password"])


def test_the_real_server_process_killed_during_ingest_keeps_every_acknowledged_event(
    site_server: tuple[LiveServer, Site], db_url: str, tmp_path: Path
) -> None:
    server, site = site_server
    devices = [site.enrol(tmp_path / f"phone-{i}.db", author=f"officer-{i}") for i in range(2)]
    for device in devices:
        device.transport.close()
        device.transport = one_shot_transport(device, server.url, timeout=5)

    def kill_once(rng: random.Random, pushers: Pushers) -> bool:
        time.sleep(rng.uniform(0.2, 0.8))
        in_push = pushers.in_flight > 0
        server.kill()
        server.start()
        return in_push

    _crash_loop(devices, site, db_url, 5, kill_once)
    assert_exactly_once(db_url, devices)
    assert integrity_check(db_url) in ("ok", "n/a")
    for device in devices:
        device.close()
