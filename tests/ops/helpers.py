"""Helpers for operations tests: real server processes on PostgreSQL, the admin CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG_URL, REPO, free_port, reset_postgresql

needs_postgresql = pytest.mark.skipif(
    not PG_URL, reason="set MUSTER_TEST_DATABASE_URL to a PostgreSQL database"
)


def instance_env(instance: Path, database_url: str) -> dict[str, str]:
    """The environment a real process of this instance runs with."""
    return {
        **os.environ,
        "MUSTER_INSTANCE_PATH": str(instance),
        "MUSTER_DATABASE_URL": database_url,
    }


def cli(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    """Run ``muster-server ARGS`` as a real process."""
    out = subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if ok:
        assert out.returncode == 0, out.stderr + out.stdout
    return out


def cli_json(env: dict[str, str], *args: str) -> Any:
    """Run ``muster-server ARGS --json`` and parse its answer."""
    return json.loads(cli(env, *args, "--json").stdout)


class Processes:
    """Server processes started by a test, stopped (by pid) when it ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, args: list[str], env: dict[str, str], name: str) -> subprocess.Popen[str]:
        log = open(self.log_dir / f"{name}.log", "a")  # noqa: SIM115 - the child writes to it
        proc = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, text=True
        )
        self.procs.append(proc)
        return proc

    def gunicorn(self, env: dict[str, str], workers: int, port: int) -> str:
        """Start gunicorn with ``workers`` workers as the operator's guide does; return its URL."""
        self.start(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:server.ops.gunicorn_conf",
                "-w",
                str(workers),
                "-b",
                f"127.0.0.1:{port}",
                "server:create_app()",
            ],
            env,
            f"gunicorn-{port}",
        )
        return f"http://127.0.0.1:{port}"

    def serve(self, env: dict[str, str], port: int) -> str:
        """Start one ``muster-server serve`` process; return its URL."""
        self.start(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
            env,
            f"serve-{port}",
        )
        return f"http://127.0.0.1:{port}"

    def wait_ready(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"a server exited: {self.logs()}")
            try:
                with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{url} did not become ready: {self.logs()}")

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.log_dir.glob("*.log")))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


__all__ = [
    "PG_URL",
    "Processes",
    "cli",
    "cli_json",
    "free_port",
    "instance_env",
    "needs_postgresql",
    "reset_postgresql",
]
