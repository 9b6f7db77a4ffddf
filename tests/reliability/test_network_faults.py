"""Devices push and pull through a proxy that resets, delays, truncates and duplicates requests."""

from __future__ import annotations

import random
import threading
import time
from contextlib import suppress
from pathlib import Path

import pytest

from sync import Device, Offline
from sync.device import SyncReport
from tests.conftest import LiveServer
from tests.reliability.faultproxy import FAULTS, FaultProxy
from tests.reliability.helpers import (
    SOAK,
    Site,
    assert_exactly_once,
    one_shot_transport,
    outbox_ids,
    server_events,
)

DEVICES = 4
#: Push requests through the proxy per run; PostgreSQL runs the same faults at half the count
#: to keep the default suite quick (its exactly-once logic is the same code path).
PUSH_ATTEMPTS = {"sqlite": 20_000 if SOAK else 1_000, "postgresql": 10_000 if SOAK else 500}
PUSH = "/api/v1/sync/push"

pytestmark = [pytest.mark.soak, pytest.mark.timeout(3600 if SOAK else 240)]


def _work(
    device: Device, site: Site, proxy: FaultProxy, seed: int, walkins: list[str], target: int
) -> None:
    """Capture a few events, push through the proxy, pull now and then, up to ``target`` pushes."""
    rng = random.Random(seed)
    rounds = 0
    while proxy.paths[PUSH] < target:
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.2:
                person = device.walkin(
                    {"full_name": f"Walk In {seed}-{rounds}"}, checkpoint=site.checkpoint
                )
                walkins.append(str(person))
            else:
                device.headcount(
                    checkpoint=site.checkpoint, group=site.group, count=rng.randint(0, 55)
                )
        with suppress(Offline):
            device.push(SyncReport(), max_attempts=3, base_delay=0.01, max_delay=0.05)
        if rounds % 10 == 9:
            with suppress(Offline):
                device.pull(max_attempts=2, base_delay=0.01, max_delay=0.05)
        rounds += 1


def _drain(device: Device) -> None:
    """Keep pushing through the faults until the outbox is empty."""
    for _ in range(200):
        with suppress(Offline):
            device.push(max_attempts=50, base_delay=0.01, max_delay=0.05)
            if device.queued_count() == 0:
                return
    raise AssertionError("the outbox did not drain through the faults")


def _pull_through(device: Device) -> None:
    """Pull through the faults until one whole pull got through."""
    for _ in range(200):
        with suppress(Offline):
            device.pull(max_attempts=50, base_delay=0.01, max_delay=0.05)
            return
    raise AssertionError("no pull got through the faults")


def test_over_a_thousand_faulty_pushes_every_event_lands_once_and_every_outbox_drains(
    site_server: tuple[LiveServer, Site], backend: str, db_url: str, tmp_path: Path
) -> None:
    server, site = site_server
    target = PUSH_ATTEMPTS[backend]
    started = time.monotonic()
    devices = [
        site.enrol(tmp_path / f"phone-{i}.db", author=f"officer-{i}") for i in range(DEVICES)
    ]
    walkins: list[str] = []
    port = int(server.url.rsplit(":", 1)[1])
    with FaultProxy(port, seed=20220301) as proxy:
        for device in devices:
            device.transport.close()
            device.transport = one_shot_transport(device, proxy.url)
        workers = [
            threading.Thread(target=_work, args=(d, site, proxy, i, walkins, target))
            for i, d in enumerate(devices)
        ]
        for w in workers:
            w.start()
        live_checks = 0
        while any(w.is_alive() for w in workers):
            # Read what devices call sent first: the server must already hold all of it.
            sent = {e for d in devices for e in outbox_ids(d, "sent")}
            assert sent <= {e[0] for e in server_events(db_url)}
            live_checks += 1
            time.sleep(1.0)
        for w in workers:
            w.join()
        for device in devices:
            _drain(device)
        for device in devices:
            _pull_through(device)
        figures = assert_exactly_once(db_url, devices)
    # Every walk-in registered anywhere reached every device through the faulty pulls.
    for device in devices:
        people = {p["id"] for p in device.entities("person")}
        assert set(walkins) <= people
    assert proxy.paths[PUSH] >= target
    assert set(proxy.chosen) == set(FAULTS)
    assert [s for s in proxy.statuses if s >= 500] == []
    assert proxy.statuses[429] == 0
    assert live_checks >= 1
    print(
        f"\nnetwork faults: {proxy.paths[PUSH]} push attempts, "
        f"{proxy.paths['/api/v1/sync/pull']} pulls, {figures['events']} events, "
        f"{len(walkins)} walk-ins, faults {dict(proxy.chosen)}, "
        f"answers {dict(proxy.statuses)}, {time.monotonic() - started:.1f}s"
    )
    for device in devices:
        device.close()
