"""Figure 5: the device side. Durable capture, roster search, and the initial roster pull.

A real ``sync.Device`` on a real SQLite store (WAL, ``synchronous=FULL``) enrolled with a real
server that holds a roster imported with ``muster-server roster import``:

* pull: a freshly enrolled device pulls the whole roster (pages of 2,000, sealed to it,
  decrypted, re-encrypted under the vault key and stored), timed end to end.
* search: ``Device.find`` over the pulled roster with names in the roster's script, in
  Latin transliteration, in reversed order, as prefixes, and by document number; p99.
  Building the in-memory index (decrypting every cached person) is reported separately.
* capture: ``Device.checkin`` and ``Device.headcount``, each durable before it returns; p99.

The vault uses light Argon2id settings because unlocking is not what is measured; every
per-record encryption is the production AES-GCM.

Usage: python -m bench.device [--quick|--full]
"""

from __future__ import annotations

import random
import time
from pathlib import Path

from bench.common import (
    Server,
    arguments,
    emit,
    make_operation,
    median,
    percentile,
    roster_row,
    server_for,
    size_of,
)
from sync import Device
from sync.normalize import transliterate

FAST_VAULT = {"memory_cost": 1024, "iterations": 1, "lanes": 1}
PASSPHRASE = "bench passphrase, not a secret"
SIZES = {
    # roster people, timed runs, searches per run, captures per run
    "quick": (2_000, 3, 100, 100),
    "default": (20_000, 3, 300, 300),
    "full": (20_000, 5, 1_000, 1_000),
}


def enrol(server: Server, op_id: int, path: Path) -> Device:
    code = server.call("POST", f"/operations/{op_id}/enrolments", {})["code"]
    return Device.enrol(
        path, server.url, code, passphrase=PASSPHRASE, author="olena", vault_params=FAST_VAULT
    )


def queries(people: int, n: int, groups: int) -> list[str]:
    """What staff type: a name as written, transliterated, reversed, a prefix, a document."""
    rng = random.Random(7)
    out = []
    for k in range(n):
        row = roster_row(rng.randrange(people), groups)
        name, alt, doc = row[1], row[2], row[5]
        form = k % 5
        if form == 0:
            out.append(name)
        elif form == 1:
            out.append(alt or transliterate(name))
        elif form == 2:
            out.append(" ".join(reversed((alt or name).split())))
        elif form == 3:
            out.append(" ".join(w[:3] for w in (alt or name).split()))
        else:
            out.append(doc)
    return out


def main(argv: list[str] | None = None) -> int:
    size = size_of(
        arguments(
            "bench.device",
            __doc__,
            quick="{:,} roster people, {} runs of {} searches and {} captures".format(
                *SIZES["quick"]
            ),
            full="{:,} roster people, {} runs of {:,} searches and {:,} captures (default: "
            "{:,} people, {} runs of {} each)".format(*SIZES["full"], *SIZES["default"][:3]),
        ).parse_args(argv)
    )
    people, runs, n_queries, n_captures = SIZES[size]
    server = server_for("sqlite", "device")
    with server:
        op = make_operation(server, people)
        groups = len(op.groups)
        pulls: list[float] = []
        device: Device | None = None
        for r in range(runs):
            if device is not None:
                device.close()
            device = enrol(server, op.id, server.workdir / f"device{r}.db")
            start = time.perf_counter()
            report = device.pull()
            pulls.append(time.perf_counter() - start)
            if report.pulled_people != people:
                raise RuntimeError(f"pulled {report.pulled_people} of {people} people")
        assert device is not None
        emit(
            "device.roster_pull",
            median(pulls),
            "s",
            people=people,
            median_of=runs,
            runs=[round(x, 3) for x in pulls],
            size=size,
            target="< 5",
            transport="HTTP to muster-server serve on loopback, SQLite server",
        )

        start = time.perf_counter()
        device.index()
        index_s = time.perf_counter() - start
        asked = queries(people, n_queries, groups)
        p99s, p50s, misses = [], [], 0
        for _ in range(runs):
            times = []
            for q in asked:
                t = time.perf_counter()
                found = device.find(q)
                times.append(time.perf_counter() - t)
                misses += not found
            p99s.append(percentile(times, 99) * 1000)
            p50s.append(percentile(times, 50) * 1000)
        emit(
            "device.search_p99",
            median(p99s),
            "ms",
            people=people,
            queries=n_queries,
            median_of=runs,
            p50_ms=round(median(p50s), 3),
            queries_without_hit=misses // runs,
            size=size,
            target="< 50",
            forms="native script, transliterated, reversed order, 3-letter prefixes, document",
        )
        emit(
            "device.index_build",
            index_s,
            "s",
            people=people,
            median_of=1,
            size=size,
            note="first search after unlock: decrypt every cached person and index it",
        )

        cap_p99, cap_p50 = [], []
        person_ids = op.people
        for r in range(runs):
            times = []
            for k in range(n_captures):
                t = time.perf_counter()
                if k % 10 == 9:
                    device.headcount(checkpoint=op.checkpoints[0], group=op.groups[0], count=48)
                else:
                    device.checkin(
                        person_ids[(r * n_captures + k) % len(person_ids)],
                        checkpoint=op.checkpoints[0],
                        status="boarded",
                        method="scan",
                    )
                times.append(time.perf_counter() - t)
            cap_p99.append(percentile(times, 99) * 1000)
            cap_p50.append(percentile(times, 50) * 1000)
        emit(
            "device.capture_p99",
            median(cap_p99),
            "ms",
            captures=n_captures,
            median_of=runs,
            p50_ms=round(median(cap_p50), 3),
            runs=[round(x, 2) for x in cap_p99],
            size=size,
            target="< 10",
            store="SQLite WAL synchronous=FULL, one transaction per capture",
            mix="90% checkin, 10% headcount",
        )
        device.close()
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
