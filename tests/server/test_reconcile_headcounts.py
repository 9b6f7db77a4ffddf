"""The kept headcount queue equals the whole computation after every change.

``headcounts.headcounts`` keeps a ``HeadcountIndex`` per operation and takes in only the events
that arrived since it last read; anything it cannot show safe (voids, merges and moves of people
it holds, events committed out of receive order) makes it build the index again. These tests
hold it to ``headcount_mismatches`` (the pure index) and to ``hc._headcounts`` (the whole
computation over the database) over random event sequences.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from server.db import bulk_insert, database, write_transaction
from server.models import Device, Event, Group, Operation, Person, StaffUser
from server.reconcile import headcounts as hc
from server.reconcile import queues, resolve, store
from server.reconcile.derive import EventRec, headcount_mismatches
from server.reconcile.headcounts import HeadcountIndex, _Row

MINUTE = 60 * 1000
WINDOW = 30 * MINUTE
PEOPLE = [f"p{i}" for i in range(6)]
GROUP_OF = {"p0": 1, "p1": 1, "p2": 1, "p3": 2, "p4": 2}  # p5: no group
ROOTS = {"p2": "p1"}  # p2 was merged into p1: they count once


def as_row(e: EventRec) -> _Row:
    return _Row(
        e.id, e.device, e.seq, e.kind, e.person, e.checkpoint, e.group, e.status, e.count,
        e.corrected_ms, e.ref,
    )  # fmt: skip


@st.composite
def arrivals(draw: st.DrawFn) -> tuple[list[EventRec], list[list[EventRec]]]:
    """Events stored before the index is built, then batches arriving later: check-ins,
    walk-ins, headcounts, flags and voids, at any time (late ones included)."""
    seqs = {"dA": 0, "dB": 0}
    made: list[EventRec] = []

    def new(kind: str, **extra: Any) -> EventRec:
        device = draw(st.sampled_from(sorted(seqs)))
        seqs[device] += 1
        e = EventRec(
            f"e{len(made):03d}",
            device,
            seqs[device],
            kind,
            draw(st.integers(0, 180)) * MINUTE,
            skew_ms=draw(st.sampled_from([0, 90_000])),
            **extra,
        )
        made.append(e)
        return e

    def observation() -> EventRec:
        kind = draw(st.sampled_from(["checkin", "checkin", "walkin", "headcount", "flag", "void"]))
        if kind == "void":  # of a recent event (a void too), or of one still to come
            return new(kind, ref=draw(st.sampled_from([*(e.id for e in made[-4:]), "e030"])))
        if kind == "headcount":
            return new(
                kind,
                checkpoint=draw(st.sampled_from([1, 2])),
                group=draw(st.sampled_from([1, 2])),
                count=draw(st.integers(0, 4)),
            )
        return new(
            kind,
            person=draw(st.sampled_from(PEOPLE)),
            checkpoint=draw(st.sampled_from([1, 2])),
            status=draw(st.sampled_from(["boarded", "arrived", "absent", None])),
        )

    first = [observation() for _ in range(draw(st.integers(0, 10)))]
    # Voids among the stored events: of earlier events, and of ids still to come (a void can
    # arrive before the event it retracts); the index is built knowing every one of them.
    for _ in range(draw(st.integers(0, 3))):
        ref = draw(st.sampled_from([*(e.id for e in first), "e020", "e021", "e025"]))
        first.append(new("void", ref=ref))
    later = [
        [observation() for _ in range(draw(st.integers(1, 6)))]
        for _ in range(draw(st.integers(1, 6)))
    ]
    return first, later


def named(e: EventRec) -> bool:
    return (
        e.kind in ("checkin", "walkin")
        and e.person is not None
        and (e.kind == "walkin" or e.status in ("present", "boarded", "crossed", "arrived"))
    )


def fetcher(stored: list[EventRec]) -> Callable[[int | None, int, int], Iterator[tuple[Any, int]]]:
    """What ``headcounts._fetcher`` reads from the database: (person, time) of named check-ins."""

    def fetch(checkpoint: int | None, lo: int, hi: int) -> Iterator[tuple[Any, int]]:
        for e in stored:
            if named(e) and e.checkpoint == checkpoint and lo <= e.corrected_ms <= hi:
                yield e.person, e.corrected_ms

    return fetch


def lookup(stored: list[EventRec]) -> Callable[[list[Any]], list[_Row]]:
    """What ``headcounts._events`` reads: stored events by id."""
    return lambda ids: [as_row(e) for e in stored if e.id in ids]


def built(stored: list[EventRec], window_ms: int = WINDOW) -> HeadcountIndex:
    """An index of ``stored`` as ``hc._build`` makes one."""
    voids = [e for e in stored if e.kind == "void"]
    index = HeadcountIndex(GROUP_OF, ROOTS, {(e.ref, e.device) for e in voids}, window_ms)
    for e in stored:
        if named(e) and any(v.ref == e.id and v.device == e.device for v in voids):
            index.retracted[(e.checkpoint, e.person, e.corrected_ms)] += 1
    index.update((as_row(e) for e in stored if e.kind == "headcount"), fetcher(stored))
    return index


@settings(max_examples=400, deadline=None)
@given(arrivals())
def test_an_index_fed_batch_by_batch_equals_the_mismatches_of_every_event(
    story: tuple[list[EventRec], list[list[EventRec]]],
) -> None:
    first, later = story
    stored = list(first)
    index = built(stored)
    assert index.items() == headcount_mismatches(stored, GROUP_OF, ROOTS, WINDOW)
    for batch in later:
        stored += batch
        index.update([as_row(e) for e in batch], fetcher(stored), lookup(stored))
        assert index.items() == headcount_mismatches(stored, GROUP_OF, ROOTS, WINDOW)
    event(f"{len(index.info)} headcounts")


def test_a_headcount_names_each_person_once_inside_its_window_inclusive() -> None:
    stored = [
        EventRec("h1", "dA", 1, "headcount", 60 * MINUTE, checkpoint=1, group=1, count=3),
        EventRec("c1", "dA", 2, "checkin", 30 * MINUTE, person="p0", checkpoint=1, status="boarded"),
        EventRec("c2", "dA", 3, "checkin", 90 * MINUTE, person="p1", checkpoint=1, status="boarded"),
        EventRec("c3", "dB", 1, "checkin", 91 * MINUTE, person="p0", checkpoint=1, status="boarded"),
    ]  # fmt: skip
    index = built(stored)
    # Both window edges count; p0 twice is one person; c3 is a minute outside.
    assert [(h["counted"], h["named"]) for h in index.items()] == [(3, 2)]
    later = EventRec("c4", "dB", 2, "walkin", 45 * MINUTE, person="p2", checkpoint=1)
    stored.append(later)
    index.update([as_row(later)], fetcher(stored))
    assert index.items() == headcount_mismatches(stored, GROUP_OF, ROOTS, WINDOW)
    assert [(h["counted"], h["named"]) for h in index.items()] == [(3, 2)]  # p2 is p1


def test_a_check_in_voided_before_it_arrives_is_never_named_by_a_later_headcount() -> None:
    void = EventRec("v1", "dA", 1, "void", 10 * MINUTE, ref="c9")
    first = EventRec("h1", "dA", 2, "headcount", 60 * MINUTE, checkpoint=1, group=1, count=0)
    stored = [void, first]
    index = built(stored)
    # The voided check-in arrives outside every window, then a headcount's window takes it in.
    late = EventRec("c9", "dA", 3, "checkin", 200 * MINUTE, person="p0", checkpoint=1, status="boarded")  # fmt: skip
    stored.append(late)
    index.update([as_row(late)], fetcher(stored))
    count = EventRec("h2", "dB", 1, "headcount", 210 * MINUTE, checkpoint=1, group=1, count=0)
    stored.append(count)
    index.update([as_row(count)], fetcher(stored))
    assert index.items() == headcount_mismatches(stored, GROUP_OF, ROOTS, WINDOW) == []


# Over the database: the kept queue against the whole computation ------------------------------


class World:
    """An operation with two groups, six people (one with no group) and two devices."""

    def __init__(self) -> None:
        self.op = Operation.create(name=f"op {uuid.uuid4()}", starts_at=dt.datetime(2026, 1, 1))
        self.groups = [
            Group.create(operation=self.op, name=f"Bus {i}", expected_size=4).id for i in (1, 2)
        ]
        self.people = [uuid.uuid4() for _ in range(6)]
        Person.insert_many(
            [
                {
                    "id": pid,
                    "operation": self.op.id,
                    "group": self.groups[i % 2] if i < 5 else None,
                    "full_name": f"Person {i}",
                }
                for i, pid in enumerate(self.people)
            ]
        ).execute()
        self.devices = [uuid.uuid4() for _ in range(2)]
        for d in self.devices:
            Device.create(id=d, operation=self.op, signing_key=b"s" * 32, encryption_key=b"e" * 32)
        self.seqs = [0, 0]
        self.events: list[dict[str, Any]] = []
        self.received = dt.datetime(2026, 1, 2, 8, 0)
        self.staff = StaffUser.select().first()

    def body(self, device: int, kind: str, minute: int, **fields: Any) -> dict[str, Any]:
        self.seqs[device] += 1
        body = {"kind": kind, "at": 1_767_000_000_000 + minute * MINUTE, **fields}
        text = json.dumps(body, default=str, sort_keys=True)
        return {
            "id": uuid.uuid4(),
            "operation": self.op.id,
            "device": self.devices[device],
            "seq": self.seqs[device],
            "session": "0" * 32,
            "kind": kind,
            "person": fields.get("person"),
            "checkpoint": fields.get("checkpoint"),
            "group": fields.get("group"),
            "status": fields.get("status"),
            "method": "scan" if kind == "checkin" else None,
            "author": "olena",
            "count": fields.get("count"),
            "ref": fields.get("ref"),
            "captured_ms": body["at"],
            "skew_ms": (0, 90_000)[device],
            "time_flag": None,
            "content_hash": hashlib.sha256(text.encode()).hexdigest(),
            "body": text,
            "envelope": b"sealed",
        }

    def drawn(
        self, data: st.DataObject, kind: str, device: int, minute: int, cp: int
    ) -> dict[str, Any]:
        """A walk-in (a new person, a drawn group) or a check-in/flag of a drawn person."""
        if kind == "walkin":
            person = uuid.uuid4()
            self.people.append(person)
            return self.body(
                device, kind, minute, checkpoint=cp, person=person,
                group=data.draw(st.sampled_from([*self.groups, None])),
            )  # fmt: skip
        return self.body(
            device, kind, minute, checkpoint=cp,
            person=data.draw(st.sampled_from(self.people)),
            status=data.draw(st.sampled_from(["boarded", "absent"])),
        )  # fmt: skip

    def store(self, rows: list[dict[str, Any]], received: dt.datetime) -> None:
        """Store rows as ingest does: in one transaction with derived state and the mark."""
        for row in rows:
            row["received_at"] = received
        with write_transaction():
            walkins = [r for r in rows if r["kind"] == "walkin"]
            if walkins:
                Person.insert_many(
                    [
                        {
                            "id": r["person"],
                            "operation": self.op.id,
                            "group": r["group"],
                            "full_name": "Walk-in",
                            "source": "walk-in",
                        }
                        for r in walkins
                    ]
                ).execute()
            bulk_insert(Event, rows)
            store.on_events(self.op.id, rows)
        self.events += rows

    def resolve(self, **data: Any) -> bool:
        try:
            resolve.apply(self.op, self.staff, {"reason": "test", **data})
        except Exception as exc:  # refused (a merge into itself, a cycle, ...): nothing changed
            event(f"refused {data['kind']}: {type(exc).__name__}")
            return False
        return True


def test_the_kept_headcount_queue_equals_the_whole_computation_after_every_change(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    whole_build = hc._build
    monkeypatch.setattr(hc, "_build", lambda op: built.append(op) or whole_build(op))
    paths: dict[str, int] = {}

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        with app.app_context(), database.connection_context():
            w = World()
            for _ in range(data.draw(st.integers(1, 7), label="steps")):
                step = data.draw(
                    st.sampled_from(
                        ["events", "events", "events", "late", "void", "merge", "move", "dismiss"]
                    ),
                    label="step",
                )
                before = len(built)
                if step in ("events", "late"):
                    rows = []
                    for _ in range(data.draw(st.integers(1, 6), label="batch")):
                        kind = data.draw(
                            st.sampled_from(["checkin", "checkin", "headcount", "walkin", "flag"])
                        )
                        device = data.draw(st.integers(0, 1))
                        minute = data.draw(st.integers(0, 120))
                        cp = data.draw(st.sampled_from([1, 2]))
                        if kind == "headcount":
                            rows.append(
                                w.body(
                                    device, kind, minute, checkpoint=cp,
                                    group=data.draw(st.sampled_from(w.groups)),
                                    count=data.draw(st.integers(0, 3)),
                                )
                            )  # fmt: skip
                        else:
                            rows.append(w.drawn(data, kind, device, minute, cp))
                    # "late": committed after a later receive time was read (out of order).
                    w.received += dt.timedelta(seconds=-120 if step == "late" else 5)
                    w.store(rows, w.received)
                elif step == "void" and w.events:
                    target = data.draw(st.sampled_from(w.events))
                    device = data.draw(st.integers(0, 1))
                    w.received += dt.timedelta(seconds=5)
                    w.store([w.body(device, "void", 200, ref=target["id"])], w.received)
                elif step == "merge":
                    dup, into = (data.draw(st.sampled_from(w.people)) for _ in range(2))
                    w.resolve(kind="merge", person=dup, into=into)
                elif step == "move":
                    person = data.draw(st.sampled_from(w.people))
                    w.resolve(
                        kind="move", person=person, group=data.draw(st.sampled_from(w.groups))
                    )
                elif step == "dismiss":
                    items = hc._headcounts(w.op.id)
                    if items:
                        w.resolve(kind="resolve", key=data.draw(st.sampled_from(items))["key"])
                assert queues.headcounts(w.op.id) == hc._headcounts(w.op.id)
                path = f"{step}: {'built' if len(built) > before else 'kept'}"
                paths[path] = paths.get(path, 0) + 1
                event(path)
                # A second read with nothing changed answers from what is kept.
                before = len(built)
                assert queues.headcounts(w.op.id) == hc._headcounts(w.op.id)
                assert len(built) == before

    run()
    print(sorted(paths.items()))
    # Both ways were taken: new events and voids taken in, late commits built again.
    assert paths.get("events: kept", 0) > 0
    assert paths.get("void: kept", 0) > 0
    assert paths.get("late: built", 0) > 0


def test_new_check_ins_headcounts_and_voids_are_taken_in_and_a_late_commit_builds_again(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[int] = []
    whole_build = hc._build
    monkeypatch.setattr(hc, "_build", lambda op: built.append(op) or whole_build(op))
    with app.app_context(), database.connection_context():
        w = World()
        g1 = w.groups[0]
        p0, p2 = w.people[0], w.people[2]  # both in the first group
        w.store([w.body(0, "headcount", 60, checkpoint=1, group=g1, count=2)], w.received)
        assert [(h["counted"], h["named"]) for h in queues.headcounts(w.op.id)] == [(2, 0)]
        assert len(built) == 1
        w.received += dt.timedelta(seconds=5)
        first = w.body(0, "checkin", 50, checkpoint=1, person=p0, status="boarded")
        w.store([first, w.body(1, "checkin", 80, checkpoint=1, person=p2, status="boarded")], w.received)  # fmt: skip
        assert queues.headcounts(w.op.id) == []  # both named: the count is right
        assert len(built) == 1  # taken in, not built again
        w.received += dt.timedelta(seconds=5)
        w.store([w.body(0, "void", 81, ref=first["id"])], w.received)
        assert [(h["counted"], h["named"]) for h in queues.headcounts(w.op.id)] == [(2, 1)]
        assert len(built) == 1
        # Stored after a later receive time was read: the count shows something was missed.
        late = w.body(1, "checkin", 55, checkpoint=1, person=p0, status="boarded")
        w.store([late], w.received - dt.timedelta(minutes=2))
        assert queues.headcounts(w.op.id) == []
        assert len(built) == 2
        assert queues.headcounts(w.op.id) == hc._headcounts(w.op.id)


def test_a_check_in_voided_twice_hides_only_itself_not_its_twin(app: Flask) -> None:
    with app.app_context(), database.connection_context():
        w = World()
        p0 = w.people[0]
        voided = w.body(0, "checkin", 50, checkpoint=1, person=p0, status="boarded")
        twin = w.body(0, "checkin", 50, checkpoint=1, person=p0, status="boarded")
        w.store([voided, twin], w.received)
        w.received += dt.timedelta(seconds=5)
        w.store([w.body(0, "void", 51, ref=voided["id"]) for _ in range(2)], w.received)
        w.received += dt.timedelta(seconds=5)
        w.store([w.body(0, "headcount", 60, checkpoint=1, group=w.groups[0], count=2)], w.received)
        assert [(h["counted"], h["named"]) for h in queues.headcounts(w.op.id)] == [(2, 1)]
        assert queues.headcounts(w.op.id) == hc._headcounts(w.op.id)
