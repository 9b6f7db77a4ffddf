"""A report made with a second process is the report made in one, byte for byte.

``server.forked`` forks a child to read and derive a part of the people (with a
database connection of its own) and one for the PDF; whatever happens to the child (it fails,
hangs or cannot be started), the parent computes the same thing itself. These tests pin both:
identical folders with one process and with two, and the fallbacks.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from peewee import SqliteDatabase

from server import forked
from server.db import database
from server.models import Event, Operation, Resolution
from server.reconcile.store import load_snapshot
from server.reports import nights, parts, service
from tests.reports.helpers import local, ms, naive_utc
from tests.reports.script import day_one, day_two


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_report_made_with_a_second_process_is_byte_identical_to_one_made_in_one(
    app: Flask,
    evacuation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ev = evacuation
    day_one(app, ev)
    day_two(app, ev)
    started: list[forked.Beside[Any]] = []
    start = forked.start

    def spy(fn: Any, **options: Any) -> forked.Beside[Any]:
        started.append(start(fn, **options))
        return started[-1]

    monkeypatch.setattr(forked, "start", spy)
    made: dict[int, dict[str, bytes]] = {}
    with app.app_context(), database.connection_context():
        op = Operation.get_by_id(ev["id"])
        for n in (1, 2, 1):
            app.config["REPORT_PROCESSES"] = n
            target = tmp_path / f"processes-{n}-{len(made)}"
            target.mkdir()
            started.clear()
            service.write_folder(op, ev["day2"], target)
            # two: a part of the people, then the PDF; one: the PDF, made here
            assert [b.forked for b in started] == ([True, True] if n == 2 else [False])
            files = _files(target)
            assert made.setdefault(n, files) == files
    assert made[1] == made[2]
    assert "gave no result" not in caplog.text  # the children's results were used
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


def _more_of_day_two(
    app: Flask, client: FlaskClient, headers: dict[str, str], ev: dict[str, Any]
) -> tuple[str, str]:
    """Day 2 also brings a headcount, a void, a walk-in and a merge of two records that a split
    in two parts by id would put apart. Returns the merged pair (duplicate, primary)."""
    d1, d2, _ = ev["devices"]
    cp1, cp2, _ = ev["cps"]
    ev["clock"].at(local(ev["day2"], 17))
    ids = [d1.headcount(checkpoint=cp2, group=ev["groups"][0], count=9)]
    ids.append(d1.checkin(ev["bus"][9], checkpoint=cp2, status="crossed"))
    ids.append(d1.void(ids[-1]))
    walked_in = d2.walkin({"full_name": "Walk In", "group": ev["groups"][1]}, checkpoint=cp2)
    assert d1.sync().accepted == 3 and d2.sync().accepted == 1
    with app.app_context(), database.connection_context():
        moved = Event.update(received_at=naive_utc(local(ev["day2"], 18)), skew_ms=0).where(
            Event.id.in_([str(i) for i in ids]) | (Event.person == str(walked_in))
        )
        assert moved.execute() == 4
    with app.app_context(), database.connection_context():
        frame = parts.read_frame(
            ev["id"], nights.cutoff_utc(Operation.get_by_id(ev["id"]), ev["day2"])
        )
    alone = parts.split(frame, 2)
    first = sorted(p for p in ev["bus"] + ev["train"] if alone.of(p) == 0)
    second = sorted(p for p in ev["bus"] + ev["train"] if alone.of(p) == 1)
    duplicate, primary = second[-1], first[0]
    made = client.post(
        f"/api/v1/operations/{ev['id']}/resolutions",
        json={"kind": "merge", "person": duplicate, "into": primary, "reason": "same person"},
        headers=headers,
    )
    assert made.status_code == 201, made.get_json()
    with app.app_context(), database.connection_context():
        at = local(ev["day2"], 18, 30)
        Resolution.update(at=naive_utc(at), at_ms=ms(at)).where(
            Resolution.id == made.get_json()["id"]
        ).execute()
    return duplicate, primary


def test_the_parts_of_a_night_read_each_event_once_and_a_report_made_in_parts_is_the_same(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    evacuation: dict[str, Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ev = evacuation
    day_one(app, ev)
    day_two(app, ev)
    duplicate, primary = _more_of_day_two(app, client, admin_headers, ev)
    with app.app_context(), database.connection_context():
        op = Operation.get_by_id(ev["id"])
        cutoff = nights.cutoff_utc(op, ev["day2"])
        whole = load_snapshot(op.id, received_before=cutoff)
        frame = parts.read_frame(op.id, cutoff)
        assert (frame.people, frame.groups) == (whole.people, whole.groups)
        assert frame.resolutions == whole.resolutions
        assert sorted(e.kind for e in frame.shared) == ["headcount", "void"]
        sqlite = isinstance(database.obj, SqliteDatabase)
        # Through the index of receive times, and (SQLite) by a scan of the rows in between.
        for ratio, scans in ((0, False), (1_000_000, sqlite)):
            monkeypatch.setattr(parts, "SCAN_RATIO", ratio)
            assert (parts._scan_range(op.id, cutoff) is not None) == scans
            for n in (1, 2, 3):
                split = parts.split(frame, n)
                assert split.count == n
                assert split.of(duplicate) == split.of(primary) == split.of(min(duplicate, primary))
                read = [parts.read_part(op.id, cutoff, split, k) for k in range(n)]
                assert all(split.of(str(e.person)) == k for k in range(n) for e in read[k])
                assert all(read)  # every part has events
                got = frame.shared + [e for events in read for e in events]
                # A part leaves what only timelines show unread (their defaults).
                blank = {"method": None, "author": "", "time_flag": None}
                assert all(e._asdict().items() >= blank.items() for e in read[0])
                shared = [e.person is None or e.kind in parts.SHARED_KINDS for e in whole.events]
                expected = [
                    e if kept else e._replace(**blank)
                    for e, kept in zip(whole.events, shared, strict=True)
                ]
                assert sorted(got, key=lambda e: e.id) == sorted(expected, key=lambda e: e.id)
        monkeypatch.undo()
        made = {}
        for n in (1, 2):
            app.config["REPORT_PROCESSES"] = n
            target = tmp_path / f"processes-{n}"
            target.mkdir()
            service.write_folder(op, ev["day2"], target)
            made[n] = _files(target)
    assert made[1] == made[2]
    assert "gave no result" not in caplog.text
    summary = json.loads(made[2]["summary.json"])
    assert summary["totals"]["by_state"]["merged"] == 1
    assert summary["events_counted"] == len(whole.events) == 25 + 4  # day_two + these
    assert summary["discrepancies"]["headcounts"] == 1


def _here_or_fail(parent: int, value: int) -> int:
    if os.getpid() != parent:
        raise RuntimeError("fails in the child only")
    return value


def test_work_forked_gives_the_childs_value_or_computes_it_here_when_the_child_fails() -> None:
    parent = os.getpid()
    done = forked.start(lambda: {"pid": os.getpid(), "values": list(range(100_000))}, workers=2)
    assert done.forked
    value = done.result()
    assert value["pid"] != parent and value["values"] == list(range(100_000))  # 500 KB back

    failed = forked.start(lambda: _here_or_fail(parent, 7), workers=2)
    assert failed.forked and failed.result() == 7

    alone = forked.start(lambda: os.getpid(), workers=1)
    assert not alone.forked and alone.result() == parent


def test_a_child_that_takes_too_long_is_stopped_and_the_work_done_here() -> None:
    parent = os.getpid()

    def slow() -> int:
        if os.getpid() != parent:
            time.sleep(30)
        return 5

    started = time.monotonic()
    late = forked.start(slow, workers=2, timeout=0.5)
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
        monkeypatch.setattr(service, "idle_cores", lambda: 1.4)
        assert service.workers() == 2
        monkeypatch.setattr(service, "idle_cores", lambda: 0.3)  # both cores busy
        assert service.workers() == 1
        monkeypatch.setattr(os, "cpu_count", lambda: 1)
        monkeypatch.setattr(service, "idle_cores", lambda: 1.0)
        assert service.workers() == 1


def test_idle_cores_are_read_from_the_cpu_times_or_else_the_load_average(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cores = os.cpu_count() or 1
    assert 0.0 <= service.idle_cores(window=0.05) <= cores + 1e-9
    real_open = open

    def no_proc_stat(path: object, *args: object, **kwargs: object) -> object:
        if path == "/proc/stat":
            raise FileNotFoundError(path)
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", no_proc_stat)
    monkeypatch.setattr(os, "getloadavg", lambda: (cores - 1.5, 0.0, 0.0))
    assert service.idle_cores(window=0.0) == pytest.approx(1.5)
