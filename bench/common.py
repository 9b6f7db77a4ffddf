"""Shared benchmark plumbing: a real server process, staff calls, sealed device batches, output.

Every benchmark prints one JSON object per line with ``name``, ``value``, ``unit``, the sizes
used, ``median_of`` and the machine it ran on. Nothing here shortcuts durability or crypto:
the server is the real ``muster-server serve`` process, devices seal with
``SealingSession`` and sign with ``sign_request`` exactly as ``sync/device.py`` does.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import math
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from sync.crypto import DeviceKeys, SealingSession, b64d, b64e, sign_request
from sync.events import canonical_bytes

REPO = Path(__file__).resolve().parent.parent
API = "/api/v1"
PUSH_PATH = API + "/sync/push"
#: HTTP statuses a device treats as "try again later" (sync/transport.py).
RETRYABLE_STATUSES = {408, 425, 429, 500, 502, 503, 504}
#: A device pushes at most this many records per request (sync/device.py).
DEVICE_BATCH = 500
#: A device opens a new capture session after this many records (sync/device.py).
SESSION_RECORDS = 1000
#: Where PostgreSQL benchmarks run; its schema ``public`` is dropped and recreated.
PG_ENV = "MUSTER_BENCH_PG_URL"

SIZES = ("quick", "default", "full")


# Output ----------------------------------------------------------------------------------
def machine() -> dict[str, Any]:
    """The machine a figure was measured on (cores, CPU model, load at the time)."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "load1": load,
    }


def emit(name: str, value: float | None, unit: str, **extra: Any) -> dict[str, Any]:
    """Print one figure as a JSON line (flushed, so a runner sees it at once)."""
    if value is not None and not math.isfinite(value):
        extra.setdefault("error", "no answer within the timeout")
        value = None
    record = {
        "name": name,
        "value": None if value is None else round(float(value), 4),
        "unit": unit,
        **extra,
        "machine": machine(),
    }
    print(json.dumps(record, ensure_ascii=False), flush=True)
    return record


def skipped(name: str, reason: str, **extra: Any) -> dict[str, Any]:
    """Say a figure was not measured, and why (a runner keeps it in the output)."""
    return emit(name, None, "", skipped=reason, **extra)


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def percentile(values: list[float], pct: float) -> float:
    """The ``pct`` percentile by nearest rank (p99 of 100 samples is the 99th smallest)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return float(ordered[rank - 1])


def arguments(
    prog: str, doc: str | None, quick: str = "", full: str = ""
) -> argparse.ArgumentParser:
    """A benchmark's command line: ``--help`` shows its docstring; ``--quick`` (small sizes, a
    smoke test) or ``--full`` (the issue's sizes), help texts naming the sizes. Options are
    never abbreviated (a misspelt one is an error, not the default size)."""
    parser = argparse.ArgumentParser(
        prog=f"python -m {prog}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help=quick or "small sizes: a smoke test")
    size.add_argument("--full", action="store_true", help=full or "the issue's full sizes")
    return parser


def size_of(args: argparse.Namespace) -> str:
    """``quick``, ``full`` or ``default``, from :func:`arguments`' options."""
    return "quick" if args.quick else "full" if args.full else "default"


# Process facts -----------------------------------------------------------------------------
def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in kB, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(rest.split()[0])
    return out


def child_pids(pid: int) -> list[int]:
    """The processes a process started (from any of its threads); none when it is gone."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def deriver_pid(server_pid: int) -> int | None:
    """The deriver process ``serve`` keeps beside itself (its child running ``derive``)."""
    for child in child_pids(server_pid):
        try:
            if b"derive" in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0"):
                return child
        except OSError:
            continue
    return None


def private_mb(pid: int) -> float:
    """Memory a process holds that no other process shares (its private pages), in MB: what a
    forked child adds to its parent; 0 when it is gone."""
    total = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total += int(line.split()[1])
    except (OSError, ValueError):
        return 0.0
    return total / 1024


def children_private_mb(pid: int | None) -> float:
    """The private memory of a process's children (the deriver's: the round folding in now)."""
    return 0.0 if pid is None else sum(private_mb(c) for c in child_pids(pid))


class PeakSampler:
    """Call ``measure()`` (MB) every ``interval`` seconds in a thread and keep the largest:
    ``take()`` gives the largest since the last ``take()``, ``stop()`` the largest of all.
    A forked child's own peak (VmHWM) leaves with it, so peaks that include children are
    sampled, as closely as the interval allows."""

    def __init__(self, measure: Callable[[], float], interval: float = 0.05) -> None:
        self.measure, self.interval = measure, interval
        self.peak = self._since = measure()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            value = self.measure()
            with self._lock:
                self.peak = max(self.peak, value)
                self._since = max(self._since, value)

    def take(self) -> float:
        value = self.measure()
        with self._lock:
            out, self._since = max(self._since, value), value
            self.peak = max(self.peak, value)
        return out

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak


def rss_mb(pid: int | None, key: str = "VmRSS") -> float:
    """A process's RSS (or peak RSS with ``key="VmHWM"``) in MB; 0 when it is gone."""
    if pid is None:
        return 0.0
    try:
        return proc_status(pid)[key] / 1024
    except (OSError, KeyError):
        return 0.0


