"""Run every benchmark and print one JSON object per line: ``python -m bench [options]``.

Each benchmark module runs in its own process (a crash, hang or leak in one cannot spoil the
others); its JSON lines are passed through as they come, and a module that fails or times out
leaves an ``{"name": ..., "error": ...}`` line instead of silence. The last line is a summary.

  python -m bench                 the default sizes (about 15 minutes on 2 quiet cores)
  python -m bench --quick         small sizes, a smoke test of every benchmark (~3 minutes)
  python -m bench --full          the issue's full sizes (1,000,000 events; an hour or more)
  python -m bench --only ingest   one benchmark (repeatable; names as listed by --list)
  python -m bench --out FILE      also write the JSON lines to FILE

PostgreSQL figures need ``MUSTER_BENCH_PG_URL`` (a database whose schema ``public`` the
benchmarks drop and recreate); without it they print a ``skipped`` line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from bench.common import REPO, machine

#: (name, module, extra arguments, timeout in seconds at the default size)
BENCHMARKS: list[tuple[str, str, list[str], int]] = [
    ("wire", "bench.wire", [], 120),
    ("ingest", "bench.ingest", ["--backend", "sqlite"], 600),
    ("ingest-pg", "bench.ingest", ["--backend", "postgresql"], 600),
    ("ingest-processes", "bench.ingest_processes", [], 900),
    ("device", "bench.device", [], 900),
    ("burst", "bench.burst", [], 1200),
    ("reconcile", "bench.reconcile", [], 1800),
    ("report", "bench.report", [], 600),
]
TIMEOUT_FACTOR = {"quick": 1, "default": 1, "full": 12}


def available(module: str) -> bool:
    """Whether a benchmark module exists (another engineer may not have added it yet)."""
    return (REPO / (module.replace(".", "/") + ".py")).exists()


def run_one(
    name: str,
    module: str,
    args: list[str],
    timeout: float,
    out: list[IO[str]],
) -> dict[str, Any]:
    """Run one benchmark process; relay its JSON lines; return what happened."""
    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    stderr: list[str] = []
    drain = threading.Thread(target=lambda: stderr.extend(proc.stderr or []), daemon=True)
    drain.start()
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    figures = 0
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                print(line, file=sys.stderr)  # stray output: keep stdout pure JSON lines
                continue
            record.setdefault("benchmark", name)
            _write(record, out)
            figures += 1
        proc.wait()
    finally:
        timer.cancel()
    drain.join(5)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        timed_out = elapsed >= timeout
        reason = (
            f"timed out after {timeout:.0f} s" if timed_out else f"exit status {proc.returncode}"
        )
        tail = "".join(stderr)[-1500:]
        _write(
            {
                "name": name,
                "value": None,
                "unit": "",
                "benchmark": name,
                "error": reason,
                "stderr_tail": tail,
                "machine": machine(),
            },
            out,
        )
        return {"benchmark": name, "ok": False, "seconds": round(elapsed, 1), "error": reason}
    return {"benchmark": name, "ok": True, "seconds": round(elapsed, 1), "figures": figures}


def _write(record: dict[str, Any], out: list[IO[str]]) -> None:
    line = json.dumps(record, ensure_ascii=False)
    for stream in out:
        print(line, file=stream, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="Small sizes (smoke test).")
    sizes.add_argument("--full", action="store_true", help="The issue's full sizes (long).")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help="Run only this benchmark (repeatable).",
    )
    parser.add_argument("--list", action="store_true", help="List benchmark names and exit.")
    parser.add_argument("--out", type=Path, default=None, help="Also write the lines here.")
    args = parser.parse_args(argv)
    if args.list:
        for name, module, _, _ in BENCHMARKS:
            print(name if available(module) else f"{name} (absent: {module})")
        return 0
    size = "quick" if args.quick else "full" if args.full else "default"
    names = [b[0] for b in BENCHMARKS]
    unknown = [n for n in args.only if n not in names]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; one of: {', '.join(names)}")
    out: list[IO[str]] = [sys.stdout]
    handle = args.out.open("w", encoding="utf-8") if args.out else None
    if handle is not None:
        out.append(handle)
    size_flag = [] if size == "default" else [f"--{size}"]
    summary: list[dict[str, Any]] = []
    start = time.monotonic()
    try:
        for name, module, extra, timeout in BENCHMARKS:
            if args.only and name not in args.only:
                continue
            if not available(module):
                _write(
                    {
                        "name": name,
                        "value": None,
                        "unit": "",
                        "benchmark": name,
                        "skipped": f"{module} is not in this tree",
                        "machine": machine(),
                    },
                    out,
                )
                summary.append({"benchmark": name, "ok": True, "skipped": True})
                continue
            summary.append(
                run_one(name, module, [*extra, *size_flag], timeout * TIMEOUT_FACTOR[size], out)
            )
        _write(
            {
                "name": "bench.summary",
                "value": round(time.monotonic() - start, 1),
                "unit": "s",
                "size": size,
                "benchmarks": summary,
                "machine": machine(),
            },
            out,
        )
    finally:
        if handle is not None:
            handle.close()
    return 0 if all(s.get("ok") for s in summary) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
