"""The deriver folds each round of the backlog in a forked child (``backlog.run(fork=True)``,
``server.forked``), so the memory a round needs leaves with the child. The child's writes
commit like any others, and a child that dies mid-write leaves nothing held."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server import forked
from server.db import _SQLITE_WRITER, database
from server.models import DeriveBacklog, PersonState
from server.reconcile import backlog, rebuild
from tests.conftest import REPO
from tests.sync.helpers import add_roster, enrol_device


def _states(app: Flask, op_id: int) -> dict[str, tuple[Any, ...]]:
    with app.app_context(), database.connection_context():
        return {
            str(s.person): (s.state, s.last_checkpoint, s.event_count, s.version)
            for s in PersonState.select().where(PersonState.operation == op_id)
        }


def _waiting(app: Flask, op_id: int) -> int:
    with app.app_context(), database.connection_context():
        return DeriveBacklog.select().where(DeriveBacklog.operation == op_id).count()


def _pushed(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
    people: int = 6,
) -> int:
    """Check-ins of a few people in several pushes, left in the backlog; the operation."""
    app.config["DERIVE"] = "behind"
    op_id = operation["id"]
    cps = [c["id"] for c in operation["checkpoints"]]
    roster = add_roster(app, operation, people)
    device = enrol_device(app, client, admin_headers, op_id, tmp_path / "d.db")
    for i in range(3 * people):
        device.checkin(roster[i % people], checkpoint=cps[i % len(cps)], status="boarded")
        if i % 4 == 3:
            device.push(base_delay=0, max_delay=0)
    device.push(base_delay=0, max_delay=0)
    device.close()
    return op_id


def _all_folded_in_once(app: Flask, op_id: int) -> None:
    """The 18 pushed check-ins are each counted once, and the states equal a rebuild's."""
    folded = _states(app, op_id)
    assert sum(s[2] for s in folded.values()) == 18
    with app.app_context(), database.connection_context(), database.atomic():
        rebuild(op_id)
    assert _states(app, op_id) == folded


def _derive_env(app: Flask, **settings: str) -> dict[str, str]:
    """The environment of a ``muster-server derive`` process on the test's database."""
    return {
        **os.environ,
        "MUSTER_INSTANCE_PATH": app.instance_path,
        "MUSTER_DATABASE_URL": app.config["DATABASE_URL"],
        **{f"MUSTER_{k}": v for k, v in settings.items()},
    }


def test_the_deriver_folds_rounds_in_forked_children_and_ends_where_a_rebuild_does(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    op_id = _pushed(app, client, admin_headers, operation, tmp_path)
    assert _waiting(app, op_id) > 1
    started: list[forked.Beside[Any]] = []
    start = forked.start

    def spy(fn: Any, **options: Any) -> forked.Beside[Any]:
        started.append(start(fn, **options))
        return started[-1]

    monkeypatch.setattr(forked, "start", spy)
    monkeypatch.setattr(backlog, "ROUND", 5)  # several rounds, each of the oldest rows
    monkeypatch.setattr(backlog, "FORK_FROM", 1)  # each in a child, however small
    with app.app_context():
        drains = backlog.run(lambda: _waiting(app, op_id) == 0, poll=0.005, fork=True)
    assert drains >= 2 and len(started) == drains
    assert all(b.forked for b in started)
    assert "gave no result" not in caplog.text  # every round ran in its child
    _all_folded_in_once(app, op_id)


def test_a_round_smaller_than_the_fork_threshold_is_folded_in_process(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    op_id = _pushed(app, client, admin_headers, operation, tmp_path)
    started: list[Any] = []
    monkeypatch.setattr(forked, "start", lambda *a, **k: started.append(a))
    with app.app_context():
        backlog.run(lambda: _waiting(app, op_id) == 0, poll=0.005, fork=True)
    assert started == []  # 18 events: no child (forking costs more than such a round)
    assert sum(s[2] for s in _states(app, op_id).values()) == 18


def test_the_derive_command_drains_a_database_in_its_own_process(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    op_id = _pushed(app, client, admin_headers, operation, tmp_path)
    env = _derive_env(app)
    proc = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "derive"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while _waiting(app, op_id) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert _waiting(app, op_id) == 0, err.decode(errors="replace")
    assert proc.returncode == 0
    _all_folded_in_once(app, op_id)


def test_a_deriver_past_its_memory_limit_starts_afresh_as_the_same_process(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    """With no room at all (``DERIVER_MEMORY_MB = 0``) it starts afresh after its round: every
    event is still folded in once, by one process id that serve keeps watching."""
    op_id = _pushed(app, client, admin_headers, operation, tmp_path)
    env = _derive_env(app, DERIVER_MEMORY_MB="0", LOG_LEVEL="INFO")
    log = tmp_path / "deriver.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "derive"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90
            while _waiting(app, op_id) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert proc.poll() is None  # the same process, after every exec
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert _waiting(app, op_id) == 0, text
    assert "starting afresh" in text
    _all_folded_in_once(app, op_id)


def test_a_child_killed_while_it_holds_the_sqlite_writer_turn_leaves_the_turn_free(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "muster.db")
    with _SQLITE_WRITER(path):
        pass  # this process has the -writer file open now: a child inherits the descriptor
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: take the turn, say so, and wait to be killed
        try:
            with _SQLITE_WRITER(path):
                os.write(ready_w, b"1")
                time.sleep(60)
        finally:
            os._exit(0)
    try:
        assert os.read(ready_r, 1) == b"1"
        other = os.open(path + "-writer", os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):  # held by the child
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pid = 0
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again at once
            fcntl.flock(other, fcntl.LOCK_UN)
        finally:
            os.close(other)
    finally:
        if pid:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(ready_w)
