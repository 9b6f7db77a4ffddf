"""Deriving behind ingest (``DERIVE = "behind"``): pushes are answered once their events are
durable, and whoever folds the backlog in, in whatever parts and at whatever moment, ends
with the state a rebuild derives from the events alone."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from server.db import database
from server.models import DeriveBacklog, PersonState, Resolution, StaffUser
from server.models.operation import Operation
from server.reconcile import backlog, rebuild, resolve, store
from sync import Device
from tests.sync.helpers import add_roster, enrol_device


def _states(app: Flask, op_id: int) -> dict[str, tuple[Any, ...]]:
    with app.app_context(), database.connection_context():
        return {
            str(s.person): (s.state, s.group, s.last_checkpoint, s.reason, s.event_count, s.version)
            for s in PersonState.select().where(PersonState.operation == op_id)
        }


def _rebuilt(app: Flask, op_id: int) -> dict[str, tuple[Any, ...]]:
    """The states a rebuild derives from the events alone (replacing the stored ones)."""
    with app.app_context(), database.connection_context(), database.atomic():
        rebuild(op_id)
    return _states(app, op_id)


def _resolve(app: Flask, op_id: int, data: dict[str, Any]) -> None:
    """A staff resolution through the service (no request, so no catch-up before it)."""
    with app.app_context(), database.connection_context():
        resolve.apply(Operation.get_by_id(op_id), StaffUser.select().first(), data)


def _backlog(app: Flask, op_id: int) -> int:
    """Events waiting in the operation's backlog (16 bytes of id each)."""
    with app.app_context(), database.connection_context():
        return sum(
            len(bytes(row.events)) // 16
            for row in DeriveBacklog.select().where(DeriveBacklog.operation == op_id)
        )