# The server --------------------------------------------------------------------------------
def reset_postgresql(url: str) -> None:
    """Drop and recreate schema ``public`` of the benchmark database."""
    import psycopg2

    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP SCHEMA IF EXISTS public CASCADE")
        cur.execute("CREATE SCHEMA public")
    conn.close()


def pg_url() -> str | None:
    """The PostgreSQL URL benchmarks may wipe, or None when none was given."""
    url = os.environ.get(PG_ENV, "").strip()
    return url or None


@dataclass
class Server:
    """A real ``muster-server serve`` process on a loopback port, set up from nothing."""

    workdir: Path
    database_url: str
    threads: int = 8
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    admin_password: str = ""
    token: str = ""
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=120))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def instance(self) -> Path:
        return self.workdir / "instance"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "MUSTER_INSTANCE_PATH": str(self.instance),
            "MUSTER_DATABASE_URL": self.database_url,
            "MUSTER_LOG_LEVEL": "WARNING",
        }

    def cli(self, *args: str) -> Any:
        """Run ``muster-server ARGS --json`` against this server's database; return its JSON."""
        done = subprocess.run(
            [sys.executable, "-m", "server.cli", *args, "--json"],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"muster-server {args[0]} failed: {done.stderr[-2000:]}")
        return json.loads(done.stdout)

    def start(self) -> Server:
        self.instance.mkdir(parents=True, exist_ok=True)
        if self.database_url.startswith("postgres"):
            reset_postgresql(self.database_url)
        boot = self.cli("init")
        self.admin_password = boot["first_admin"]["password"]
        self.port = _free_port()
        log = (self.workdir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(self.port),
                "--threads",
                str(self.threads),
            ],
            cwd=REPO,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
            self.token = self.call(
                "POST", "/tokens", {"username": "admin", "password": self.admin_password}
            )["token"]
        except BaseException:
            self.stop()  # ``with`` calls stop only once start has returned
            raise
        return self

    def _wait_ready(self, seconds: float = 60) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + (self.workdir / "server.log").read_text())
            try:
                if self.http.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.http.close()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """A staff API call as the first administrator."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        resp = self.http.request(
            method, self.url + API + path, json=body, headers=headers, params=params or None
        )
        if resp.status_code >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {resp.status_code} {resp.text[:500]}")
        return resp.json()

    def timed_get(self, path: str, timeout: float = 300, **params: Any) -> tuple[float, Any]:
        """One staff GET and its wall time in seconds; ``inf`` if no answer within timeout."""
        headers = {"Authorization": f"Bearer {self.token}"}
        start = time.perf_counter()
        try:
            resp = self.http.get(
                self.url + API + path, headers=headers, params=params or None, timeout=timeout
            )
        except httpx.TimeoutException:
            return float("inf"), None
        if resp.status_code >= 300:
            raise RuntimeError(f"GET {path}: HTTP {resp.status_code} {resp.text[:500]}")
        return time.perf_counter() - start, resp.json()

    def read_until_caught_up(
        self, path: str, timeout: float = 600
    ) -> tuple[float, float, list[int]]:
        """Staff GETs of ``path`` until one answers with data: (seconds until the first answer
        of any kind, seconds until the one with data, the events waiting that each "catching
        up" answer before it gave).

        A read that would have to derive a large backlog itself answers 503 ``catching_up``
        (docs/reconciliation.md); a console or client reads again, and so does this, every
        0.2 s (not after ``Retry-After``, so the time with data stays exact to 0.2 s).
        """
        headers = {"Authorization": f"Bearer {self.token}"}
        start = time.perf_counter()
        first: float | None = None
        waits: list[int] = []
        while time.perf_counter() - start < timeout:
            resp = self.http.get(self.url + API + path, headers=headers, timeout=timeout)
            now = time.perf_counter() - start
            first = now if first is None else first
            if resp.status_code == 200:
                return first, now, waits
            if resp.status_code != 503 or resp.json()["error"]["code"] != "catching_up":
                raise RuntimeError(f"GET {path}: HTTP {resp.status_code} {resp.text[:500]}")
            waits.append(int(resp.json()["error"]["details"]["events_waiting"]))
            time.sleep(0.2)
        raise RuntimeError(f"GET {path}: still catching up after {timeout} s")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"muster-bench-{prefix}-"))


def server_for(backend: str, prefix: str, threads: int = 8) -> Server:
    """An unstarted server on a fresh SQLite file or the benchmark PostgreSQL database."""
    root = workdir(prefix)
    if backend == "sqlite":
        url = f"sqlite:///{root / 'muster.db'}"
    else:
        url = pg_url() or ""
        if not url:
            raise RuntimeError(f"set {PG_ENV} for PostgreSQL benchmarks")
    return Server(root, url, threads=threads)


# An operation with a roster ----------------------------------------------------------------
SURNAMES = [
    ("张", "Zhang"),
    ("王", "Wang"),
    ("李", "Li"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("黄", "Huang"),
    ("赵", "Zhao"),
    ("吴", "Wu"),
    ("周", "Zhou"),
]
GIVEN = [
    ("伟", "Wei"),
    ("芳", "Fang"),
    ("娜", "Na"),
    ("小明", "Xiaoming"),
    ("静", "Jing"),
    ("强", "Qiang"),
    ("磊", "Lei"),
    ("洋", "Yang"),
    ("艳", "Yan"),
    ("军", "Jun"),
]
UA_SURNAMES = [
    ("Шевченко", "Shevchenko"),
    ("Коваленко", "Kovalenko"),
    ("Бондаренко", "Bondarenko"),
    ("Ткаченко", "Tkachenko"),
    ("Кравченко", "Kravchenko"),
    ("Олійник", "Oliinyk"),
    ("Мельник", "Melnyk"),
    ("Поліщук", "Polishchuk"),
]
UA_GIVEN = [
    ("Олена", "Olena"),
    ("Андрій", "Andrii"),
    ("Ірина", "Iryna"),
    ("Дмитро", "Dmytro"),
    ("Тетяна", "Tetiana"),
    ("Олег", "Oleh"),
    ("Наталія", "Nataliia"),
    ("Юрій", "Yurii"),
]
LATIN_SURNAMES = [
    "Okafor",
    "Mensah",
    "Nwosu",
    "Adeyemi",
    "Kumar",
    "Sharma",
    "Ahmed",
    "Khan",
    "Haddad",
    "Nasser",
    "Silva",
    "Costa",
]
LATIN_GIVEN = [
    "Amina",
    "Chidi",
    "Kwame",
    "Priya",
    "Ravi",
    "Omar",
    "Fatima",
    "Layla",
    "Tiago",
    "Ana",
    "Samir",
    "Grace",
]
ROSTER_HEADER = [
    "External ID",
    "Full name",
    "Alternate names",
    "Sex",
    "Birth date",
    "Document number",
    "Phone",
    "Group",
]


def roster_row(i: int, groups: int) -> list[str]:
    """Row ``i`` of a generated roster: Chinese, Ukrainian or Latin names; all values distinct."""
    rng = random.Random(i)
    kind = i % 3
    if kind == 0:
        (fam, fam_py), (giv, giv_py) = rng.choice(SURNAMES), rng.choice(GIVEN)
        name, alt = fam + giv, f"{fam_py.upper()} {giv_py}"
    elif kind == 1:
        (fam, fam_l), (giv, giv_l) = rng.choice(UA_SURNAMES), rng.choice(UA_GIVEN)
        name, alt = f"{fam} {giv}", f"{fam_l.upper()} {giv_l}"
    else:
        name, alt = f"{rng.choice(LATIN_GIVEN)} {rng.choice(LATIN_SURNAMES)}", ""
    return [
        f"B{i:07d}",
        name,
        alt,
        "male" if i % 2 else "female",
        f"{1960 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        f"E{10000000 + i}",
        f"+380 50 {i:07d}",
        f"Bus {1 + i % groups}",
    ]


@dataclass
class Operation:
    """An operation on a server: its id, checkpoints, groups and the roster's person ids."""

    id: int
    checkpoints: list[int]
    groups: list[int]
    people: list[str]


def make_operation(server: Server, people: int, group_size: int = 50) -> Operation:
    """Create an operation with 3 checkpoints, groups on a route, and a roster of ``people``.

    The roster goes in through ``muster-server roster import`` of a generated CSV, as an
    operator would load it.
    """
    op = server.call("POST", "/operations", {"name": "Bench", "timezone": "Europe/Kyiv"})
    cps = [
        server.call("POST", f"/operations/{op['id']}/checkpoints", {"name": n, "kind": k})["id"]
        for n, k in (("Station", "station"), ("Border", "border"), ("Reception", "reception"))
    ]
    n_groups = max(1, -(-people // group_size)) if people else 1
    groups = [
        server.call(
            "POST",
            f"/operations/{op['id']}/groups",
            {"name": f"Bus {g + 1}", "expected_size": group_size, "route": cps},
        )["id"]
        for g in range(n_groups)
    ]
    ids: list[str] = []
    if people:
        path = server.workdir / "roster.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(ROSTER_HEADER)
            writer.writerows(roster_row(i, n_groups) for i in range(people))
        server.cli("roster", "import", str(path), "--operation", str(op["id"]))
        ids = person_ids(server.database_url, op["id"])
    return Operation(op["id"], cps, groups, ids)


def person_ids(url: str, op_id: int) -> list[str]:
    """Every person id of an operation, read straight from the database."""
    if url.startswith("sqlite"):
        import sqlite3

        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        rows = conn.execute(
            "SELECT id FROM person WHERE operation_id = ? ORDER BY id", (op_id,)
        ).fetchall()
        conn.close()
        return [str(uuid.UUID(str(r[0]))) for r in rows]
    import psycopg2

    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM person WHERE operation_id = %s ORDER BY id", (op_id,))
        rows = cur.fetchall()
    conn.close()
    return [str(r[0]) for r in rows]


# Devices that seal and push like sync/device.py ----------------------------------------------
@dataclass
class RawDevice:
    """An enrolled device that seals events and pushes gzip JSON batches it signs itself.

    The same bytes ``Device.push`` would send: envelopes from ``SealingSession.seal`` of the
    canonical body, session blobs alongside, ``gzip`` level 6, an Ed25519 request signature.
    """

    server_url: str
    device_id: uuid.UUID
    keys: DeviceKeys
    kid: str
    server_public: bytes
    op_id: int
    author: str = "olena"
    next_seq: int = 1
    server_errors: int = 0
    retries: int = 0
    timeouts: int = 0
    # Device.push uses 30 s; a benchmark waits longer so a slow answer is measured, not lost.
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=120))

    @classmethod
    def enrol(cls, server: Server, op_id: int, author: str = "olena") -> RawDevice:
        code = server.call("POST", f"/operations/{op_id}/enrolments", {})["code"]
        keys = DeviceKeys.generate()
        answer = server.http.post(
            server.url + API + "/sync/enrol",
            json={
                "code": code,
                "signing_key": b64e(keys.signing_public_raw),
                "encryption_key": b64e(keys.encryption_public_raw),
                "label": "bench",
                "clock": int(time.time() * 1000),
            },
            headers={"Muster-Protocol": "1"},
        ).json()
        key = next(k for k in answer["server_keys"] if k["kid"] == answer["current_kid"])
        return cls(
            server.url,
            uuid.UUID(answer["device_id"]),
            keys,
            answer["current_kid"],
            b64d(key["public_key"]),
            op_id,
            author,
        )

    def seal_batches(
        self, bodies: Iterable[dict[str, Any]], batch: int = DEVICE_BATCH
    ) -> list[bytes]:
        """Seal ``bodies`` (sessions of 1000) and pack them as the gzip batches a push sends."""
        out: list[bytes] = []
        pending: list[str] = []
        blobs: dict[bytes, str] = {}
        session: SealingSession | None = None
        count = 0
        for body in bodies:
            if session is None or count >= SESSION_RECORDS:
                session = SealingSession.start(
                    self.device_id, self.keys, self.kid, self.server_public, int(time.time() * 1000)
                )
                count = 0
            envelope = session.seal(uuid.uuid4(), self.next_seq, canonical_bytes(body))
            self.next_seq += 1
            count += 1
            pending.append(b64e(envelope))
            blobs[session.session_id] = b64e(session.blob)
            if len(pending) == batch:
                out.append(_pack(pending, list(blobs.values())))
                pending, blobs = [], {}
        if pending:
            out.append(_pack(pending, list(blobs.values())))
        return out

    def push(self, raw: bytes) -> tuple[int, Any]:
        """POST one prepared gzip batch, signed now; return the HTTP status and JSON answer."""
        now = int(time.time() * 1000)
        headers = {
            "Muster-Protocol": "1",
            "Muster-Device": str(self.device_id),
            "Muster-Timestamp": str(now),
            "Muster-Signature": sign_request(
                self.keys, "POST", PUSH_PATH, self.device_id, now, raw
            ),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        }
        resp = self.http.post(self.server_url + PUSH_PATH, content=raw, headers=headers)
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, None

    def push_until_acked(self, raw: bytes, max_attempts: int = 12) -> int:
        """Push one batch until every record is acknowledged; return how many were.

        Like ``Device.push``: a retryable HTTP status (5xx, 429, ...) or a per-record
        ``retry`` answer means send again after full-jitter exponential backoff. Each such
        answer is counted in ``server_errors`` / ``retries`` so a benchmark can report it.
        Re-sending a whole batch is safe: accepted records come back as duplicates.
        """
        for attempt in range(1, max_attempts + 1):
            try:
                status, answer = self.push(raw)
            except httpx.TransportError:
                # No answer in time (or connection refused): Device.push calls this Offline
                # and retries after backoff; so does the benchmark, and counts it.
                self.timeouts += 1
                time.sleep(random.uniform(0, min(30.0, 0.5 * 2 ** (attempt - 1))))
                continue
            if status in RETRYABLE_STATUSES:
                self.server_errors += 1
                time.sleep(random.uniform(0, min(30.0, 0.5 * 2 ** (attempt - 1))))
                continue
            if status != 200 or not isinstance(answer, dict):
                raise RuntimeError(f"push: HTTP {status} {str(answer)[:300]}")
            statuses = [r["status"] for r in answer["results"]]
            if "rejected" in statuses:
                bad = next(r for r in answer["results"] if r["status"] == "rejected")
                raise RuntimeError(f"server rejected a benchmark record: {bad}")
            if "retry" in statuses:
                self.retries += 1
                time.sleep(random.uniform(0, min(30.0, 0.5 * 2 ** (attempt - 1))))
                continue
            return sum(s in ("accepted", "duplicate") for s in statuses)
        raise RuntimeError(f"push: not acknowledged after {max_attempts} attempts")


def _pack(envelopes: list[str], sessions: list[str]) -> bytes:
    body = {"clock": int(time.time() * 1000), "sessions": sessions, "envelopes": envelopes}
    return gzip.compress(json.dumps(body, separators=(",", ":")).encode(), compresslevel=6, mtime=0)


def event_bodies(
    op: Operation,
    n: int,
    author: str = "olena",
    seed: int = 0,
    mix: bool = True,
    spacing_ms: int = 50,
    checkpoint: int | None = None,
) -> Iterator[dict[str, Any]]:
    """``n`` plausible event bodies: mostly check-ins of roster people along the route.

    With ``mix`` about 3% are headcounts and 2% flags, as at a real checkpoint. Captures are
    ``spacing_ms`` apart, the last one now; ``checkpoint`` (an index into the operation's
    checkpoints) keeps the device at one checkpoint, as a checkpoint's phone is, instead of
    a random checkpoint per event.
    """
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    statuses = ("present", "boarded", "crossed", "arrived")
    for i in range(n):
        at = now - (n - i) * spacing_ms
        roll = rng.random() if mix else 1.0
        cp_index = rng.randrange(len(op.checkpoints)) if checkpoint is None else checkpoint
        if roll < 0.03:
            yield {
                "v": 1,
                "kind": "headcount",
                "op": op.id,
                "at": at,
                "author": author,
                "checkpoint": op.checkpoints[cp_index],
                "group": rng.choice(op.groups),
                "count": rng.randint(40, 52),
            }
        elif roll < 0.05 and op.people:
            yield {
                "v": 1,
                "kind": "flag",
                "op": op.id,
                "at": at,
                "author": author,
                "person": rng.choice(op.people),
                "flag": "medical",
                "checkpoint": op.checkpoints[cp_index],
            }
        else:
            person = rng.choice(op.people) if op.people else str(uuid.uuid4())
            yield {
                "v": 1,
                "kind": "checkin",
                "op": op.id,
                "at": at,
                "author": author,
                "person": person,
                "checkpoint": op.checkpoints[cp_index],
                "status": statuses[cp_index],
                "method": rng.choice(("scan", "search")),
            }
