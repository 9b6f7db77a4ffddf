"""Make, store, list and prune nightly reports; the one entry point for CLI, API and scheduler.

A report is written to a temporary folder next to its final place, sealed (manifest and
signature), and then compared with any stored folder for the same night: identical means
nothing to do (runs are idempotent); different is refused unless ``replace`` is given, since a
stored report may already have been sent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import filecmp
import gc
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import current_app

from server import forked
from server.db import database
from server.errors import Conflict
from server.models import Operation, ReportRun, utcnow
from server.reports import content, htmlpage, integrity, nights, pdf, tables

#: The files of a report folder, in the order they are written.
FILES = (
    tables.SUMMARY,
    tables.GROUPS,
    tables.LATE,
    tables.PEOPLE,
    "report.pdf",
    "report.html",
)


@dataclass
class RunResult:
    """What a nightly run did: ``created``, ``unchanged`` or ``replaced``."""

    operation: int
    date: str
    status: str
    folder: str
    manifest_sha256: str

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def reports_dir() -> Path:
    """Where reports live: ``REPORTS_DIR``, by default ``instance/reports``."""
    configured = current_app.config.get("REPORTS_DIR")
    return Path(configured or os.path.join(current_app.instance_path, "reports"))


def folder_of(operation_id: int, day: dt.date) -> Path:
    return reports_dir() / str(operation_id) / day.isoformat()


def _font_cache() -> Path:
    return reports_dir() / ".font-cache"


def _stored_totals(operation_id: int) -> content.HistoryLookup:
    """Earlier nights' totals from their stored summary.json (None when absent or unreadable)."""

    def lookup(day: dt.date) -> dict[str, Any] | None:
        path = folder_of(operation_id, day) / tables.SUMMARY
        try:
            return dict(json.loads(path.read_text(encoding="utf-8"))["totals"])
        except (OSError, ValueError, KeyError):
            return None

    return lookup


@contextlib.contextmanager
def _no_cycle_collector() -> Iterator[None]:
    """Pause Python's cycle collector while a report is made.

    A report holds a million event records and makes millions of small objects, none of them
    in reference cycles; each full collection would walk all of them again (a third of the
    time of a large report). Reference counting still frees everything; the collector runs
    again afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def workers() -> int:
    """Processes a report may use: ``REPORT_PROCESSES``; by default 2 when a core is idle.

    With 2, a forked child reads and derives half of the people and renders the PDF while
    this process does the rest (``server.forked``); the files are the same byte for byte with 1. A
    second process only pays when it has a core of its own: on a busy machine it competes
    with the work already there (ingest), so by default it is used only when at least one
    core is idle now (:func:`idle_cores`).
    """
    configured = current_app.config.get("REPORT_PROCESSES")
    if configured is not None:
        return max(1, int(configured))
    cores = os.cpu_count() or 1
    return 2 if cores >= 2 and idle_cores() >= 1 else 1


def idle_cores(window: float = 0.2) -> float:
    """Cores idle over the last ``window`` seconds (``/proc/stat``), or, where there is no
    such file, cores left by the 1-minute load average (which lags: a job that ended a
    minute ago still counts in it). 0 when neither can be read."""
    cores = os.cpu_count() or 1

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields), fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(window)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        try:
            return max(0.0, cores - os.getloadavg()[0])
        except (AttributeError, OSError):
            return 0.0
    if total1 <= total0:
        return 0.0
    return cores * (idle1 - idle0) / (total1 - total0)


def write_folder(op: Operation, day: dt.date, target: Path) -> None:
    """Compute the night's report and write every file of it into ``target`` (not sealed)."""
    n = workers()
    with _no_cycle_collector():
        data = content.build(
            op,
            day,
            silent_hours=float(current_app.config.get("REPORT_SILENT_HOURS", 6)),
            history=_stored_totals(op.id),
            workers=n,
        )
        fonts_at = _font_cache()
        printed = forked.start(
            lambda: pdf.render(data, op, target / "report.pdf", fonts_at), workers=n
        )
        tables.write_summary(data, target / tables.SUMMARY)
        tables.write_groups(data, target / tables.GROUPS)
        tables.write_late(data, target / tables.LATE)
        tables.write_people(data, target / tables.PEOPLE)
        htmlpage.render(data, op, target / "report.html")
        printed.result()


def _same(a: Path, b: Path) -> list[str]:
    """Names of files that differ between two report folders (empty when identical)."""
    names = set(integrity.content_files(a)) | set(integrity.content_files(b))
    names |= {integrity.MANIFEST, integrity.SIGNATURE}
    return sorted(
        n
        for n in names
        if not ((a / n).is_file() and (b / n).is_file() and filecmp.cmp(a / n, b / n, False))
    )


