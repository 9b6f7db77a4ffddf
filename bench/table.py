"""Turn ``python -m bench --out FILE`` output into the markdown table of docs/performance.md.

Usage: python -m bench.table results.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: Figure number and label of each reported name, in the order of issue 8.
FIGURES: dict[str, str] = {
    "ingest.sqlite": "1. Ingest, SQLite (HTTP, end to end)",
    "ingest.sqlite.floor": "1. Floor: sqlite3 executemany",
    "ingest.postgresql": "2. Ingest, PostgreSQL",
    "ingest.postgresql.floor": "2. Floor: psycopg2 execute_values",
    "burst.all_acked": "3. Burst: all acknowledged",
    "burst.device_p50": "3. Burst: per device p50",
    "burst.device_p99": "3. Burst: per device p99",
    "burst.server_peak_rss": "3. Burst: server peak RSS",
    "burst.first_read_answer": "3. After the burst: first staff read answered",
    "burst.first_read_caught_up": "3. After the burst: first read with every event",
    "burst.push_while_catching_up": "3. After the burst: slowest push meanwhile",
    "wire.bytes_per_event": "4. Bytes per event (body)",
    "wire.bytes_per_event_with_headers": "4. Bytes per event (with headers)",
    "device.capture_p99": "5. Capture p99",
    "device.search_p99": "5. Roster search p99",
    "device.index_build": "5. Search index build (after unlock)",
    "device.roster_pull": "5. Initial roster pull",
    "reconcile.group_summary": "6. Group summary",
    "reconcile.queue_page": "6. Discrepancy queue page (slowest)",
    "reconcile.overview": "6. Overview (all groups and queues)",
    "reconcile.rebuild": "6. Full rebuild",
    "report.nightly": "7. Nightly report",
    "memory.rss_slope": "8. Server RSS slope while ingesting",
    "memory.ingest_rate_first_chunk": "8. Ingest rate, first chunk",
    "memory.ingest_rate_last_chunk": "8. Ingest rate, last chunk",
}
SIZE_KEYS = ("events", "events_per_run", "people", "roster_people", "devices", "clients")


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _sizes(r: dict[str, Any]) -> str:
    return ", ".join(f"{k}={r[k]}" for k in SIZE_KEYS if k in r)


def _notes(r: dict[str, Any]) -> str:
    notes = []
    if "ratio_to_floor" in r:
        notes.append(f"ratio to floor {r['ratio_to_floor']:.3f}")
    for key in ("rss_start_mb", "rss_middle_mb", "rss_end_mb"):
        if key in r:
            notes.append(f"{key.split('_')[1]} {r[key]} MB")
    if "events_waiting" in r:
        notes.append(f"catching_up answers {r['events_waiting']}")
    for key in ("slowest_queue", "p50_ms"):
        if key in r:
            notes.append(f"{key} {r[key]}")
    if r.get("skipped"):
        notes.append("skipped: " + r["skipped"])
    if r.get("error"):
        notes.append("error: " + r["error"])
    return "; ".join(notes)


def render(records: list[dict[str, Any]]) -> str:
    rows = ["| Figure | Target | Measured | Sizes | Notes | Machine |", "|---|---|---|---|---|---|"]
    by_name = {r["name"]: r for r in records}
    names = [n for n in FIGURES if n in by_name] + [
        r["name"] for r in records if r["name"] not in FIGURES and r["name"] != "bench.summary"
    ]
    for name in names:
        r = by_name[name]
        value = "—" if r.get("value") is None else f"{_num(r['value'])} {r['unit']}"
        m = r.get("machine", {})
        where = f"{m.get('cpus')} cores, load {m.get('load1')}"
        rows.append(
            f"| {FIGURES.get(name, name)} | {r.get('target', '')} | {value} | {_sizes(r)} | "
            f"{_notes(r)} | {where} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = argv or []
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    lines = Path(args[0]).read_text(encoding="utf-8").splitlines()
    print(render([json.loads(line) for line in lines if line.strip()]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
