"""Figures 1 and 2: sealed events pushed over HTTP to one server process, against the floor.

The server is one real ``muster-server serve`` process (waitress, 8 threads) on SQLite or
PostgreSQL. Devices seal and pack their batches before the clock starts (that is device-side
work); the timed part is signing, sending and the server verifying, decrypting, validating,
committing durably and updating derived state, until every record is acknowledged and a
staff read of a group summary has answered (with ``DERIVE = "behind"``, the server's default,
the deriver process folds pushed events into derived state beside the server, and a staff
read first folds in whatever it has not yet: the read's time is part of the figure).

The floor, measured in the same run: the very rows the server stored, re-inserted with the
driver alone (``sqlite3`` ``executemany`` / psycopg2 ``execute_values``) into a table with the
same columns and indexes, in committed batches of 500, with WAL and ``synchronous=FULL`` on
SQLite. ``ratio_to_floor`` is ingest rate divided by floor rate.

Usage: python -m bench.ingest [--quick|--full] [--backend sqlite|postgresql] [--clients N]
"""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

from bench.common import (
    DEVICE_BATCH,
    RawDevice,
    Server,
    arguments,
    emit,
    event_bodies,
    make_operation,
    median,
    pg_url,
    server_for,
    size_of,
    skipped,
)

SIZES = {
    # people in the roster, events per timed run, timed runs
    "quick": (2_000, 2_000, 3),
    "default": (20_000, 10_000, 3),
    "full": (20_000, 50_000, 5),
}
FLOOR_BATCH = 500


def push_all(devices: list[RawDevice], batches: list[list[bytes]]) -> tuple[float, int]:
    """Each device pushes its batches in its own thread; wall time and records acknowledged."""
    acked = [0] * len(devices)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            for raw in batches[i]:
                acked[i] += devices[i].push_until_acked(raw)
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(devices))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed, sum(acked)


def push_and_read(
    server: Any, op: Any, devices: list[RawDevice], batches: list[list[bytes]], expected: int
) -> tuple[float, int, float]:
    """Push every batch, then time a staff read: (seconds until every record was acknowledged,
    records acknowledged, seconds the read took). End to end includes derived state: a staff
    read answers only once every acknowledged event is folded in (by the deriver or itself)."""
    elapsed, acked = push_all(devices, batches)
    if acked != expected:
        raise RuntimeError(f"acknowledged {acked} of {expected}")
    caught_up, _summary = server.timed_get(f"/operations/{op.id}/groups/{op.groups[0]}/summary")
    return elapsed, acked, caught_up


def sqlite_floor(db_url: str, workdir: Any, per_run: int, runs: int) -> list[float]:
    """Re-insert the stored event rows with plain sqlite3, 500 per committed transaction."""
    source = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    ddl = [
        r[0]
        for r in source.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'event' AND sql IS NOT NULL "
            "ORDER BY type DESC"
        )
    ]  # the table first, then its indexes
    columns = [r[1] for r in source.execute("PRAGMA table_info(event)")]
    rows = source.execute("SELECT * FROM event ORDER BY rowid").fetchall()
    source.close()
    target = sqlite3.connect(str(workdir / "floor.db"), isolation_level=None)
    target.execute("PRAGMA journal_mode=wal")
    target.execute("PRAGMA synchronous=full")
    for statement in ddl:
        target.execute(statement)
    quoted = ", ".join('"' + c + '"' for c in columns)
    sql = f"INSERT INTO event ({quoted}) VALUES ({', '.join('?' * len(columns))})"
    rates = []
    for r in range(runs):
        chunk = rows[r * per_run : (r + 1) * per_run]
        start = time.perf_counter()
        for s in range(0, len(chunk), FLOOR_BATCH):
            target.execute("BEGIN IMMEDIATE")
            target.executemany(sql, chunk[s : s + FLOOR_BATCH])
            target.execute("COMMIT")
        rates.append(len(chunk) / (time.perf_counter() - start))
    target.close()
    return rates


