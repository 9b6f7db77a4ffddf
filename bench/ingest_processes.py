"""Figure: ingest over HTTP into one PostgreSQL with 1, 2 and 4 server processes (gunicorn).

The server is gunicorn with N sync-free ``gthread`` workers of 4 threads each, started as the
operator's guide does (``-c python:server.ops.gunicorn_conf 'server:create_app()'``). Devices
seal their batches before the clock starts; the timed part is every device pushing its batches
in its own thread until each record is acknowledged. One JSON line per process count.

Usage: python -m bench.ingest_processes [--quick|--full] [--devices N]
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx

from bench.common import (
    REPO,
    RawDevice,
    Server,
    arguments,
    emit,
    event_bodies,
    make_operation,
    median,
    pg_url,
    reset_postgresql,
    server_for,
    size_of,
    skipped,
)
from bench.ingest import push_and_read

SIZES = {
    # roster people, events per timed run, timed runs
    "quick": (2_000, 4_000, 1),
    "default": (20_000, 20_000, 3),
    "full": (20_000, 100_000, 3),
}
PROCESSES = (1, 2, 4)
THREADS = 4


class GunicornServer(Server):
    """``Server`` from bench.common, served by gunicorn with several worker processes."""

    workers: int = 1

    def start(self) -> GunicornServer:
        self.instance.mkdir(parents=True, exist_ok=True)
        reset_postgresql(self.database_url)
        self.admin_password = self.cli("init")["first_admin"]["password"]
        from bench.common import _free_port

        self.port = _free_port()
        log = (self.workdir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:server.ops.gunicorn_conf",
                "-w",
                str(self.workers),
                "--threads",
                str(THREADS),
                "-b",
                f"127.0.0.1:{self.port}",
                "server:create_app()",
            ],
            cwd=REPO,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gunicorn exited: " + (self.workdir / "server.log").read_text())
            try:
                if self.http.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError("gunicorn did not become ready")
        self.token = self.call(
            "POST", "/tokens", {"username": "admin", "password": self.admin_password}
        )["token"]
        return self


def measure(workers: int, size: str, n_devices: int) -> None:
    people, per_run, runs = SIZES[size]
    base = server_for("postgresql", f"ingest-processes-{workers}")
    server = GunicornServer(base.workdir, base.database_url)
    server.workers = workers
    with server:
        # gunicorn starts no deriver: run one beside the workers, as docs/operations.md says.
        deriver = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "derive"],
            cwd=REPO,
            env=server.env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            op = make_operation(server, people)
            devices = [RawDevice.enrol(server, op.id, author=f"staff{i}") for i in range(n_devices)]
            share = per_run // n_devices
            rates, seconds = [], []
            for r in range(runs):
                batches = [
                    d.seal_batches(event_bodies(op, share, d.author, seed=r * 100 + i))
                    for i, d in enumerate(devices)
                ]
                elapsed, acked, caught_up = push_and_read(
                    server, op, devices, batches, share * n_devices
                )
                rates.append(acked / (elapsed + caught_up))
                seconds.append(elapsed + caught_up)
        finally:
            deriver.terminate()
            deriver.wait(30)
    emit(
        f"ingest.postgresql.processes_{workers}",
        median(rates),
        "events/s",
        backend="postgresql",
        processes=workers,
        threads_per_process=THREADS,
        devices=n_devices,
        events_per_run=share * n_devices,
        roster_people=people,
        median_of=runs,
        size=size,
        runs=[round(x) for x in rates],
        seconds=[round(x, 2) for x in seconds],
        server=f"gunicorn -w {workers} --threads {THREADS} 'server:create_app()'"
        " and one muster-server derive beside it",
    )


def main(argv: list[str] | None = None) -> int:
    parser = arguments("bench.ingest_processes", __doc__)
    parser.add_argument("--devices", type=int, default=8, help="Devices pushing at once.")
    args = parser.parse_args(argv)
    size = size_of(args)
    if not pg_url():
        for workers in PROCESSES:
            skipped(f"ingest.postgresql.processes_{workers}", "set MUSTER_BENCH_PG_URL")
        return 0
    for workers in PROCESSES:
        measure(workers, size, args.devices)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
