"""Folding new events into a stored state gives exactly what deriving from the whole history
gives: the invariant ingest relies on to avoid re-reading every earlier event of a person."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import event, given, settings
from hypothesis import strategies as st

from server import reconcile
from server.db import database
from server.models import Person, PersonState
from server.reconcile import rebuild, store
from server.reconcile.derive import (
    MAX_OPEN_CONFLICTS,
    EventRec,
    GroupRec,
    PersonRec,
    Prior,
    can_fold,
    derive_person,
    fold_window_start,
)
from server.reconcile.derive import PersonState as DerivedState
from sync import Device
from tests.sync.helpers import enrol_device

GROUPS = {10: GroupRec(10, "Bus 1", 4, (1, 2, 3))}
PERSON = PersonRec("p0", group=10, name_keys=("li wei",))
MINUTE = 60 * 1000


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[EventRec], list[EventRec]]:
    """Earlier events of one person (any kind, voids included), then a batch of new ones."""
    devices = ("dA", "dB")
    seqs = {d: 0 for d in devices}

    def event(kind: str, at: int, **extra: object) -> EventRec:
        device = draw(st.sampled_from(devices))
        seqs[device] += 1
        n = sum(seqs.values())
        return EventRec(
            f"e{n:03d}",
            device,
            seqs[device],
            kind,
            at,
            skew_ms=draw(st.sampled_from([0, 90_000])),
            **extra,  # type: ignore[arg-type]
        )

    def observation(at: int) -> EventRec:
        return event(
            draw(st.sampled_from(["checkin", "checkin", "walkin"])),
            at,
            person="p0",
            checkpoint=draw(st.sampled_from([1, 2, 3, 4])),  # 4 is off the route
            status=draw(st.sampled_from(["boarded", "crossed", "arrived", "absent", "left"])),
        )

    old: list[EventRec] = []
    for _ in range(draw(st.integers(0, 12))):
        at = draw(st.integers(0, 240)) * MINUTE
        kind = draw(st.sampled_from(["obs", "obs", "obs", "flag", "void", "other"]))
        if kind == "obs":
            old.append(observation(at))
        elif kind == "flag":
            old.append(event("flag", at, person="p0", flag=draw(st.sampled_from(["medical", "x"]))))
        elif kind == "void" and old:
            old.append(event("void", at, person="p0", ref=draw(st.sampled_from(old)).id))
        else:
            old.append(event("checkin", at, person="p1", checkpoint=1, status="boarded"))
    start = draw(st.integers(0, 300)) * MINUTE
    new = []
    for _ in range(draw(st.integers(1, 4))):
        at = start + draw(st.integers(0, 40)) * MINUTE
        if draw(st.booleans()):
            new.append(observation(at))
        else:
            new.append(event("flag", at, person="p0", flag="medical"))
    return old, new


@settings(max_examples=400, deadline=None)
@given(histories())
def test_folding_new_events_into_a_stored_state_equals_deriving_from_everything(
    history: tuple[list[EventRec], list[EventRec]],
) -> None:
    old, new = history
    stored = derive_person(PERSON, old, [], GROUPS, timeline=False)
    full = derive_person(PERSON, old + new, [], GROUPS, timeline=False)
    if not can_fold(stored.last_seen_ms, stored.furthest, new):
        event("not foldable")
        return
    event("folded")
    folded = _fold(stored, old, new)
    assert folded.comparable() == full.comparable()
    assert folded.version == full.version


def _fold(stored: DerivedState, old: list[EventRec], new: list[EventRec]) -> DerivedState:
    """Fold ``new`` into ``stored`` reading back only what ``store._fold`` reads back: the
    earlier observations from the fold window on, the furthest one, and voids aimed at those."""
    start = fold_window_start(stored.last_seen_ms, new)
    window = [
        e
        for e in old
        if e.kind in ("checkin", "walkin")
        and e.person == "p0"
        and (e.id == stored.furthest or (start is not None and e.corrected_ms >= start))
    ]
    ids = {e.id for e in window}
    window += [e for e in old if e.kind == "void" and e.ref in ids]
    prior = Prior(
        fresh=frozenset(e.id for e in new),
        flags=tuple(stored.flags),
        conflicts=tuple(stored.conflicts),
        event_count=stored.event_count - sum(1 for e in window if e.person == "p0"),
    )
    return derive_person(PERSON, window + new, [], GROUPS, timeline=False, prior=prior)


def test_a_person_seen_back_and_forth_keeps_the_first_conflicts_and_folds_the_same() -> None:
    # Two devices a minute apart at alternating checkpoints: every close pair is a conflict.
    events = [
        EventRec(
            f"e{i:03d}",
            ("dA", "dB")[i % 2],
            i + 1,
            "checkin",
            i * MINUTE,
            person="p0",
            checkpoint=(1, 3, 2)[i % 3],
            status="boarded",
        )
        for i in range(40)
    ]
    old, new = events[:30], events[30:]
    stored = derive_person(PERSON, old, [], GROUPS, timeline=False)
    full = derive_person(PERSON, events, [], GROUPS, timeline=False)
    assert len(full.conflicts) == MAX_OPEN_CONFLICTS
    assert [c["key"] for c in full.conflicts] == sorted(c["key"] for c in full.conflicts)
    assert can_fold(stored.last_seen_ms, stored.furthest, new)
    assert _fold(stored, old, new).comparable() == full.comparable()


def test_a_void_or_an_out_of_order_observation_is_never_folded() -> None:
    late = EventRec("n1", "dA", 9, "checkin", 10 * MINUTE, person="p0", checkpoint=2)
    void = EventRec("n2", "dA", 10, "void", 20 * MINUTE, person="p0", ref="e1")
    assert can_fold(5 * MINUTE, "e1", [late])
    assert not can_fold(10 * MINUTE, "e1", [late])
    assert not can_fold(5 * MINUTE, "e1", [late, void])
    assert not can_fold(5 * MINUTE, None, [late])  # observed, but the furthest is unknown
    assert can_fold(None, None, [late])


def _stored(app: Flask, op_id: int) -> dict[str, tuple[Any, ...]]:
    with app.app_context(), database.connection_context():
        return {
            str(s.person): (
                s.state,
                s.last_checkpoint,
                s.reason,
                s.conflicts,
                s.flags,
                s.event_count,
                s.furthest,
                s.version,
            )
            for s in PersonState.select().where(PersonState.operation == op_id)
        }


def test_ingest_folds_pushed_events_into_the_same_states_a_rebuild_derives(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    app.config["DERIVE"] = "inline"  # each push folds its event before answering
    op_id = operation["id"]
    cp1, cp2, cp3 = (c["id"] for c in operation["checkpoints"][:3])
    roster = [uuid.uuid4() for _ in range(3)]
    with app.app_context(), database.connection_context():
        Person.insert_many(
            [
                {"id": pid, "operation": op_id, "group": operation["group"]["id"], "full_name": n}
                for pid, n in zip(roster, ("Li Wei", "Olena K", "Ana M"), strict=True)
            ]
        ).execute()
    a = enrol_device(app, client, admin_headers, op_id, tmp_path / "a.db")
    b = enrol_device(app, client, admin_headers, op_id, tmp_path / "b.db", author="taras")
    p0, p1, p2 = roster

    def step(device: Device, call: Callable[[], object]) -> object:
        out = call()
        device.push(base_delay=0, max_delay=0)  # one event per push: each one is folded in
        return out

    step(a, lambda: a.checkin(p0, checkpoint=cp1, status="boarded"))
    step(a, lambda: a.checkin(p0, checkpoint=cp2, status="crossed"))
    step(b, lambda: b.checkin(p0, checkpoint=cp1, status="boarded"))  # reversal, two places
    step(a, lambda: a.flag(p0, flag="medical"))
    wrong = step(a, lambda: a.checkin(p1, checkpoint=cp3, status="arrived"))
    step(a, lambda: a.void(wrong))  # type: ignore[arg-type]
    step(a, lambda: a.checkin(p1, checkpoint=cp1, status="boarded"))
    step(b, lambda: b.checkin(p1, checkpoint=cp1, status="absent"))  # contradiction
    step(a, lambda: a.checkin(p2, checkpoint=cp2, status="crossed"))
    step(b, lambda: b.checkin(p2, checkpoint=cp3, status="arrived"))
    folded = _stored(app, op_id)
    assert folded[str(p0)][3] != "[]"  # conflicts were found and kept along the way
    with app.app_context(), database.connection_context(), database.atomic():
        rebuild(op_id)
    assert _stored(app, op_id) == folded
    for d in (a, b):
        d.close()


def test_the_records_ingest_folds_equal_the_stored_events_read_back(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ingest folds the records it built while preparing the push, without reading them back:
    for every kind of event they must be exactly what ``event_rec`` makes of the stored row."""
    app.config["DERIVE"] = "inline"  # records are built for (and only used by) inline folds
    op_id = operation["id"]
    cp1, cp2 = (c["id"] for c in operation["checkpoints"][:2])
    pid = uuid.uuid4()
    with app.app_context(), database.connection_context():
        Person.insert(
            id=pid, operation=op_id, group=operation["group"]["id"], full_name="Li Wei"
        ).execute()
    handed: dict[str, EventRec] = {}
    real = store.on_events

    def spy(op: int, rows: list[dict[str, Any]], recs: Any = None) -> int:
        handed.update(recs or {})
        return real(op, rows, recs)

    monkeypatch.setattr(store, "on_events", spy)
    monkeypatch.setattr(reconcile, "on_events", spy)
    d = enrol_device(app, client, admin_headers, op_id, tmp_path / "d.db")
    d.pull()
    first = d.checkin(pid, checkpoint=cp1, status="boarded", method="scan")
    d.flag(pid, flag="medical", checkpoint=cp2, note="insulin")
    d.void(first)
    d.headcount(checkpoint=cp2, group=operation["group"]["id"], count=41)
    d.walkin({"full_name": "Ana M"}, checkpoint=cp2)
    d.push(base_delay=0, max_delay=0)
    with app.app_context(), database.connection_context():
        stored = {
            e.id: e
            for e in (store.event_rec(r, received=False) for r in store._fetch_events("1 = 1", []))
        }
    assert len(stored) == 5
    assert {e.kind for e in stored.values()} == {"checkin", "flag", "void", "headcount", "walkin"}
    assert handed == stored
    d.close()