def pg_floor(db_url: str, per_run: int, runs: int) -> list[float]:
    """Re-insert the stored event rows with psycopg2 ``execute_values``, 500 per commit."""
    import psycopg2
    from psycopg2.extras import execute_values

    conn = psycopg2.connect(db_url)
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_floor")
        cur.execute("CREATE TABLE bench_floor (LIKE event INCLUDING ALL)")
        cur.execute("SELECT * FROM event ORDER BY received_at, id")
        rows = cur.fetchall()
    conn.commit()
    rates = []
    for r in range(runs):
        chunk = rows[r * per_run : (r + 1) * per_run]
        start = time.perf_counter()
        for s in range(0, len(chunk), FLOOR_BATCH):
            with conn.cursor() as cur:
                execute_values(
                    cur,
                    "INSERT INTO bench_floor VALUES %s",
                    chunk[s : s + FLOOR_BATCH],
                    page_size=FLOOR_BATCH,
                )
            conn.commit()
        rates.append(len(chunk) / (time.perf_counter() - start))
    with conn.cursor() as cur:
        cur.execute("DROP TABLE bench_floor")
    conn.commit()
    conn.close()
    return rates


def measure(backend: str, size: str, clients: int) -> None:
    people, per_run, runs = SIZES[size]
    server: Server = server_for(backend, f"ingest-{backend}")
    with server:
        op = make_operation(server, people)
        devices = [RawDevice.enrol(server, op.id, author=f"staff{i}") for i in range(clients)]
        rates, seconds, acked_rates, catch_up_ms = [], [], [], []
        for r in range(runs):
            # Sealing and packing is device-side work, done before the clock starts.
            share = per_run // clients
            batches = [
                d.seal_batches(event_bodies(op, share, d.author, seed=r * 100 + i))
                for i, d in enumerate(devices)
            ]
            elapsed, acked, caught_up = push_and_read(server, op, devices, batches, share * clients)
            acked_rates.append(acked / elapsed)
            catch_up_ms.append(caught_up * 1000)
            rates.append(acked / (elapsed + caught_up))
            seconds.append(elapsed + caught_up)
        total = share * clients
        floor = (
            sqlite_floor(server.database_url, server.workdir, total, runs)
            if backend == "sqlite"
            else pg_floor(server.database_url, total, runs)
        )
    ingest_rate, floor_rate = median(rates), median(floor)
    params = {
        "backend": backend,
        "events_per_run": total,
        "roster_people": people,
        "clients": clients,
        "batch": DEVICE_BATCH,
        "median_of": runs,
        "size": size,
        "server": "muster-server serve (waitress, 8 threads), 1 process and its deriver",
    }
    emit(
        f"ingest.{backend}",
        ingest_rate,
        "events/s",
        **params,
        runs=[round(x) for x in rates],
        seconds=[round(x, 2) for x in seconds],
        acknowledged_runs=[round(x) for x in acked_rates],
        catch_up_ms=[round(x, 1) for x in catch_up_ms],
        target=">= 10000 (aim 20000)",
        server_errors=sum(d.server_errors for d in devices),
        ratio_to_floor=round(ingest_rate / floor_rate, 4),
    )
    emit(
        f"ingest.{backend}.floor",
        floor_rate,
        "events/s",
        **params,
        runs=[round(x) for x in floor],
        floor=(
            "sqlite3 executemany, WAL + synchronous=FULL"
            if backend == "sqlite"
            else "psycopg2 execute_values"
        )
        + f", {FLOOR_BATCH} rows per commit",
    )


def main(argv: list[str] | None = None) -> int:
    parser = arguments("bench.ingest", __doc__)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--clients", type=int, default=4, help="Devices pushing at once.")
    args = parser.parse_args(argv)
    size = size_of(args)
    if args.backend == "postgresql" and not pg_url():
        skipped("ingest.postgresql", "no PostgreSQL database given (set MUSTER_BENCH_PG_URL)")
        return 0
    try:
        measure(args.backend, size, args.clients)
    except RuntimeError as exc:
        if args.clients == 1:
            raise
        # Say what failed with concurrent devices, then still give the one-device figure.
        emit(
            f"ingest.{args.backend}.concurrent_failure",
            None,
            "",
            clients=args.clients,
            error=str(exc)[:500],
            size=size,
            note="server answered a push with an error under concurrent devices; "
            "figure below is re-measured with one device",
        )
        measure(args.backend, size, 1)
        return 1
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
