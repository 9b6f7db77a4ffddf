"""Figures 6 and 8: reconciliation reads and rebuild on a loaded operation, and server memory
while loading it.

One real server on SQLite with a roster of 20,000 people. Devices push the events over HTTP
in chunks (sealing each chunk before pushing it, so the benchmark itself stays small); after
every chunk the server's RSS is read from /proc. Then, on the loaded operation:

* group summary: ``GET /operations/<op>/groups/<g>/summary`` as a staff user;
* discrepancy queue page: ``GET /operations/<op>/discrepancies/<queue>?limit=50`` for every
  queue (the figure is the slowest queue's median);
* full rebuild: ``server.reconcile.store.rebuild`` in one write transaction, in process (the
  same call ``muster-server rebuild`` makes, without the interpreter start-up).

Default size loads 100,000 events; ``--full`` loads 1,000,000 (the issue's size).

Usage: python -m bench.reconcile [--quick|--full]
"""

from __future__ import annotations

import time
from typing import Any

from bench.common import (
    RawDevice,
    emit,
    event_bodies,
    make_operation,
    median,
    proc_status,
    server_for,
    size_arg,
    skipped,
)
from bench.ingest import push_all

SIZES = {
    # roster people, events loaded, events per chunk, timed repeats, rebuild repeats
    "quick": (2_000, 20_000, 5_000, 3, 1),
    "default": (20_000, 100_000, 10_000, 5, 3),
    "full": (20_000, 1_000_000, 20_000, 5, 1),
}
CLIENTS = 2
SLOW_S = 5.0
#: A staff request that takes longer than this is reported as not answered.
TIMEOUT_S = 300.0


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of (events, MB) in MB per 100,000 events."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / var * 100_000


def rebuild_in_process(server: Any, op_id: int, repeats: int) -> list[float]:
    """Time ``rebuild`` of the operation in this process, on the server's database."""
    from server import create_app
    from server.db import database, write_transaction
    from server.reconcile.store import rebuild

    app = create_app(
        {
            "DATABASE_URL": server.database_url,
            "INSTANCE_PATH": str(server.instance),
            "KEYS_DIR": str(server.instance / "keys"),
        }
    )
    times = []
    with app.app_context():
        database.connect(reuse_if_open=True)
        for _ in range(repeats):
            start = time.perf_counter()
            with write_transaction():
                rebuild(op_id)
            times.append(time.perf_counter() - start)
        database.close()
    return times


def main(argv: list[str] | None = None) -> int:
    size, _ = size_arg(argv)
    people, total, chunk, repeats, rebuilds = SIZES[size]
    server = server_for("sqlite", "reconcile")
    with server:
        op = make_operation(server, people)
        devices = [RawDevice.enrol(server, op.id, author=f"staff{i}") for i in range(CLIENTS)]
        samples: list[tuple[int, float]] = [(0, proc_status(server.pid)["VmRSS"] / 1024)]
        rates: list[float] = []
        loaded = 0
        seed = 0
        while loaded < total:
            share = min(chunk, total - loaded) // CLIENTS
            batches = []
            for d in devices:
                seed += 1
                batches.append(d.seal_batches(event_bodies(op, share, d.author, seed=seed)))
            elapsed, acked = push_all(devices, batches)
            loaded += acked
            rates.append(acked / elapsed)
            samples.append((loaded, proc_status(server.pid)["VmRSS"] / 1024))
        peak = proc_status(server.pid)["VmHWM"] / 1024
        # Flat means no growth with total size: fit after the first tenth (caches warming).
        steady = [p for p in samples if p[0] >= total // 10]
        mid = min(samples, key=lambda p: abs(p[0] - total // 2))
        common = {
            "events": total,
            "roster_people": people,
            "chunk": chunk,
            "size": size,
            "median_of": 1,
            "clients": CLIENTS,
            "backend": "sqlite",
        }
        emit(
            "memory.rss_slope",
            slope(steady),
            "MB/100k events",
            **common,
            target="flat (about 0)",
            rss_start_mb=round(samples[1][1], 1),
            rss_middle_mb=round(mid[1], 1),
            rss_end_mb=round(samples[-1][1], 1),
            rss_peak_mb=round(peak, 1),
            rss_before_load_mb=round(samples[0][1], 1),
            samples=[[x, round(y, 1)] for x, y in samples],
        )
        common["server_errors"] = sum(d.server_errors for d in devices)
        emit("memory.ingest_rate_first_chunk", rates[0], "events/s", **common)
        emit(
            "memory.ingest_rate_last_chunk",
            rates[-1],
            "events/s",
            **common,
            note="a drop from the first chunk shows ingest cost growing with stored events",
        )

        params = {
            "events": total,
            "roster_people": people,
            "groups": len(op.groups),
            "median_of": repeats,
            "size": size,
            "backend": "sqlite",
            "via": "HTTP, staff token",
        }
        times = []
        for _ in range(repeats):
            for gid in op.groups[:: max(1, len(op.groups) // 5)][:5]:
                elapsed, _data = server.timed_get(f"/operations/{op.id}/groups/{gid}/summary")
                times.append(elapsed)
        emit(
            "reconcile.group_summary",
            median(times) * 1000,
            "ms",
            **params,
            target="< 50",
            max_ms=round(max(times) * 1000, 1),
        )
        worst: tuple[float, str] = (0.0, "")
        pages: dict[str, float] = {}
        from server.reconcile.queues import QUEUES

        for queue in QUEUES:
            qt: list[float] = []
            # A page slower than SLOW_S is timed once: repeating it would only cost minutes.
            while len(qt) < repeats and (not qt or qt[0] < SLOW_S):
                elapsed, _data = server.timed_get(
                    f"/operations/{op.id}/discrepancies/{queue}", timeout=TIMEOUT_S, limit=50
                )
                qt.append(elapsed)
            pages[queue] = round(median(qt) * 1000, 1) if qt[0] != float("inf") else None
            worst = max(worst, (median(qt), queue))
        emit(
            "reconcile.queue_page",
            worst[0] * 1000,
            "ms",
            **params,
            target="< 200",
            slowest_queue=worst[1],
            page=50,
            by_queue_ms=pages,
        )

        if rebuilds:
            times = rebuild_in_process(server, op.id, rebuilds)
            emit(
                "reconcile.rebuild",
                median(times),
                "s",
                **{
                    **params,
                    "median_of": rebuilds,
                    "via": "server.reconcile.store.rebuild in one write transaction, in process",
                },
                target="< 60",
                runs=[round(x, 2) for x in times],
            )
        else:
            skipped("reconcile.rebuild", "not run at this size")
        # Last: an overview that times out keeps the server busy for a while after.
        elapsed, _data = server.timed_get(f"/operations/{op.id}/overview", timeout=TIMEOUT_S)
        emit(
            "reconcile.overview",
            None if elapsed == float("inf") else elapsed * 1000,
            "ms",
            **{**params, "median_of": 1},
            note="every group's summary plus the size of every queue; no target in issue 8",
            **({"error": f"no answer within {TIMEOUT_S:.0f} s"} if elapsed == float("inf") else {}),
        )
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
