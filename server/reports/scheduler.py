"""The embedded nightly scheduler: ``muster-server serve`` makes due reports without cron.

A daemon thread wakes every ``REPORT_CHECK_SECONDS`` (default 60), makes every report whose
cut-off has passed and is not stored yet (so nights missed while the server was down are made
at the next start), and prunes folders older than ``REPORT_RETENTION_DAYS``. A file lock keeps
two processes on one instance from writing the same night at once.
"""

from __future__ import annotations

import fcntl
import logging
import threading

from flask import Flask

from server.db import database

log = logging.getLogger("muster.reports")


def run_once(app: Flask) -> int:
    """Make due reports and prune old ones for every active operation; return how many made."""
    from server.reports import service

    with app.app_context():
        base = service.reports_dir()
        base.mkdir(parents=True, exist_ok=True)
        with open(base / ".lock", "w") as lock, database.connection_context():
            fcntl.flock(lock, fcntl.LOCK_EX)
            made = [r for r in service.catch_up() if r.status != "unchanged"]
            pruned = service.prune()
        for r in made:
            log.info("report made", extra={"operation": r.operation, "date": r.date})
        if pruned:
            log.info("reports pruned", extra={"count": len(pruned)})
        return len(made)


def start(app: Flask) -> threading.Thread | None:
    """Start the scheduler thread (unless ``REPORT_SCHEDULER`` is false); return it."""
    if not app.config.get("REPORT_SCHEDULER", True):
        return None
    interval = float(app.config.get("REPORT_CHECK_SECONDS", 60))
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                run_once(app)
            except Exception:  # a bad night must not stop later ones or the server
                log.exception("nightly report run failed")
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="muster-reports", daemon=True)
    thread.start()
    app.extensions["muster.reports.stop"] = stop
    return thread
