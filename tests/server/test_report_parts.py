"""A night derived in parts of the people and added up is the night derived whole.

``server.reports.parts`` splits a night's people by id (records ever merged with each other
together), each part derives its people from their events and the shared ones (events of no
person, voids, headcounts), and ``content._whole`` adds the parts up. These properties compare
that, for every number of parts and any split, with ``derive_operation`` of the whole snapshot
and the previous night, late records, devices and earlier nights computed from it.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from server.reconcile.derive import (
    EventRec,
    GroupRec,
    PersonRec,
    ResolutionRec,
    Snapshot,
    derive_operation,
    unique_sorted,
)
from server.reports import content, parts
from server.reports.content import PersonInfo

_M = 60 * 1000
GROUPS = {10: GroupRec(10, "Bus 1", 4, (1, 2, 3)), 11: GroupRec(11, "Bus 2", 3, (1, 3))}
PEOPLE = [f"p{i}" for i in range(8)]
NAMED = [*PEOPLE, "p8"]  # p8: named by events, entered after every cut-off (no record)
DEVICES = ["dA", "dB", "dC"]

_event = st.builds(
    lambda i, kind, person, cp, status, minute, device, received, group, count: EventRec(
        f"x{i:03d}",
        device,
        i,
        kind,
        minute * _M,
        skew_ms=0 if i % 3 else 30_000,
        person=person if kind in ("checkin", "walkin", "flag") else None,
        checkpoint=cp,
        group=group if kind == "headcount" else None,
        status=status if kind in ("checkin", "walkin") else None,
        count=count if kind == "headcount" else None,
        flag="medical" if kind == "flag" else None,
        received_ms=received * _M,
    ),
    st.integers(0, 400),
    st.sampled_from(["checkin", "checkin", "checkin", "walkin", "flag", "headcount"]),
    st.sampled_from(NAMED),
    st.sampled_from([1, 2, 3]),
    st.sampled_from(["boarded", "absent", "present", "arrived", "left"]),
    st.integers(0, 300),
    st.sampled_from(DEVICES),
    st.integers(0, 400),
    st.sampled_from([10, 11]),
    st.integers(0, 4),
)
_resolution = st.builds(
    lambda i, kind, person, other, group, at, target: ResolutionRec(
        f"r{i:02d}",
        kind,
        at * _M,
        person=person,
        payload={"into": other}
        if kind == "merge"
        else {"group": group}
        if kind in ("move", "accept_walkin")
        else {"resolution": f"r{target:02d}"}
        if kind == "revert"
        else {"key": f"headcount:x{target:03d}"}
        if kind == "resolve"
        else {},
    ),
    st.integers(0, 30),
    st.sampled_from(
        [
            "confirm",
            "declare_missing",
            "merge",
            "merge",
            "move",
            "accept_walkin",
            "revert",
            "resolve",
        ]
    ),
    st.sampled_from(PEOPLE),
    st.sampled_from(PEOPLE),
    st.sampled_from([10, 11]),
    st.integers(0, 400),
    st.integers(0, 30),
)


def _device_labels() -> dict[str, str]:
    return {d: f"phone {d}" for d in DEVICES}


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_event, max_size=60),
    st.lists(st.tuples(st.integers(0, 400), st.sampled_from(DEVICES), st.integers(0, 400))),
    st.lists(_resolution, max_size=8),
    st.lists(st.integers(0, 300), min_size=len(PEOPLE), max_size=len(PEOPLE)),
    st.integers(100, 400),
    st.integers(0, 300),
    st.lists(st.sampled_from(NAMED), max_size=3),
)
def test_a_night_derived_in_parts_and_added_up_is_the_night_derived_whole(
    events: list[EventRec],
    voids: list[tuple[int, str, int]],
    resolutions: list[ResolutionRec],
    entries: list[int],
    prev_minute: int,
    earlier_minute: int,
    bounds: list[str],
) -> None:
    targets = [e.id for e in events] or ["x000"]
    events += [  # voids of events of any device (foreign voids too), often received late
        EventRec(
            f"v{i:03d}",
            device,
            900 + i,
            "void",
            i * _M,
            ref=targets[t % len(targets)],
            received_ms=r * _M,
        )
        for i, (t, device, r) in enumerate(voids)
    ]
    events = unique_sorted(events)  # the database holds each id once
    info = {p: PersonInfo(p, "", p, m * _M) for p, m in zip(PEOPLE, entries, strict=True)}
    recs = {
        p: PersonRec(
            p,
            group=10 if i % 2 else 11,
            source="walk-in" if i % 3 == 0 else "roster",
            document_key=f"doc{i % 3}",
            birth_date="2001-01-01",
            name_keys=(f"name{i % 4}",),
        )
        for i, p in enumerate(PEOPLE)
    }
    prev_ms, earlier_ms = prev_minute * _M, earlier_minute * _M
    snap = Snapshot(1, recs, GROUPS, events, resolutions)

    whole_state = derive_operation(snap, timeline=False, ordered=True)
    before = content._sub_snapshot(snap, info, prev_ms)
    whole_prev = derive_operation(before, timeline=False, queues=False)
    whole_late = content._late_rows(
        whole_prev, content._late_facts(snap, before, prev_ms), _device_labels()
    )
    whole_earlier = derive_operation(
        content._sub_snapshot(snap, info, earlier_ms), timeline=False, queues=False
    ).groups

    shared = [e for e in events if e.person is None or e.kind in parts.SHARED_KINDS]
    frame = parts.Frame(1, recs, GROUPS, resolutions, shared)
    split = parts.Split(tuple(sorted(set(bounds))), parts._merged_groups(resolutions))
    own: list[list[EventRec]] = [[] for _ in range(split.count)]
    for e in events:
        if e.person is not None and e.kind not in parts.SHARED_KINDS:
            own[split.of(e.person)].append(e)
    facts = [
        content._part(frame, info, split, k, own[k][::-1], prev_ms, [earlier_ms])
        for k in range(split.count)
    ]
    whole = content._whole(frame, facts, content._duplicates(frame))

    assert list(whole.state.people) == list(whole_state.people)
    assert whole.state.people == whole_state.people
    assert whole.state.groups == whole_state.groups
    assert whole.state.duplicates == whole_state.duplicates
    assert whole.state.headcounts == whole_state.headcounts
    then = [p for p in recs if info[p].entry_ms < prev_ms]
    prev = content._merged(then, whole.state, whole.again)
    # Of the previous night's states a part sends back what the report reads (``Brief``).
    read = [(p, s.group, s.state, s.last_checkpoint) for p, s in prev.people.items()]
    assert read == [(p, s.group, s.state, s.last_checkpoint) for p, s in whole_prev.people.items()]
    assert prev.groups == whole_prev.groups
    assert content._late_rows(prev, whole.late, _device_labels()) == whole_late
    assert whole.devices == content._device_facts(events)
    assert whole.events == len(events)
    assert whole.earlier == [whole_earlier]


def test_merged_records_stay_in_one_part_with_the_lowest_id_merged_with_them() -> None:
    merges = [
        ResolutionRec("r1", "merge", 1, person="c", payload={"into": "a"}),
        ResolutionRec("r2", "merge", 2, person="e", payload={"into": "c"}),
        ResolutionRec("r3", "revert", 3, person="e", payload={"resolution": "r2"}),
        ResolutionRec("r4", "merge", 4, person="f", payload={"into": "g"}),
        ResolutionRec("r5", "confirm", 5, person="b", payload={}),
    ]
    lead = parts._merged_groups(merges)
    assert lead == {"a": "a", "c": "a", "e": "a", "f": "f", "g": "f"}  # reverted: still ever
    split = parts.Split(("b", "d", "f"), lead)
    assert split.count == 4
    assert [split.of(p) for p in "abcdefgh"] == [0, 1, 0, 2, 0, 3, 3, 3]