def generate(
    op: Operation, day: dt.date, *, now: dt.datetime | None = None, replace: bool = False
) -> RunResult:
    """Make (or confirm) the report of night ``day`` for ``op``."""
    from server.setup import get_keyring

    now = now or utcnow()
    nights.check_night(op, day, now)
    final = folder_of(op.id, day)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = final.parent / f".{day.isoformat()}.tmp-{os.getpid()}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    try:
        write_folder(op, day, work)
        ring = get_keyring()
        assert ring.report_signing is not None
        digest = integrity.seal(work, ring.report_signing)
        status = "created"
        if final.exists():
            differ = _same(work, final)
            if not differ:
                shutil.rmtree(work)
                _record(op, day, final, digest)
                return RunResult(op.id, day.isoformat(), "unchanged", str(final), digest)
            if not replace:
                raise Conflict(
                    f"A different report for {day.isoformat()} is already stored; "
                    "pass --replace to overwrite it.",
                    details={"differing_files": differ, "folder": str(final)},
                )
            old = final.parent / f".{day.isoformat()}.old-{os.getpid()}"
            os.replace(final, old)
            shutil.rmtree(old)
            status = "replaced"
        os.replace(work, final)
    finally:
        if work.exists():
            shutil.rmtree(work)
    _record(op, day, final, digest)
    return RunResult(op.id, day.isoformat(), status, str(final), digest)


def _record(op: Operation, day: dt.date, folder: Path, digest: str) -> None:
    with database.atomic():
        ReportRun.delete().where((ReportRun.operation == op.id) & (ReportRun.date == day)).execute()
        ReportRun.create(
            operation=op.id,
            date=day,
            cutoff=nights.cutoff_utc(op, day),
            folder=str(folder),
            manifest_sha256=digest,
        )


def stored_nights(operation_id: int) -> list[dt.date]:
    """Nights with a report folder on disk, oldest first."""
    base = reports_dir() / str(operation_id)
    out = []
    for p in base.glob("????-??-??") if base.is_dir() else []:
        try:
            out.append(dt.date.fromisoformat(p.name))
        except ValueError:
            continue
    return sorted(out)


def _retention_start(op: Operation, now: dt.datetime) -> dt.date | None:
    days = int(current_app.config.get("REPORT_RETENTION_DAYS") or 0)
    if days <= 0:
        return None
    today = now.replace(tzinfo=dt.UTC).astimezone(nights.zone(op)).date()
    return today - dt.timedelta(days=days)


def catch_up(now: dt.datetime | None = None) -> list[RunResult]:
    """Make every due report not yet stored, for each active operation.

    Starts after the newest stored night (or at the operation's first night), so nights missed
    while the server was down are made at the next start, and pruned ones are not remade.
    """
    now = now or utcnow()
    results = []
    for op in Operation.select().where(Operation.status == "active").order_by(Operation.id):
        stored = stored_nights(op.id)
        since = stored[-1] + dt.timedelta(days=1) if stored else None
        keep_from = _retention_start(op, now)
        if keep_from is not None and (since is None or since < keep_from):
            since = max(keep_from, since or keep_from)
        for day in nights.due_nights(op, now, since):
            results.append(generate(op, day, now=now))
    return results


def prune(now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Delete report folders older than ``REPORT_RETENTION_DAYS`` (0 keeps them forever)."""
    now = now or utcnow()
    removed = []
    for op in Operation.select().order_by(Operation.id):
        keep_from = _retention_start(op, now)
        if keep_from is None:
            continue
        for day in stored_nights(op.id):
            if day < keep_from:
                shutil.rmtree(folder_of(op.id, day))
                ReportRun.delete().where(
                    (ReportRun.operation == op.id) & (ReportRun.date == day)
                ).execute()
                removed.append({"operation": op.id, "date": day.isoformat()})
    return removed


def files_of(folder: Path) -> list[dict[str, Any]]:
    """The files of a stored report with size and whether they are restricted."""
    names = integrity.content_files(folder) + [integrity.MANIFEST, integrity.SIGNATURE]
    return [
        {
            "name": n,
            "size": (folder / n).stat().st_size,
            "restricted": n in tables.RESTRICTED,
        }
        for n in names
        if (folder / n).is_file()
    ]


def public_key() -> str:
    """The report signing public key, base64 of its 32 raw bytes."""
    from server.setup import get_keyring

    ring = get_keyring()
    assert ring.report_signing is not None
    return integrity.public_key_b64(ring.report_signing.public_key())
