"""A report made with a second process is the report made in one, byte for byte.

``server.reports.beside`` forks a child for the previous night's derivation and for the PDF;
whatever happens to the child (it fails, hangs or cannot be started), the parent computes the
same thing itself. These tests pin both: identical folders with one process and with two, and
the fallbacks.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from server.db import database
from server.models import Operation
from server.reports import beside, service
from tests.reports.script import day_one, day_two


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_report_made_with_a_second_process_is_byte_identical_to_one_made_in_one(
    app: Flask, evacuation: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ev = evacuation
    day_one(app, ev)
    day_two(app, ev)
    started: list[beside.Beside[Any]] = []
    start = beside.start

    def spy(fn: Any, *, workers: int, timeout: float = beside.TIMEOUT) -> beside.Beside[Any]:
        started.append(start(fn, workers=workers, timeout=timeout))
        return started[-1]

    monkeypatch.setattr(beside, "start", spy)
    made: dict[int, dict[str, bytes]] = {}
    with app.app_context(), database.connection_context():
        op = Operation.get_by_id(ev["id"])
        for n in (1, 2, 1):
            app.config["REPORT_PROCESSES"] = n
            target = tmp_path / f"processes-{n}-{len(made)}"
            target.mkdir()
            started.clear()
            service.write_folder(op, ev["day2"], target)
            assert [b.forked for b in started] == [n == 2] * 2  # previous night, PDF
            files = _files(target)
            assert made.setdefault(n, files) == files
    assert made[1] == made[2]
    summary = json.loads(made[2]["summary.json"])
    assert summary["previous_cutoff_utc"] and summary["late"]["count"] > 0  # both paths used
    assert sorted(made[2]) == [
        "groups.csv",
        "late.csv",
        "people-RESTRICTED.csv",
        "report.html",
        "report.pdf",
        "summary.json",
    ]


def _here_or_fail(parent: int, value: int) -> int:
    if os.getpid() != parent:
        raise RuntimeError("fails in the child only")
    return value


def test_work_beside_gives_the_childs_value_or_computes_it_here_when_the_child_fails() -> None:
    parent = os.getpid()
    done = beside.start(lambda: {"pid": os.getpid(), "values": list(range(100_000))}, workers=2)
    assert done.forked
    value = done.result()
    assert value["pid"] != parent and value["values"] == list(range(100_000))  # 500 KB back

    failed = beside.start(lambda: _here_or_fail(parent, 7), workers=2)
    assert failed.forked and failed.result() == 7

    alone = beside.start(lambda: os.getpid(), workers=1)
    assert not alone.forked and alone.result() == parent


def test_a_child_that_takes_too_long_is_stopped_and_the_work_done_here() -> None:
    parent = os.getpid()

    def slow() -> int:
        if os.getpid() != parent:
            time.sleep(30)
        return 5

    started = time.monotonic()
    late = beside.start(slow, workers=2, timeout=0.5)
    assert late.result() == 5
    assert time.monotonic() - started < 10


def test_a_second_process_is_used_when_configured_or_by_default_when_a_core_is_idle(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    with app.app_context():
        app.config["REPORT_PROCESSES"] = 1
        assert service.workers() == 1
        app.config["REPORT_PROCESSES"] = 2
        assert service.workers() == 2
        del app.config["REPORT_PROCESSES"]
        monkeypatch.setattr(os, "cpu_count", lambda: 2)
        monkeypatch.setattr(os, "getloadavg", lambda: (0.4, 0.5, 0.5))
        assert service.workers() == 2
        monkeypatch.setattr(os, "getloadavg", lambda: (1.6, 0.5, 0.5))  # both cores busy
        assert service.workers() == 1
        monkeypatch.setattr(os, "cpu_count", lambda: 1)
        monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
        assert service.workers() == 1