def test_a_push_is_answered_before_derivation_and_the_next_staff_read_includes_it(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    app.config["DERIVE"] = "behind"
    op_id, group = operation["id"], operation["group"]["id"]
    cp = operation["checkpoints"][0]["id"]
    (pid,) = add_roster(app, operation, 1)
    device = enrol_device(app, client, admin_headers, op_id, tmp_path / "d.db")
    device.checkin(pid, checkpoint=cp, status="boarded")
    device.flag(pid, flag="medical")
    assert device.push(base_delay=0, max_delay=0).accepted == 2
    # Acknowledged and durable, not derived yet: both wait in the backlog.
    assert _backlog(app, op_id) == 2
    assert _states(app, op_id) == {}
    summary = client.get(
        f"/api/v1/operations/{op_id}/groups/{group}/summary", headers=admin_headers
    ).get_json()
    assert summary["by_state"].get("needs_assistance") == 1
    assert _backlog(app, op_id) == 0
    folded = _states(app, op_id)
    assert _rebuilt(app, op_id) == folded


def test_a_resolution_folds_the_backlog_in_before_it_derives(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    app.config["DERIVE"] = "behind"
    op_id = operation["id"]
    cps = [c["id"] for c in operation["checkpoints"]]
    a, b = add_roster(app, operation, 2)
    device = enrol_device(app, client, admin_headers, op_id, tmp_path / "d.db")
    device.checkin(a, checkpoint=cps[0], status="boarded")
    device.checkin(a, checkpoint=cps[1], status="crossed")
    device.checkin(b, checkpoint=cps[0], status="boarded")
    device.push(base_delay=0, max_delay=0)
    assert _backlog(app, op_id) == 3
    # Straight to the service (no request hook): its turn drains the backlog first, so the
    # check-ins are counted once, not folded in again afterwards.
    _resolve(app, op_id, {"kind": "confirm", "person": str(a), "reason": "by phone"})
    assert _backlog(app, op_id) == 0
    folded = _states(app, op_id)
    assert folded[str(a)][4] == 2 and folded[str(b)][4] == 1  # event counts
    assert _rebuilt(app, op_id) == folded


def test_a_rebuild_takes_the_backlog_with_it(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    app.config["DERIVE"] = "behind"
    op_id = operation["id"]
    (pid,) = add_roster(app, operation, 1)
    device = enrol_device(app, client, admin_headers, op_id, tmp_path / "d.db")
    device.checkin(pid, checkpoint=operation["checkpoints"][0]["id"], status="boarded")
    device.push(base_delay=0, max_delay=0)
    assert _rebuilt(app, op_id)[str(pid)][4] == 1
    assert _backlog(app, op_id) == 0


def test_the_deriver_loop_drains_the_backlog_while_the_server_takes_pushes(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    app.config["DERIVE"] = "behind"
    op_id = operation["id"]
    cps = [c["id"] for c in operation["checkpoints"]]
    roster = add_roster(app, operation, 5)
    device = enrol_device(app, client, admin_headers, op_id, tmp_path / "d.db")
    stop = threading.Event()
    drains: list[int] = []

    def loop() -> None:
        with app.app_context():
            drains.append(backlog.run(stop.is_set, poll=0.005))

    deriver = threading.Thread(target=loop)
    deriver.start()
    try:
        for i in range(20):
            device.checkin(roster[i % 5], checkpoint=cps[i % 3], status="boarded")
            device.push(base_delay=0, max_delay=0)
        deadline = time.monotonic() + 10
        while _backlog(app, op_id) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        deriver.join(10)
    assert _backlog(app, op_id) == 0 and drains and drains[0] >= 1
    folded = _states(app, op_id)
    assert sum(s[4] for s in folded.values()) == 20
    assert _rebuilt(app, op_id) == folded


def test_a_deriver_that_finds_the_state_changed_under_it_drains_in_turn_instead(
    backend: str,
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The deriver works the new states out from a snapshot; a resolution that drains the
    same rows before it stores them must not see them counted twice."""
    app.config["DERIVE"] = "behind"
    op_id = operation["id"]
    cp = operation["checkpoints"][0]["id"]
    a, b = add_roster(app, operation, 2)
    device = enrol_device(app, client, admin_headers, op_id, tmp_path / "d.db")
    device.checkin(a, checkpoint=cp, status="boarded")
    device.checkin(b, checkpoint=cp, status="boarded")
    device.push(base_delay=0, max_delay=0)
    worked_out, main = store.fresh_states, threading.current_thread()

    def meanwhile(*args: Any, **kwargs: Any) -> Any:
        out = worked_out(*args, **kwargs)
        if threading.current_thread() is not main:
            return out  # the resolution's own drain

        def resolution() -> None:  # another connection, committing while the snapshot is open
            _resolve(app, op_id, {"kind": "confirm", "person": str(a), "reason": "call"})

        other = threading.Thread(target=resolution)
        other.start()
        others.append(other)
        if backend == "sqlite":
            other.join()  # commits while the deriver's snapshot is open
        # On PostgreSQL the deriver drains in the operation's turn: the resolution waits.
        return out

    monkeypatch.setattr(store, "fresh_states", meanwhile)
    others: list[threading.Thread] = []
    with app.app_context(), database.connection_context():
        drained = backlog.drain_beside(op_id)
    for other in others:
        other.join()
    # On SQLite the resolution had drained the rows first; on PostgreSQL the deriver did.
    assert drained == (0 if backend == "sqlite" else 2)
    folded = _states(app, op_id)
    assert folded[str(a)][4] == 1 and folded[str(b)][4] == 1
    assert _rebuilt(app, op_id) == folded


def test_a_push_that_commits_while_a_drain_reads_is_folded_in_exactly_once(
    backend: str,
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pushes do not wait for drains. A drain derives a person again from their events (a
    void asks for that); an event of theirs that commits after the drain took its rows must
    not be read into that state, or the next drain, which takes it, folds it in twice."""
    app.config["DERIVE"] = "behind"
    op_id = operation["id"]
    cp = operation["checkpoints"][0]["id"]
    (person,) = add_roster(app, operation, 1)
    device = enrol_device(app, client, admin_headers, op_id, tmp_path / "d.db")
    other = enrol_device(app, client, admin_headers, op_id, tmp_path / "o.db")
    first = device.checkin(person, checkpoint=cp, status="boarded")
    device.push(base_delay=0, max_delay=0)
    with app.app_context(), database.connection_context():
        backlog.drain_beside(op_id)
    device.void(first)
    device.push(base_delay=0, max_delay=0)
    other.flag(person, flag="medical")
    taken, main, pushed = backlog._taken, threading.current_thread(), []

    def meanwhile(operation_id: int, limit: int | None = None) -> Any:
        out = taken(operation_id, limit)
        if threading.current_thread() is main and not pushed:
            # Another device's push commits now, on a connection of its own.
            pusher = threading.Thread(target=lambda: other.push(base_delay=0, max_delay=0))
            pusher.start()
            pusher.join(30)
            pushed.append(not pusher.is_alive())
        return out

    monkeypatch.setattr(backlog, "_taken", meanwhile)
    with app.app_context(), database.connection_context():
        backlog.drain_beside(op_id)
        monkeypatch.setattr(backlog, "_taken", taken)
        backlog.drain_beside(op_id)
    assert pushed == [True] and _backlog(app, op_id) == 0
    folded = _states(app, op_id)
    assert folded[str(person)][4] == 2  # the voided check-in and the flag, each once
    assert _rebuilt(app, op_id) == folded


def test_a_drain_deletes_only_the_rows_it_took_though_an_older_row_commits_after_it_read(
    backend: str,
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On PostgreSQL a backlog row gets its id when inserted, not when committed: a push in
    another server process can hold a smaller id than one that committed before it. A drain
    that read the larger one must not delete the smaller when it commits meanwhile."""
    if backend == "sqlite":
        pytest.skip("SQLite has one writer: rows commit in the order of their ids")
    import psycopg2

    app.config["DERIVE"] = "behind"
    op_id = operation["id"]
    cp = operation["checkpoints"][0]["id"]
    slow_one, quick_one = add_roster(app, operation, 2)
    device = enrol_device(app, client, admin_headers, op_id, tmp_path / "d.db")
    late = device.checkin(slow_one, checkpoint=cp, status="boarded")
    device.push(base_delay=0, max_delay=0)
    with app.app_context(), database.connection_context():
        backlog.catch_up(op_id)
    # The other process's push: its row has an id, and it has not committed yet.
    other = psycopg2.connect(app.config["DATABASE_URL"])
    with other.cursor() as cur:
        cur.execute(
            'INSERT INTO "derive_backlog" ("operation_id", "events") VALUES (%s, %s)',
            (op_id, late.bytes),
        )
    device.checkin(quick_one, checkpoint=cp, status="boarded")
    device.push(base_delay=0, max_delay=0)  # a larger id, committed first
    taken = backlog._taken

    def read_then_commit_the_other(operation_id: int, limit: int | None = None) -> Any:
        out = taken(operation_id, limit)
        other.commit()
        return out

    monkeypatch.setattr(backlog, "_taken", read_then_commit_the_other)
    try:
        with app.app_context(), database.connection_context():
            assert backlog.drain_beside(op_id) == 1  # the row it read
    finally:
        other.close()
    assert _backlog(app, op_id) == 1  # the other row waits for the next drain
    monkeypatch.setattr(backlog, "_taken", taken)
    with app.app_context(), database.connection_context():
        assert backlog.catch_up(op_id) == 1
    folded = _states(app, op_id)
    assert folded[str(slow_one)][4] == 1 and folded[str(quick_one)][4] == 1
    assert _rebuilt(app, op_id) == folded


def test_draining_in_any_parts_at_any_moment_equals_a_rebuild(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Check-ins, flags, walk-ins, headcounts, voids (of any of these) and merges, pushed
    by two devices, drained at random moments (all of the backlog, or rounds of its oldest 1-3
    events) in parts of one to three people holding at most 1-8 events."""
    app.config["DERIVE"] = "behind"
    op_id = operation["id"]
    cps = [c["id"] for c in operation["checkpoints"]]
    roster = add_roster(app, operation, 6)
    counter = itertools.count()

    class Machine(RuleBasedStateMachine):
        devices: list[Device]
        captured: list[tuple[int, uuid.UUID]]

        @initialize(part=st.integers(1, 3), events=st.integers(1, 8))
        def enrol(self, part: int, events: int) -> None:
            monkeypatch.setattr(backlog, "PART", part)
            monkeypatch.setattr(backlog, "PART_EVENTS", events)
            self.captured = []
            self.devices = [
                enrol_device(app, client, admin_headers, op_id, tmp_path / f"b-{next(counter)}.db")
                for _ in range(2)
            ]

        @rule(
            which=st.integers(0, 1),
            person=st.integers(0, 5),
            cp=st.integers(0, 2),
            status=st.sampled_from(["boarded", "crossed", "arrived", "absent"]),
        )
        def check_in(self, which: int, person: int, cp: int, status: str) -> None:
            eid = self.devices[which].checkin(roster[person], checkpoint=cps[cp], status=status)
            self.captured.append((which, eid))

        @rule(which=st.integers(0, 1), person=st.integers(0, 5))
        def flag(self, which: int, person: int) -> None:
            self.captured.append((which, self.devices[which].flag(roster[person], flag="medical")))

        @rule(which=st.integers(0, 1), cp=st.integers(0, 2))
        def walk_in(self, which: int, cp: int) -> None:
            self.devices[which].walkin(
                {"full_name": f"Walk-in {next(counter)}"}, checkpoint=cps[cp]
            )

        @rule(which=st.integers(0, 1), cp=st.integers(0, 2), count=st.integers(0, 8))
        def headcount(self, which: int, cp: int, count: int) -> None:
            eid = self.devices[which].headcount(
                checkpoint=cps[cp], group=operation["group"]["id"], count=count
            )
            self.captured.append((which, eid))

        @precondition(lambda self: bool(self.captured))
        @rule(pick=st.integers(0, 1000))
        def void(self, pick: int) -> None:
            which, eid = self.captured[pick % len(self.captured)]
            self.devices[which].void(eid)

        @rule(which=st.integers(0, 1))
        def push(self, which: int) -> None:
            self.devices[which].push(base_delay=0, max_delay=0)

        @rule(beside=st.booleans(), limit=st.one_of(st.none(), st.integers(1, 3)))
        def drain(self, beside: bool, limit: int | None) -> None:
            with app.app_context(), database.connection_context():
                if beside:
                    # As a deriver round does: the oldest rows only, up to ``limit`` events.
                    backlog.drain_beside(op_id, limit)
                else:
                    backlog.catch_up(op_id)  # as a staff request does

        @rule(dup=st.integers(0, 5), into=st.integers(0, 5))
        def merge(self, dup: int, into: int) -> None:
            # Through the service, not a request: its turn drains whatever is behind first.
            merge = {"kind": "merge", "person": str(roster[dup]), "into": str(roster[into])}
            try:
                _resolve(app, op_id, {**merge, "reason": "same passport"})
            except Exception as exc:  # merging into oneself, twice, in a cycle: refused
                assert getattr(exc, "code", None) is not None, exc

        @invariant()
        def nothing_derived_twice(self) -> None:
            # Every stored state counts an event at most once (a fold of an event already in
            # the state would count it twice).
            states = _states(app, op_id)
            assert all(s[4] >= 0 for s in states.values())

        def teardown(self) -> None:
            if not hasattr(self, "devices"):
                return
            for d in self.devices:
                d.push(base_delay=0, max_delay=0)
                d.close()
            with app.app_context(), database.connection_context():
                backlog.catch_up(op_id)
            folded = _states(app, op_id)
            rebuilt = _rebuilt(app, op_id)
            assert {pid: rebuilt.get(pid) for pid in folded} == folded
            assert {rebuilt[pid][0] for pid in rebuilt.keys() - folded.keys()} <= {"not_seen"}

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )


def test_a_staff_read_waits_for_a_running_deriver_and_drains_itself_when_it_does_not_come(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app.config["DERIVE"] = "behind"
    op_id = operation["id"]
    cp = operation["checkpoints"][0]["id"]
    a, b = add_roster(app, operation, 2)
    device = enrol_device(app, client, admin_headers, op_id, tmp_path / "d.db")
    device.checkin(a, checkpoint=cp, status="boarded")
    device.push(base_delay=0, max_delay=0)
    # A deriver that is "alive" but never drains: the read gives up waiting and drains.
    monkeypatch.setattr(backlog, "deriver_alive", lambda: True)
    monkeypatch.setattr(backlog, "WAIT", 0.05)
    with app.app_context(), database.connection_context():
        assert backlog.catch_up(op_id) == 1
    assert _backlog(app, op_id) == 0
    # A deriver that drains: the read waits for it and drains nothing itself.
    device.checkin(b, checkpoint=cp, status="boarded")
    device.push(base_delay=0, max_delay=0)
    monkeypatch.setattr(backlog, "WAIT", 10.0)
    stop = threading.Event()

    def loop() -> None:
        with app.app_context():
            time.sleep(0.1)  # the read is already waiting
            backlog.run(stop.is_set, poll=0.005)

    deriver = threading.Thread(target=loop)
    deriver.start()
    try:
        with app.app_context(), database.connection_context():
            assert backlog.catch_up(op_id) == 0
    finally:
        stop.set()
        deriver.join(10)
    assert _backlog(app, op_id) == 0
    assert {s[4] for s in _states(app, op_id).values()} == {1}


def test_a_staff_read_leaves_a_big_backlog_to_the_deriver_and_answers_catching_up(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    admin_password: str,
    operation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app.config["DERIVE"] = "behind"
    op_id, group = operation["id"], operation["group"]["id"]
    cp = operation["checkpoints"][0]["id"]
    people = add_roster(app, operation, 3)
    device = enrol_device(app, client, admin_headers, op_id, tmp_path / "d.db")
    for pid in people:
        device.checkin(pid, checkpoint=cp, status="boarded")
    assert device.push(base_delay=0, max_delay=0).accepted == 3
    # A deriver that is alive but slow: after its wait, the read finds more left than it
    # may make up itself.
    monkeypatch.setattr(backlog, "deriver_alive", lambda: True)
    monkeypatch.setattr(backlog, "WAIT", 0.05)
    monkeypatch.setattr(backlog, "CATCH_UP_LIMIT", 2)
    path = f"/api/v1/operations/{op_id}/groups/{group}/summary"
    resp = client.get(path, headers=admin_headers)
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "5"
    error = resp.get_json()["error"]
    assert error["code"] == "catching_up"
    assert error["details"] == {"events_waiting": 3}
    assert _backlog(app, op_id) == 3  # the read drained nothing and wrote nothing
    assert _states(app, op_id) == {}
    metrics = client.get("/metrics", headers=admin_headers).get_data(as_text=True)
    assert f'muster_derive_backlog_events{{operation="{op_id}"}} 3' in metrics.splitlines()
    # Requests that read no derived state go on: staff log in (API and console), devices
    # are listed.
    assert client.post(
        "/api/v1/tokens", json={"username": "admin", "password": admin_password}
    ).status_code in (200, 201)
    assert (
        client.get(f"/api/v1/operations/{op_id}/devices", headers=admin_headers).status_code == 200
    )
    login_page = client.get("/console/login")
    assert login_page.status_code == 200
    token = login_page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    client.post(
        "/console/login",
        data={"username": "admin", "password": admin_password, "csrf_token": token},
    )
    # A console page says so, in words, and reloads itself.
    page = client.get(f"/console/operations/{op_id}")
    assert page.status_code == 503
    assert page.headers["Retry-After"] == "5"
    html = page.get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="5">' in html
    assert "catching up with 3 records" in html
    # A resolution sent meanwhile changes nothing and says so; no reload sends it again.
    form = {
        "kind": "confirm",
        "person": people[0],
        "reason": "Phoned: on the coach",
        "next": f"/console/operations/{op_id}",
        "csrf_token": token,
    }
    sent = client.post(f"/console/operations/{op_id}/resolutions", data=form)
    assert sent.status_code == 503
    html = sent.get_data(as_text=True)
    assert "nothing was changed" in html
    assert "http-equiv" not in html
    with app.app_context(), database.connection_context():
        assert Resolution.select().count() == 0
    # Once the deriver has made it up, the same read answers, with every event.
    with app.app_context(), database.connection_context():
        assert backlog.drain_beside(op_id) == 3
    summary = client.get(path, headers=admin_headers).get_json()
    assert summary["by_state"]["checked_in"] == 3
    assert _rebuilt(app, op_id) == _states(app, op_id)


def test_with_no_deriver_a_staff_read_drains_a_big_backlog_in_rounds_of_their_own(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app.config["DERIVE"] = "behind"
    op_id, group = operation["id"], operation["group"]["id"]
    cp = operation["checkpoints"][0]["id"]
    people = add_roster(app, operation, 5)
    device = enrol_device(app, client, admin_headers, op_id, tmp_path / "d.db")
    for pid in people:  # five pushes: five backlog rows
        device.checkin(pid, checkpoint=cp, status="boarded")
        assert device.push(base_delay=0, max_delay=0).accepted == 1
    monkeypatch.setattr(backlog, "CATCH_UP_LIMIT", 0)  # not asked: there is no deriver
    monkeypatch.setattr(backlog, "ROUND", 2)
    rounds: list[int] = []
    drain_in_turn = backlog.drain_in_turn

    def counted(operation_id: int, limit: int | None = None) -> int:
        rounds.append(drain_in_turn(operation_id, limit))
        return rounds[-1]

    monkeypatch.setattr(backlog, "drain_in_turn", counted)
    summary = client.get(
        f"/api/v1/operations/{op_id}/groups/{group}/summary", headers=admin_headers
    ).get_json()
    assert summary["by_state"]["checked_in"] == 5
    assert rounds == [2, 2, 1]  # one write transaction each: pushes may commit between them
    assert _backlog(app, op_id) == 0
    assert _rebuilt(app, op_id) == _states(app, op_id)


def test_every_endpoint_said_to_read_no_derived_state_exists(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints >= backlog._NO_STATE


def test_an_unknown_derive_setting_is_refused_when_the_app_is_made(tmp_path: Path) -> None:
    from server import create_app

    with pytest.raises(ValueError, match="DERIVE"):
        create_app(
            {
                "TESTING": True,
                "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
                "INSTANCE_PATH": str(tmp_path / "instance"),
                "DERIVE": "later",
            }
        )
