"""``init``, ``serve`` and ``status``."""

from __future__ import annotations

import atexit
import ctypes
import gc
import logging
import os
import subprocess
import sys
import threading
import time

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from server import migrations
from server.cli.output import emit, json_option
from server.db import backend_name, database
from server.errors import CatchingUp

log = logging.getLogger("muster.serve")


def _report_bootstrap(result: dict, as_json: bool) -> None:
    if as_json:
        emit(result, True)
        return
    click.echo(f"Database: {backend_name(database)}, schema version {result['schema_version']}.")
    if result["migrations_applied"]:
        click.echo(f"Applied migrations: {', '.join(result['migrations_applied'])}.")
    if result["keys_created"]:
        click.echo(f"Created server keys in {current_app.config['KEYS_DIR']} (owner-only files).")
    admin = result["first_admin"]
    if admin:
        click.echo("")
        click.echo("  First administrator created. This password is shown once only:")
        click.echo(f"    username: {admin['username']}")
        click.echo(f"    password: {admin['password']}")
        click.echo("")


#: glibc malloc arenas the server's threads share (glibc's default is 8 per core). Every
#: waitress thread otherwise grows an arena of its own to its largest request and keeps it
#: fragmented: measured over 100,000 ingested events, peak RSS 187 -> 161 MB with 2, and a
#: slower creep (11.9 -> 8.7 MB per 100,000 events).
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h


def _limit_malloc_arenas() -> None:
    """Cap glibc's malloc arenas before the server's threads start (unless the operator set
    ``MALLOC_ARENA_MAX`` already; elsewhere than glibc, nothing to do)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
    except (OSError, AttributeError):
        log.debug("malloc arenas left as they are (not glibc)")


def warm_queues(app: Flask) -> threading.Thread | None:
    """Build the kept queue indexes of every planned or active operation in a daemon thread
    (unless ``QUEUE_WARMUP`` is false), so the first staff request after a start answers in
    milliseconds instead of seconds at 1,000,000 events. Requests that come first wait for
    the index being built (one lock per operation), not build it twice."""
    if not app.config.get("QUEUE_WARMUP", True):
        return None

    def run() -> None:
        from server.models import Operation
        from server.reconcile import backlog, queues

        with app.app_context():
            try:
                while True:  # the queues are built from caught-up states
                    try:
                        with database.connection_context():
                            backlog.catch_up()
                        break
                    except CatchingUp:  # a big backlog at start: the deriver makes it up
                        time.sleep(1.0)
                with database.connection_context():
                    ids = [
                        o.id
                        for o in Operation.select(Operation.id).where(Operation.status != "closed")
                    ]
                for op_id in ids:
                    with database.connection_context():
                        queues.warm(op_id)
            except Exception as exc:  # a failed warm-up costs the first request its time, no more
                log.warning("queue warm-up failed: %s", type(exc).__name__)

    thread = threading.Thread(target=run, name="muster-warm-queues", daemon=True)
    thread.start()
    return thread


class Deriver:
    """The deriver process ``serve`` keeps beside itself with ``DERIVE = "behind"``:
    ``muster-server derive``, started again (after a pause) if it ever stops, and stopped
    with the server (it also stops by itself when its parent is gone)."""

    RESTART_PAUSE = 1.0

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="muster-deriver", daemon=True)

    def start(self) -> Deriver:
        self._thread.start()
        atexit.register(self.stop)
        return self

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "server.cli", "derive", "--parent", str(os.getpid())],
            stdin=subprocess.DEVNULL,
        )

    def _watch(self) -> None:
        while not self._stopping.is_set():
            self.proc = self._spawn()
            code = self.proc.wait()
            if self._stopping.is_set():
                break
            log.warning("deriver stopped (exit %s); starting it again", code)
            self._stopping.wait(self.RESTART_PAUSE)

    def alive(self) -> bool:
        """Whether the deriver process is running now."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        self._stopping.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_deriver(app: Flask) -> Deriver | None:
    """Start the deriver process when pushes leave derivation behind (``DERIVE``)."""
    if app.config.get("DERIVE") != "behind" or not app.config.get("DERIVER_PROCESS", True):
        return None
    from server.reconcile import backlog

    deriver = Deriver().start()
    backlog.deriver_alive = deriver.alive
    return deriver


