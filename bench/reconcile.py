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

Loading 1,000,000 events over HTTP takes hours here. ``--direct`` writes the same events
in process instead (what ``bench.report`` does): the same generated bodies, devices, chunks and
capture sessions, each row what ingest stores (sealed envelope, body sealed at rest, hash,
sequence numbers), the event table's secondary indexes made after the load, then derived
state written by ``rebuild`` (equal to what ingest derives: ``tests/server/test_reconcile_fold.py``).
Chunks are placed ``DIRECT_CHUNK_GAP_S`` apart in capture and receive time, about the pace of
the HTTP load at 1,000,000 events, so chunks overlap in capture time as they do there. Figure
8 (memory while ingesting) is not measured with ``--direct``. ``--keep DIR`` saves the loaded
server directory (database, keys, administrator) in ``DIR``; ``--reuse DIR`` starts from a copy
of it, so the timed part can be repeated in minutes. Each queue's first request (cold: the
first after loading, or after the server started) and the median of the others (warm) are
reported; with ``--direct``/``--reuse`` the queues are timed again after a change (one pushed
batch of 500 check-ins, headcounts and flags; then one void), and the overview after one more.

``muster-server serve`` builds the kept queue indexes of open operations in a background thread
when it starts (``server/cli/serve.py``). The benchmark waits until the server's CPU time stops
growing (``warmup_s``: the warm-up's length) before timing, so "cold" is the first request
after the warm-up; ``--no-warmup`` starts the server with ``MUSTER_QUEUE_WARMUP=false``, so
"cold" is the first request after the start, which builds the index itself.

Usage: python -m bench.reconcile [--quick|--full] [--direct] [--keep DIR | --reuse DIR]
       [--no-warmup]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.common import (
    SESSION_RECORDS,
    Operation,
    PeakSampler,
    RawDevice,
    Server,
    arguments,
    children_private_mb,
    deriver_pid,
    emit,
    event_bodies,
    make_operation,
    median,
    rss_mb,
    server_for,
    size_of,
    skipped,
    workdir,
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
#: ``--direct``: capture/receive time between chunks (the HTTP load's pace at 1,000,000).
DIRECT_CHUNK_GAP_S = 20
#: ``--direct``: rows per insert transaction.
DIRECT_LOAD_ROWS = 5_000
#: Events pushed as "a change" before the queues are timed cold again.
CHANGE_EVENTS = 500


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


@dataclass
class KeptServer(Server):
    """A server on a database that was set up before: ``init`` only upgrades what is missing
    and makes no new administrator, so the saved password is used."""

    warmup: bool = True

    def env(self) -> dict[str, str]:
        return {**super().env(), **({} if self.warmup else {"MUSTER_QUEUE_WARMUP": "false"})}

    def cli(self, *args: str) -> Any:
        answer = super().cli(*args)
        if args[:1] == ("init",) and self.admin_password:
            return {**answer, "first_admin": {"password": self.admin_password}}
        return answer


def _naive_utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).replace(tzinfo=None)


def load_direct(
    server: Server, op: Operation, devices: list[RawDevice], total: int, chunk: int
) -> dict[str, Any]:
    """Write ``total`` events in process, as ingest stores them, then derive every state.

    The bodies are ``event_bodies`` of the HTTP load (same seeds, chunks and devices); chunk
    ``k`` is captured and received ``DIRECT_CHUNK_GAP_S`` after chunk ``k - 1``, the last one
    ending now. The server must be stopped; the app is made here on its database.
    """
    from server import create_app
    from server.db import bulk_insert, database, write_transaction
    from server.ingest.service import event_columns
    from server.models import CaptureSession, Device, Event
    from server.reconcile.store import rebuild
    from sync.crypto import SealingSession
    from sync.events import canonical_bytes, validate_body

    app = create_app(
        {
            "DATABASE_URL": server.database_url,
            "INSTANCE_PATH": str(server.instance),
            "KEYS_DIR": str(server.instance / "keys"),
            "REPORT_SCHEDULER": False,
        }
    )
    start = time.perf_counter()
    chunks = -(-total // chunk)
    gap = DIRECT_CHUNK_GAP_S * 1000
    end_ms = int(time.time() * 1000)
    with app.app_context():
        database.connect(reuse_if_open=True)
        database.execute_sql("PRAGMA cache_size = -500000")
        indexes = database.execute_sql(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'event' "
            "AND sql IS NOT NULL"
        ).fetchall()
        with write_transaction():
            for name, _sql in indexes:
                database.execute_sql(f'DROP INDEX "{name}"')
        rows: list[dict[str, Any]] = []
        sessions: list[dict[str, Any]] = []
        checked: dict[str, int] = {}

        def flush() -> None:
            with write_transaction():
                if sessions:
                    bulk_insert(CaptureSession, sessions)
                bulk_insert(Event, rows)
            rows.clear()
            sessions.clear()

        loaded, seed = 0, 0
        for k in range(chunks):
            now_k = end_ms - (chunks - 1 - k) * gap
            share = min(chunk, total - loaded) // CLIENTS
            for d in devices:
                seed += 1
                session: SealingSession | None = None
                for i, body in enumerate(event_bodies(op, share, d.author, seed=seed)):
                    body["at"] = now_k - (share - i) * 50
                    if session is None or (d.next_seq - 1) % SESSION_RECORDS == 0:
                        session = SealingSession.start(
                            d.device_id, d.keys, d.kid, d.server_public, body["at"]
                        )
                        sessions.append(
                            {
                                "id": session.session_id.hex(),
                                "device": d.device_id,
                                "server_kid": d.kid,
                                "created_ms": body["at"],
                                "blob": session.blob,
                                "first_seen_at": _naive_utc(now_k),
                            }
                        )
                    plaintext = canonical_bytes(body)
                    kind = body["kind"]
                    if checked.get(kind, 0) < 100:  # the schema ingest loads bodies with
                        loaded_body = validate_body(json.loads(plaintext))
                        checked[kind] = checked.get(kind, 0) + 1
                    else:  # the same body, loaded by hand: only ids change type
                        loaded_body = dict(body)
                        if "person" in loaded_body:
                            loaded_body["person"] = uuid.UUID(loaded_body["person"])
                    eid = uuid.uuid4()
                    rows.append(
                        {
                            "id": eid,
                            "operation": op.id,
                            "device": d.device_id,
                            "seq": d.next_seq,
                            "session": session.session_id.hex(),
                            **event_columns(loaded_body),
                            "time_flag": None,
                            "skew_ms": 0,
                            "received_at": _naive_utc(now_k + d.next_seq % 1000),
                            "content_hash": hashlib.sha256(plaintext).hexdigest(),
                            "body": plaintext.decode(),
                            "envelope": session.seal(eid, d.next_seq, plaintext),
                        }
                    )
                    d.next_seq += 1
                    if len(rows) >= DIRECT_LOAD_ROWS:
                        flush()
                loaded += share
        if rows:
            flush()
        inserted = time.perf_counter() - start
        mark = time.perf_counter()
        with write_transaction():
            for _name, sql in indexes:
                database.execute_sql(sql)
            for d in devices:
                Device.update(high_seq=d.next_seq - 1, contiguous_seq=d.next_seq - 1).where(
                    Device.id == d.device_id
                ).execute()
        indexed = time.perf_counter() - mark
        mark = time.perf_counter()
        with write_transaction():
            rebuild(op.id)
        derived = time.perf_counter() - mark
        database.execute_sql("ANALYZE")
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        database.close()
    return {
        "events": loaded,
        "end_ms": end_ms,
        "insert_s": round(inserted, 1),
        "index_s": round(indexed, 1),
        "rebuild_s": round(derived, 1),
        "load_s": round(time.perf_counter() - start, 1),
    }


def _cpu_ticks(pid: int) -> int:
    """User plus system CPU time of a process, in clock ticks (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def wait_idle(pid: int, quiet_s: float = 1.5, limit_s: float = 180.0) -> float:
    """Seconds until the process's CPU time stopped growing for ``quiet_s`` (its start-up
    warm-up is done), at most ``limit_s``."""
    start = time.perf_counter()
    last, since = _cpu_ticks(pid), start
    while time.perf_counter() - start < limit_s:
        time.sleep(0.25)
        ticks, now = _cpu_ticks(pid), time.perf_counter()
        if ticks != last:
            last, since = ticks, now
        elif now - since >= quiet_s:
            break
    return since - start


def time_queues(server: Server, op: Operation, repeats: int) -> dict[str, dict[str, Any]]:
    """Every queue's first page (50): the first request's time, then the median of repeats."""
    from server.reconcile.queues import QUEUES

    out: dict[str, dict[str, Any]] = {}
    for queue in QUEUES:
        qt: list[float] = []
        # A page slower than SLOW_S is timed twice (cold, then warm): more would cost minutes.
        while len(qt) < repeats and (len(qt) < 2 or qt[0] < SLOW_S):
            elapsed, data = server.timed_get(
                f"/operations/{op.id}/discrepancies/{queue}", timeout=TIMEOUT_S, limit=50
            )
            qt.append(elapsed)
        out[queue] = {
            "cold_ms": None if qt[0] == float("inf") else round(qt[0] * 1000, 1),
            "warm_ms": round(median(qt[1:]) * 1000, 1) if len(qt) > 1 else None,
            "median_ms": None if median(qt) == float("inf") else round(median(qt) * 1000, 1),
            "total": (data or {}).get("total"),
        }
    return out


def push_change(server: Server, op: Operation, end_ms: int, void: bool) -> int:
    """Push ``CHANGE_EVENTS`` new events captured just before ``end_ms`` (one new device),
    then, with ``void``, one void of another device's event; return how many were acked."""
    device = RawDevice.enrol(server, op.id, author="latecomer")
    bodies = list(event_bodies(op, CHANGE_EVENTS, device.author, seed=999_999))
    for i, body in enumerate(bodies):
        body["at"] = end_ms - (CHANGE_EVENTS - i) * 50
    if void:
        import sqlite3

        conn = sqlite3.connect(server.database_url.removeprefix("sqlite:///"))
        (ref,) = conn.execute(
            "SELECT id FROM event WHERE operation_id = ? AND kind = 'checkin' LIMIT 1", (op.id,)
        ).fetchone()
        conn.close()
        bodies = [
            {
                "v": 1,
                "kind": "void",
                "op": op.id,
                "at": end_ms,
                "author": device.author,
                "ref": str(uuid.UUID(str(ref))),
            }
        ]
    return sum(device.push_until_acked(raw) for raw in device.seal_batches(bodies))


def parser() -> argparse.ArgumentParser:
    p = arguments(
        "bench.reconcile",
        __doc__,
        quick="{:,} roster people, {:,} events".format(*SIZES["quick"][:2]),
        full="{:,} roster people, {:,} events (default: {:,})".format(
            *SIZES["full"][:2], SIZES["default"][1]
        ),
    )
    p.add_argument(
        "--direct", action="store_true", help="load in process instead of over HTTP (no figure 8)"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--keep", type=Path, metavar="DIR", help="save the loaded server in DIR")
    where.add_argument(
        "--reuse", type=Path, metavar="DIR", help="start from a copy of DIR (saved by --keep)"
    )
    p.add_argument(
        "--no-warmup",
        action="store_true",
        help="start the server without its queue warm-up (cold = the first request)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    opts = parser().parse_args(argv)
    size = size_of(opts)
    people, total, chunk, repeats, rebuilds = SIZES[size]
    direct = opts.direct or opts.reuse is not None
    warmup = not opts.no_warmup
    keep: Path | None = opts.keep
    reuse: Path | None = opts.reuse
    load: dict[str, Any] = {}
    if reuse is not None:
        meta = json.loads((reuse / "bench.json").read_text())
        root = workdir("reconcile")
        shutil.rmtree(root)
        shutil.copytree(reuse, root, ignore=shutil.ignore_patterns("server.log"))
        server: Server = KeptServer(root, f"sqlite:///{root / 'muster.db'}", warmup=warmup)
        server.admin_password = meta["admin_password"]
        op = Operation(**meta["operation"])
        load = {**meta["load"], "reused": str(reuse)}
        people, total = meta["people"], meta["events"]
    elif direct:
        built = server_for("sqlite", "reconcile")
        with built:
            op = make_operation(built, people)
            devices = [RawDevice.enrol(built, op.id, author=f"staff{i}") for i in range(CLIENTS)]
        load = load_direct(built, op, devices, total, chunk)
        server = KeptServer(built.workdir, built.database_url, warmup=warmup)
        server.admin_password = built.admin_password
        if keep is not None:
            shutil.copytree(server.workdir, keep, ignore=shutil.ignore_patterns("server.log"))
            (keep / "bench.json").write_text(
                json.dumps(
                    {
                        "admin_password": server.admin_password,
                        "operation": asdict(op),
                        "load": load,
                        "people": people,
                        "events": total,
                    }
                )
            )
            print(f"kept {keep}", file=sys.stderr)
    else:
        server = server_for("sqlite", "reconcile")
    with server:
        if not direct:
            op = make_operation(server, people)
            load_over_http(server, op, people, total, chunk, size)
        # Let the start-up warm-up (kept queue indexes) finish: "cold" is the first request
        # after it. Without it (--no-warmup), the first request builds the index.
        warmup_s = wait_idle(server.pid) if direct else None
        params = {
            "events": total,
            "roster_people": people,
            "groups": len(op.groups),
            "median_of": repeats,
            "size": size,
            "backend": "sqlite",
            "via": "HTTP, staff token",
            "load": "in process (--direct)" if direct else "HTTP",
            "warmup": "on" if warmup else "off",
            **({"warmup_s": round(warmup_s, 1)} if warmup_s is not None else {}),
            **({"loaded": load} if load else {}),
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
        pages = time_queues(server, op, repeats)
        worst = max((p["median_ms"] or float("inf"), q) for q, p in pages.items())
        emit(
            "reconcile.queue_page",
            worst[0],
            "ms",
            **params,
            target="< 200",
            slowest_queue=worst[1],
            page=50,
            by_queue_ms={q: p["median_ms"] for q, p in pages.items()},
            cold_ms={q: p["cold_ms"] for q, p in pages.items()},
            warm_ms={q: p["warm_ms"] for q, p in pages.items()},
            note="cold: the first request after the server started; warm: median of repeats",
        )
        if direct:
            end_ms = int(load.get("end_ms") or time.time() * 1000)
            for what, void in (("events", False), ("void", True)):
                acked = push_change(server, op, end_ms, void)
                after = time_queues(server, op, repeats)
                emit(
                    f"reconcile.queue_page_after_{what}",
                    max(p["cold_ms"] or float("inf") for p in after.values()),
                    "ms",
                    **params,
                    target="< 200",
                    change=f"{acked} new events" if not void else "one void",
                    cold_ms={q: p["cold_ms"] for q, p in after.items()},
                    warm_ms={q: p["warm_ms"] for q, p in after.items()},
                    totals={q: p["total"] for q, p in after.items()},
                    note="cold: the first request after the change",
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
        # A change first, so the overview is cold as after any ingest.
        if direct:
            push_change(server, op, int(load.get("end_ms") or time.time() * 1000), False)
        elapsed, _data = server.timed_get(f"/operations/{op.id}/overview", timeout=TIMEOUT_S)
        emit(
            "reconcile.overview",
            None if elapsed == float("inf") else elapsed * 1000,
            "ms",
            **{**params, "median_of": 1},
            note="every group's summary plus the size of every queue; no target in issue 8",
            **({"error": f"no answer within {TIMEOUT_S:.0f} s"} if elapsed == float("inf") else {}),
        )
    if direct:
        shutil.rmtree(server.workdir, ignore_errors=True)
    return 0


def load_over_http(
    server: Server, op: Operation, people: int, total_events: int, chunk: int, size: str
) -> None:
    """Push ``total`` events in chunks from two devices; emit figure 8 (RSS while loading)."""
    devices = [RawDevice.enrol(server, op.id, author=f"staff{i}") for i in range(CLIENTS)]
    deriver = deriver_pid(server.pid)

    def kept() -> float:  # what stays: the server and its deriver process
        return rss_mb(server.pid) + rss_mb(deriver)

    def total() -> float:  # and the private memory of the child folding a round in, if any
        return kept() + children_private_mb(deriver)

    sampler = PeakSampler(total)  # every 50 ms: a round's child comes and goes between chunks
    peaks: list[tuple[int, float]] = [(0, sampler.take())]
    stays: list[tuple[int, float]] = [(0, kept())]
    server_only: list[tuple[int, float]] = [(0, rss_mb(server.pid))]
    rates: list[float] = []
    loaded = 0
    seed = 0
    while loaded < total_events:
        share = min(chunk, total_events - loaded) // CLIENTS
        batches = []
        for d in devices:
            seed += 1
            batches.append(d.seal_batches(event_bodies(op, share, d.author, seed=seed)))
        elapsed, acked = push_all(devices, batches)
        loaded += acked
        rates.append(acked / elapsed)
        peaks.append((loaded, sampler.take()))
        stays.append((loaded, kept()))
        server_only.append((loaded, rss_mb(server.pid)))
    peak = sampler.stop()

    # Flat means no growth with total size: fit after the first tenth (caches warming).
    def steady(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
        return [p for p in points if p[0] >= total_events // 10]

    mid = min(peaks, key=lambda p: abs(p[0] - total_events // 2))
    common: dict[str, Any] = {
        "events": total_events,
        "roster_people": people,
        "chunk": chunk,
        "size": size,
        "median_of": 1,
        "clients": CLIENTS,
        "backend": "sqlite",
    }
    emit(
        "memory.rss_slope",
        slope(steady(peaks)),
        "MB/100k events",
        **common,
        target="flat (about 0)",
        rss_start_mb=round(peaks[1][1], 1),
        rss_middle_mb=round(mid[1], 1),
        rss_end_mb=round(peaks[-1][1], 1),
        rss_peak_mb=round(peak, 1),
        rss_before_load_mb=round(peaks[0][1], 1),
        samples=[[x, round(y, 1)] for x, y in peaks],
        note_rss="per chunk of pushes, the largest memory of the server process, its "
        "deriver process and the child the deriver folds a round in (its private pages), "
        "sampled every 50 ms; the slope is fitted to these",
        kept_slope=round(slope(steady(stays)), 2),
        kept_samples=[[x, round(y, 1)] for x, y in stays],
        note_kept="kept: the server and deriver processes between chunks, without a round",
        server_process_slope=round(slope(steady(server_only)), 2),
        deriver_rss_end_mb=round(rss_mb(deriver), 1),
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


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
