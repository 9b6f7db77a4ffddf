"""The shortcuts that make a large report fast give exactly what the plain way gives.

A night's report derives a million events twice (this night, the previous one); these tests
pin the faster paths to the obvious ones: the whole-operation sort, headcounts of an already
sorted list, a person's events not sorted again when already in order, the previous night
derived again only for people whose inputs changed, events read straight from the database,
and the printed list that counts (not names) the people of groups nobody has seen yet.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from server.db import database
from server.models import Event
from server.reconcile.derive import (
    STATES,
    EventRec,
    GroupRec,
    OperationState,
    PersonRec,
    PersonState,
    ResolutionRec,
    Snapshot,
    derive_operation,
    derive_person,
    headcount_mismatches,
    summarise,
    unique_sorted,
)
from server.reconcile.store import _fetch_events, event_rec, load_snapshot, to_ms
from server.reports import content
from server.reports.content import PersonInfo, ReportData
from server.reports.sections import build_sections

_M = 60 * 1000
GROUPS = {10: GroupRec(10, "Bus 1", 4, (1, 2, 3)), 11: GroupRec(11, "Bus 2", 3, (1, 3))}
PEOPLE = [f"p{i}" for i in range(6)]


def _plain_order(events: list[EventRec]) -> list[EventRec]:
    first: dict[str, EventRec] = {}
    for e in events:
        first.setdefault(e.id, e)
    return sorted(first.values(), key=lambda e: e.order)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 1300),  # id: some repeat, with other values (the first one wins)
            st.integers(0, 40),  # capture minute: long runs of equal times
            st.integers(-2, 2),  # clock skew
            st.integers(0, 3),  # device
            st.integers(0, 5),  # sequence number
        ),
        min_size=1000,
        max_size=1600,
    )
)
def test_sorting_a_whole_operation_by_time_first_gives_the_one_deterministic_order(
    rows: list[tuple[int, int, int, int, int]],
) -> None:
    events = [
        EventRec(f"e{n}", f"d{device}", seq, "checkin", minute, skew_ms=skew)
        for n, minute, skew, device, seq in rows
    ]
    assert unique_sorted(events) == _plain_order(events)


_event = st.builds(
    lambda i, kind, person, cp, status, minute, device, received: EventRec(
        f"x{i}",
        device,
        i,
        kind,
        minute * _M,
        person=person if kind in ("checkin", "walkin", "flag") else None,
        checkpoint=cp,
        group=10 if kind == "headcount" else None,
        status=status if kind in ("checkin", "walkin") else None,
        count=2 if kind == "headcount" else None,
        flag="medical" if kind == "flag" else None,
        received_ms=received * _M,
    ),
    st.integers(0, 10_000),
    st.sampled_from(["checkin", "checkin", "walkin", "flag", "headcount"]),
    st.sampled_from(PEOPLE),
    st.sampled_from([1, 2, 3]),
    st.sampled_from(["boarded", "absent", "present", "arrived", "left"]),
    st.integers(0, 300),
    st.sampled_from(["dA", "dB"]),
    st.integers(0, 400),
)
_resolution = st.builds(
    lambda i, kind, person, other, group, at: ResolutionRec(
        f"r{i}",
        kind,
        at * _M,
        person=person,
        payload={"into": other}
        if kind == "merge"
        else {"group": group}
        if kind in ("move", "accept_walkin")
        else {"resolution": f"r{other[1:]}"}
        if kind == "revert"
        else {},
    ),
    st.integers(0, 20),
    st.sampled_from(["confirm", "declare_missing", "merge", "move", "accept_walkin", "revert"]),
    st.sampled_from(PEOPLE),
    st.sampled_from(PEOPLE),
    st.sampled_from([10, 11]),
    st.integers(0, 400),
)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_event, max_size=40),
    st.lists(st.tuples(st.integers(0, 45), st.sampled_from(["dA", "dB"]), st.integers(0, 400))),
    st.lists(_resolution, max_size=6),
    st.lists(st.integers(0, 400), min_size=len(PEOPLE), max_size=len(PEOPLE)),
    st.integers(0, 400),
)
def test_the_previous_night_derived_only_for_changed_people_equals_a_full_derivation(
    events: list[EventRec],
    voids: list[tuple[int, str, int]],
    resolutions: list[ResolutionRec],
    entries: list[int],
    prev_minute: int,
) -> None:
    events = events + [
        EventRec(f"v{i}", device, 50_000 + i, "void", i * _M, ref=f"x{target}", received_ms=r * _M)
        for i, (target, device, r) in enumerate(voids)
    ]
    people = {
        p: PersonInfo(p, "", p, minute * _M) for p, minute in zip(PEOPLE, entries, strict=True)
    }
    recs = {p: PersonRec(p, group=10 if i % 2 else 11) for i, p in enumerate(PEOPLE)}
    for ordered in (False, True):  # as given (ids may repeat), and as a report sorts them
        given = unique_sorted(events) if ordered else events
        snap = Snapshot(1, recs, GROUPS, given, resolutions)
        before = content._sub_snapshot(snap, people, prev_minute * _M)
        state = derive_operation(snap, timeline=False, ordered=ordered)
        full = derive_operation(before, timeline=False, queues=False)
        fast = content._previous(snap, before, state, ordered=ordered)
        assert list(fast.people) == list(full.people)
        assert fast.people == full.people
        assert fast.groups == full.groups
    # ``before`` not picked from ``snap``'s very records: more people derived again, same result
    copies = dataclasses.replace(before, events=[EventRec(*e) for e in before.events])
    again = content._previous(snap, copies, state, ordered=True)
    assert again.people == full.people and list(again.people) == list(full.people)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_event, max_size=40),
    st.lists(st.tuples(st.integers(0, 45), st.sampled_from(["dA", "dB"]))),
    st.lists(_resolution, max_size=6),
    st.booleans(),
)
def test_a_person_derived_from_events_already_in_order_is_the_person_derived_from_them_as_given(
    events: list[EventRec],
    voids: list[tuple[int, str]],
    resolutions: list[ResolutionRec],
    timeline: bool,
) -> None:
    events = events + [
        EventRec(f"v{i}", device, 50_000 + i, "void", i * _M, ref=f"x{target}")
        for i, (target, device) in enumerate(voids)
    ]
    ordered = unique_sorted(events)
    for i, pid in enumerate(PEOPLE[:3]):
        person = PersonRec(pid, group=10 if i % 2 else 11)
        members = {PEOPLE[3]} if i == 0 else set()
        plain = derive_person(person, events, resolutions, GROUPS, None, members, timeline)
        fast = derive_person(
            person, ordered, resolutions, GROUPS, None, members, timeline, presorted=True
        )
        assert fast == plain


@settings(max_examples=200, deadline=None)
@given(st.lists(_event, max_size=60), st.lists(st.integers(0, 60), max_size=4))
def test_headcounts_of_an_already_ordered_list_are_those_of_the_list_as_given(
    events: list[EventRec], voided: list[int]
) -> None:
    events = events + [
        EventRec(f"v{i}", "dA", 90_000 + i, "void", 0, ref=f"x{t}") for i, t in enumerate(voided)
    ]
    group_of = {"p0": 10, "p1": 10, "p2": 11, "p3": None, "p4": 10}
    roots = {"p1": "p0"}
    ordered = unique_sorted(events)
    assert headcount_mismatches(ordered, group_of, roots, ordered=True) == headcount_mismatches(
        events, group_of, roots
    )


def test_events_are_read_for_a_snapshot_exactly_as_event_rec_reads_them(
    app: Flask, evacuation: dict[str, Any]
) -> None:
    from tests.reports.script import day_one, day_two

    day_one(app, evacuation)
    day_two(app, evacuation)
    with app.app_context(), database.connection_context():
        # Receive times with and without a fraction of a second, as the database keeps them.
        for i, event in enumerate(Event.select().order_by(Event.id)):
            received = event.received_at.replace(microsecond=(i * 123_457) % 1_000_000 * (i % 2))
            Event.update(received_at=received).where(Event.id == event.id).execute()
        op = evacuation["id"]
        cutoff = dt.datetime(2100, 1, 1)
        param = database.obj.param
        rows = _fetch_events(f'"operation_id" = {param}', [op])
        plain = sorted((event_rec(r) for r in rows), key=lambda e: e.id)
        snap = load_snapshot(op, received_before=cutoff)
        assert sorted(snap.events, key=lambda e: e.id) == plain
        assert {e.received_ms for e in plain} == {
            to_ms(e.received_at) for e in Event.select(Event.received_at)
        }
        assert len(plain) == Event.select().count() and any(e.flag == "medical" for e in plain)


def _state(pid: str, group: int | None, state: str, seen: int | None = None) -> PersonState:
    return PersonState(pid, group, state, last_seen_ms=seen, last_checkpoint=1 if seen else None)


def test_the_printed_list_counts_people_of_groups_nobody_has_seen_yet_and_names_the_rest() -> None:
    states = [
        _state("a", 1, "checked_in", 5),
        _state("b", 1, "not_seen"),  # group 1 is on the move: listed
        _state("c", 2, "not_seen"),  # nobody of group 2 seen yet: counted
        _state("d", 2, "not_seen"),
        _state("e", 3, "absent", 7),  # reported absent: a sighting, listed
        _state("f", None, "not_seen"),  # no group: listed
    ]
    people = {s.person: s for s in states}
    info = {s.person: PersonInfo(s.person, "", f"Name {s.person}", 0) for s in states}
    data = ReportData(
        summary={
            "totals": {
                "expected": 6,
                "accounted": 1,
                "unaccounted": 5,
                "by_state": dict.fromkeys(STATES, 0),
            },
            "previous_cutoff_utc": "",
            "changes": {"arrived": 0, "newly_missing": 0, "found": 0},
            "groups": [],
            "discrepancies": {},
            "late": {"count": 0, "accounted_at_previous_cutoff": {}},
            "silent_devices": {"hours": 6, "devices": []},
        },
        state=OperationState(people, summarise(states), [], []),
        people=info,
        group_names={1: "Bus 1", 2: "Bus 2", 3: "Bus 3"},
    )

    class Op:
        timezone = "Europe/Kyiv"

    missing = next(s for s in build_sections(data, Op()) if s.title.startswith("People not"))  # type: ignore[arg-type]
    assert missing.title.startswith("People not accounted for / 下落不明人员 (5)")
    assert [r[0] for r in missing.rows] == ["Name f", "Name b", "Name e"]
    assert missing.notes == [
        "Not listed by name: 2 people not seen in 1 groups of which no one has been seen at a "
        "checkpoint yet (people-RESTRICTED.csv lists everyone). / 未逐一列出：1个组尚无任何人在"
        "检查点出现，其中未见到的2人（people-RESTRICTED.csv 列出所有人）。"
    ]