@click.command("derive")
@click.option(
    "--parent",
    type=int,
    default=None,
    help="Stop when this process (the server that started it) is gone.",
)
@with_appcontext
def derive_command(parent: int | None) -> None:
    """Fold pushed events into derived state as they arrive, until stopped.

    `serve` starts one itself (DERIVE = "behind"); run it by hand only to catch up a
    database whose server is stopped, or beside servers started with DERIVER_PROCESS = false.

    Example: muster-server derive
    """
    from server.reconcile import backlog
    from sync.normalize import name_key

    _limit_malloc_arenas()
    name_key("王")  # the pinyin tables (about a second), before the first drain needs them
    # Big rounds are folded in a forked child (backlog.run): objects the collector would walk
    # there are copied page by page into it, so what exists now (the app, the pinyin
    # tables: most of the process) is kept out of collections for good.
    gc.freeze()
    limit = float(current_app.config.get("DERIVER_MEMORY_MB", 64))
    start = _rss_mb()
    log.info("deriver started")
    afresh = backlog.serve_forever(parent=parent, swollen=lambda: _rss_mb() > start + limit)
    if afresh:
        # Memory a process has used stays with it (Python keeps its arenas at their
        # high-water mark): past the limit, the deriver becomes a new one, same process id.
        log.info("deriver: starting afresh to hand back memory", extra={"limit_mb": limit})
        logging.shutdown()
        args = [sys.executable, "-m", "server.cli", "derive"]
        os.execv(sys.executable, args + (["--parent", str(parent)] if parent else []))
    log.info("deriver stopped")


def _rss_mb() -> float:
    """This process's resident memory in MB (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


@click.command("init")
@json_option
@with_appcontext
def init_command(as_json: bool) -> None:
    """Create or upgrade the database, the server keys and the first administrator.

    Safe to run again: it only does what is missing.

    Example: muster-server init
    """
    from server.setup import bootstrap

    _report_bootstrap(bootstrap(current_app._get_current_object()), as_json)  # type: ignore[attr-defined]


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--threads", default=8, show_default=True, type=int, help="Worker threads.")
@click.option(
    "--connections",
    default=1000,
    show_default=True,
    type=int,
    help="Open connections served at once: every device of a reconnect burst, and staff.",
)
@with_appcontext
def serve_command(host: str, port: int, threads: int, connections: int) -> None:
    """Set up what is missing, then serve the API (waitress, production-grade, no TLS).

    Put a TLS-terminating proxy in front for anything beyond localhost (docs/operations.md).

    Example: muster-server serve --host 0.0.0.0 --port 8000
    """
    import waitress

    from server.reports import scheduler

    _limit_malloc_arenas()
    from server.setup import bootstrap
    from sync.normalize import name_key

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    _report_bootstrap(bootstrap(app), False)
    # Load the pinyin tables now (about a second), not inside the first push that names a
    # Chinese walk-in or person.
    name_key("王")
    scheduler.start(app)
    start_deriver(app)
    warm_queues(app)
    click.echo(f"Serving Muster on http://{host}:{port}  (health: /healthz)")
    waitress.serve(
        app,
        host=host,
        port=port,
        threads=threads,
        # Waitress stops accepting at its limit (default 100) until an idle connection times
        # out (120 s): a burst of 100 devices plus staff would stall for minutes.
        connection_limit=connections,
        ident="muster",
        max_request_body_size=app.config["MAX_CONTENT_LENGTH"] * 2,
        _quiet=True,
    )


@click.command("status")
@json_option
@with_appcontext
def status_command(as_json: bool) -> None:
    """Show the database backend, the schema version and each migration.

    Example: muster-server status --json
    """
    with database.connection_context():
        data = {
            "database": backend_name(database),
            "schema_version": migrations.schema_version(database.obj),
            "latest_version": migrations.latest_version(),
            "migrations": migrations.status(database.obj),
        }
    emit(
        data,
        as_json,
        lambda d: "\n".join(
            [
                f"database: {d['database']}",
                f"schema: {d['schema_version']} of {d['latest_version']}",
            ]
            + [f"  {m['name']}: {m['applied'] or 'pending'}" for m in d["migrations"]]
        ),
    )
