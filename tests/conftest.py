"""Shared fixtures: an app on a fresh database per test, on SQLite and (when configured) PostgreSQL.

Set ``MUSTER_TEST_DATABASE_URL=postgresql://root@127.0.0.1:5432/test`` to run every test that
uses the ``app`` fixture (or ``db_url``) against PostgreSQL as well as SQLite; the test ids then
end in ``[sqlite]`` and ``[postgresql]``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner


def worker_database_url(url: str) -> str:
    """One PostgreSQL database per pytest-xdist worker, created on first use.

    Every PostgreSQL test resets schema ``public`` of its database, so parallel workers must not
    share one: worker ``gw1`` uses ``<database>_gw1`` next to the configured database (which is
    used as is without xdist). The per-worker URL is also exported, for anything reading it.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not url or not worker:
        return url
    from urllib.parse import urlsplit, urlunsplit

    import psycopg2

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/')}_{worker}"
    conn = psycopg2.connect(url)
    conn.autocommit = True  # CREATE DATABASE refuses to run inside a transaction
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                # Another run of the suite may create it meanwhile.
                with contextlib.suppress(psycopg2.errors.DuplicateDatabase):
                    cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    worker_url = urlunsplit(parts._replace(path="/" + name))
    os.environ["MUSTER_TEST_DATABASE_URL"] = worker_url
    return worker_url


PG_URL = worker_database_url(os.environ.get("MUSTER_TEST_DATABASE_URL", ""))
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
REPO = Path(__file__).resolve().parent.parent


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        # Tests of what sits above storage (browsers, pages) run once, on SQLite, rather than
        # being skipped on PostgreSQL: CI fails when any PostgreSQL test is skipped.
        only_sqlite = metafunc.definition.get_closest_marker("sqlite_only") is not None
        backends = ["sqlite"] if only_sqlite else BACKENDS
        metafunc.parametrize("backend", backends, scope="function")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under ``--dist loadgroup``, keep the tests sharing a fixture on one xdist worker.

    A module- or session-scoped fixture of the suite (a seeded world, a live server) holds state
    across a module's tests, on PostgreSQL in the worker's one database. Split across workers,
    it would be built on each; interleaved with other tests on the same worker, their resets of
    schema ``public`` would wipe it. Grouped by module and by the fixture's parameter (the
    backend), each such world runs on one worker, in order, alone; the SQLite and PostgreSQL
    worlds of one module can still run in parallel.
    """
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        if info is None or item.get_closest_marker("xdist_group") is not None:
            continue
        shared = sorted(
            name
            for name, defs in info.name2fixturedefs.items()
            if any(d.scope != "function" and d.baseid for d in defs)
        )
        if not shared:
            continue
        params = getattr(item, "callspec", None)
        values = [str(params.params[n]) for n in shared if params and n in params.params]
        group = item.nodeid.split("::")[0] + (f"[{','.join(values)}]" if values else "")
        item.add_marker(pytest.mark.xdist_group(group))


def reset_postgresql(url: str) -> None:
    """Drop and recreate the public schema so each test starts empty."""
    from playhouse.db_url import connect

    db = connect(url)
    db.connect()
    db.execute_sql("DROP SCHEMA IF EXISTS public CASCADE")
    db.execute_sql("CREATE SCHEMA public")
    db.close()


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> str:
    """A URL for an empty database on ``backend``."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'muster.db'}"
    reset_postgresql(PG_URL)
    return PG_URL


@pytest.fixture
def instance_path(tmp_path: Path) -> Path:
    path = tmp_path / "instance"
    path.mkdir()
    return path


@pytest.fixture
def app(db_url: str, instance_path: Path) -> Iterator[Flask]:
    """The real application on a fresh database, set up as ``muster-server init`` would."""
    from server import create_app
    from server.setup import bootstrap

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "INSTANCE_PATH": str(instance_path),
            "KEYS_DIR": str(instance_path / "keys"),
        }
    )
    app.config["BOOTSTRAP"] = bootstrap(app)
    yield app
    from server.db import database

    if not database.is_closed():
        database.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def admin_password(app: Flask) -> str:
    return app.config["BOOTSTRAP"]["first_admin"]["password"]


def login(client: FlaskClient, username: str, password: str) -> dict[str, str]:
    """Log in through the API; return the Authorization header."""
    resp = client.post("/api/v1/tokens", json={"username": username, "password": password})
    assert resp.status_code == 201, resp.get_json()
    return {"Authorization": "Bearer " + resp.get_json()["token"]}


@pytest.fixture
def admin_headers(client: FlaskClient, admin_password: str) -> dict[str, str]:
    return login(client, "admin", admin_password)


@pytest.fixture
def operation(client: FlaskClient, admin_headers: dict[str, str]) -> dict[str, Any]:
    """An operation with three checkpoints and one group on a route through them."""
    op = client.post(
        "/api/v1/operations",
        json={"name": "Kharkiv students", "timezone": "Europe/Kyiv"},
        headers=admin_headers,
    ).get_json()
    cps = [
        client.post(
            f"/api/v1/operations/{op['id']}/checkpoints",
            json={"name": name, "kind": kind},
            headers=admin_headers,
        ).get_json()
        for name, kind in [
            ("Kharkiv station", "station"),
            ("Medyka crossing", "border"),
            ("Przemysl reception", "reception"),
        ]
    ]
    group = client.post(
        f"/api/v1/operations/{op['id']}/groups",
        json={"name": "Bus 1", "expected_size": 52, "route": [c["id"] for c in cps]},
        headers=admin_headers,
    ).get_json()
    return {**op, "checkpoints": cps, "group": group}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LiveServer:
    """A real ``muster-server serve`` process on a loopback port."""

    def __init__(self, instance: Path, database_url: str, port: int) -> None:
        self.instance = instance
        self.database_url = database_url
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None
        self.output = instance / "server.log"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "MUSTER_INSTANCE_PATH": str(self.instance),
            "MUSTER_DATABASE_URL": self.database_url,
        }

    def start(self) -> LiveServer:
        log = open(self.output, "a")  # noqa: SIM115 - the child process writes to it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--port", str(self.port)],
            cwd=REPO,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.output.read_text())
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not become ready: " + self.output.read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def live_server(db_url: str, tmp_path: Path) -> Iterator[LiveServer]:
    """The real server in its own process, on a free loopback port, on ``db_url``."""
    instance = tmp_path / "live-instance"
    instance.mkdir()
    server = LiveServer(instance, db_url, free_port()).start()
    yield server
    server.stop()
