"""The faster reconciliation functions give exactly what they gave before they were sped up.

``retractions``, ``_conflicts``, ``derive_person``, ``derive_operation`` and ``unique_sorted``
were rewritten for the nightly report (a million events, 100,000 people): no map of every
event when a person has no void, corrected times computed once, the decisive observation
found among the last ones, merged records' events grouped once. Ingest calls the same
functions, so each is compared here with its earlier text (kept below, as it was but for the
names) on random histories with voids (same device, another device's, voids of voids, of
unknown events), repeated ids, merges (chains and cycles), resolutions and folded priors.
"""

# The earlier texts below are kept as they were (long lines and all).
# ruff: noqa: E501

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from server.reconcile.derive import (
    ASSISTANCE_FLAGS,
    CONTRADICTION_WINDOW_MS,
    MAX_OPEN_CONFLICTS,
    TWO_PLACES_WINDOW_MS,
    EventRec,
    GroupRec,
    OperationState,
    PersonRec,
    PersonState,
    Prior,
    ResolutionRec,
    Snapshot,
    _conflicts,
    _contradict,
    _observation_state,
    _timeline_item,
    active_resolutions,
    derive_operation,
    derive_person,
    duplicate_pairs,
    headcount_mismatches,
    merge_roots,
    retractions,
    summarise,
    unique_sorted,
)

_M = 60 * 1000
GROUPS = {10: GroupRec(10, "Bus 1", 4, (1, 2, 3)), 11: GroupRec(11, "Bus 2", 3, (1, 3))}
PEOPLE = [f"p{i}" for i in range(6)]

# --- the earlier texts -------------------------------------------------------------------


def retractions_before(events: Sequence[EventRec]) -> tuple[set[str], list[EventRec]]:
    """Ids retracted by same-device voids, and the voids that aimed at another device's event."""
    by_id = {e.id: e for e in events}
    retracted: set[str] = set()
    foreign: list[EventRec] = []
    for e in events:
        if e.kind != "void" or e.ref is None:
            continue
        target = by_id.get(e.ref)
        if target is None or target.kind == "void":
            continue
        if target.device == e.device:
            retracted.add(target.id)
        else:
            foreign.append(e)
    return retracted, foreign


def conflicts_before(
    observations: list[EventRec], foreign_voids: list[EventRec], route: tuple[int, ...]
) -> tuple[list[dict[str, Any]], str | None]:
    """Route reversals, two places at once, and contradictory statuses, each with its key;
    and the id of the furthest observation (the first at the furthest route position)."""
    found: dict[str, dict[str, Any]] = {}

    def add(kind: str, *items: EventRec) -> None:
        # Called for every close pair of a person's observations: kept cheap on purpose.
        if len(items) == 2:
            a, b = items[0].id, items[1].id
            ids = [a, b] if a <= b else [b, a]
        else:
            ids = sorted(i.id for i in items)
        key = kind + ":" + ":".join(ids)
        if key not in found:
            found[key] = {"key": key, "kind": kind, "events": ids}

    position = {cp: i for i, cp in enumerate(route, start=1)}
    furthest: EventRec | None = None
    for e in observations:
        pos = position.get(e.checkpoint or -1)
        if pos is None or e.status in ("absent", "left"):
            continue
        if furthest is not None and pos < position[furthest.checkpoint or -1]:
            add("route_reversal", furthest, e)
        if furthest is None or pos > position[furthest.checkpoint or -1]:
            furthest = e
    for i, a in enumerate(observations):
        for b in observations[i + 1 :]:
            gap = b.corrected_ms - a.corrected_ms
            if gap > max(TWO_PLACES_WINDOW_MS, CONTRADICTION_WINDOW_MS):
                break
            if a.device == b.device:
                continue
            if (
                a.checkpoint != b.checkpoint
                and gap <= TWO_PLACES_WINDOW_MS
                and "absent" not in (a.status, b.status)
            ):
                add("two_places", a, b)
            elif a.checkpoint == b.checkpoint and _contradict(a.status, b.status):
                add("contradictory_status", a, b)
    for v in foreign_voids:
        add("foreign_void", v)
    return sorted(found.values(), key=lambda c: c["key"]), furthest.id if furthest else None


def derive_person_before(
    person: PersonRec,
    events: Iterable[EventRec],
    resolutions: Iterable[ResolutionRec],
    groups: Mapping[int, GroupRec],
    merged_into: str | None = None,
    members: Iterable[str] = (),
    timeline: bool = True,
    prior: Prior | None = None,
    *,
    presorted: bool = False,
) -> PersonState:
    """Compute one person's state from its events (and its merged duplicates') and resolutions.

    ``events`` may include events of other people (voids need their targets); only check-ins,
    walk-ins and flags naming ``person`` or one of ``members`` (the records merged into it,
    directly or through a chain) count. ``timeline=False`` skips the timeline, which is not
    part of the stored state (ingest does not need it). ``presorted=True`` says ``events`` is a
    list in ``unique_sorted`` order already (a subsequence of one), so it is not sorted again.
    """
    ordered = events if presorted and isinstance(events, list) else unique_sorted(events)
    retracted, foreign = retractions_before(ordered)
    mine = [r for r in active_resolutions(resolutions)]
    members = {person.id, *members}
    live = [e for e in ordered if e.id not in retracted and e.person in members]
    observations = [e for e in live if e.kind in ("checkin", "walkin")]
    group_id = person.group
    for r in mine:
        if r.kind in ("move", "accept_walkin") and str(r.person) == person.id:
            group_id = int(r.payload["group"])
    route = groups[group_id].route if group_id is not None and group_id in groups else ()
    state = PersonState(
        person=person.id,
        group=group_id,
        state="not_seen",
        reason="not seen at any checkpoint",
        name_keys=sorted(person.name_keys),
    )
    state.event_count = sum(1 for e in ordered if e.person in members)
    voids_here = [e for e in foreign if e.ref in {x.id for x in ordered if x.person in members}]
    state.conflicts, state.furthest = conflicts_before(observations, voids_here, route)
    if prior is not None:
        state.event_count += prior.event_count
        merged = {c["key"]: c for c in prior.conflicts}
        merged.update(
            (c["key"], c) for c in state.conflicts if not prior.fresh.isdisjoint(c["events"])
        )
        state.conflicts = sorted(merged.values(), key=lambda c: c["key"])
    resolved = {
        str(r.payload.get("key"))
        for r in mine
        if r.kind == "resolve" and str(r.person) == person.id
    }
    state.conflicts = [c for c in state.conflicts if c["key"] not in resolved][:MAX_OPEN_CONFLICTS]
    state.flags = sorted(
        {e.flag for e in live if e.kind == "flag" and e.flag} | set(prior.flags if prior else ())
    )
    if observations:
        last = observations[-1]
        state.last_checkpoint, state.last_seen_ms = last.checkpoint, last.corrected_ms
        state.route_pos = route.index(last.checkpoint) + 1 if last.checkpoint in route else None
    decisive: list[tuple[tuple[int, str], str, str]] = [
        ((e.corrected_ms, e.id), _observation_state(e, route), f"checkpoint {e.checkpoint}")
        for e in observations
    ]
    for r in mine:
        if str(r.person) == person.id and r.kind in ("confirm", "declare_missing"):
            label = "confirmed" if r.kind == "confirm" else "missing"
            decisive.append(((r.at_ms, r.id), label, "resolution"))
    if decisive:
        _, state.state, where = max(decisive)
        state.reason = {
            "checked_in": f"seen at {where}",
            "arrived": f"arrived at {where}",
            "left": f"left the group at {where}",
            "absent": f"reported absent at {where}",
            "confirmed": "confirmed by staff",
            "missing": "declared missing by staff",
        }[state.state]
    if state.state in ("checked_in", "arrived", "confirmed") and set(state.flags) & set(
        ASSISTANCE_FLAGS
    ):
        state.state, state.reason = "needs_assistance", "flagged: " + ",".join(state.flags)
    if merged_into is not None:
        state.state, state.reason, state.merged_into = (
            "merged",
            "merged into another record",
            merged_into,
        )
    if not timeline:
        return state
    state.timeline = [
        _timeline_item(e, e.id in retracted)
        for e in ordered
        if e.person in members
        or (e.kind == "void" and e.ref in {x.id for x in ordered if x.person in members})
    ]
    state.timeline += [
        {
            "type": "resolution",
            "id": r.id,
            "kind": r.kind,
            "at_ms": r.at_ms,
            "actor": r.actor,
            "reason": r.reason,
        }
        for r in mine
        if str(r.person) == person.id or str(r.payload.get("into")) == person.id
    ]
    state.timeline.sort(key=lambda t: (t["at_ms"], t["id"]))
    return state


def derive_operation_before(
    snapshot: Snapshot, timeline: bool = True, *, queues: bool = True, ordered: bool = False
) -> OperationState:
    """Derive the whole operation from a snapshot; independent of order and repetition.

    ``queues=False`` leaves the cross-person queues (duplicates, headcounts) empty, for callers
    that only need people and groups (the previous nights of a report). ``ordered=True`` says
    ``snapshot.events`` already went through ``unique_sorted`` (a report sorts once for both
    nights).
    """
    events = snapshot.events if ordered else unique_sorted(snapshot.events)
    resolutions = active_resolutions(snapshot.resolutions)
    roots = merge_roots(snapshot.resolutions)
    links = {str(r.person): str(r.payload["into"]) for r in resolutions if r.kind == "merge"}
    clusters: dict[str, set[str]] = {}
    for dup, root in roots.items():
        clusters.setdefault(root, set()).add(dup)
    by_person: dict[str, list[EventRec]] = {}
    # Only voids name no person: their owner is their target's (ids are unique by now).
    refs = {e.ref for e in events if not e.person and e.ref is not None}
    owner_of = {e.id: e.person for e in events if e.id in refs} if refs else {}
    for e in events:
        owner = e.person or (owner_of.get(e.ref) if e.ref is not None else None)
        if owner:
            root = roots.get(owner, owner) if roots else owner
            mine = by_person.get(root)
            if mine is None:
                by_person[root] = [e]
            else:
                mine.append(e)
            if owner in roots:
                by_person.setdefault(owner, []).append(e)
    res_by_person: dict[str, list[ResolutionRec]] = {}
    for r in resolutions:
        for pid in {str(r.person), str(r.payload.get("into"))}:
            res_by_person.setdefault(pid, []).append(r)
    people: dict[str, PersonState] = {}
    for pid, rec in sorted(snapshot.people.items()):
        cluster = set() if pid in links else clusters.get(pid, set())
        related = (
            [r for m in {pid, *cluster} for r in res_by_person.get(m, ())] if res_by_person else []
        )
        people[pid] = derive_person_before(
            rec,
            by_person.get(pid, []),
            related,
            snapshot.groups,
            merged_into=links.get(pid),
            members=cluster,
            timeline=timeline,
            presorted=True,  # a subsequence of ``events``, which is in that order
        )
    if not queues:
        return OperationState(people, summarise(people.values()), [], [])
    group_of = {pid: s.group for pid, s in people.items()}
    dismissed = [str(r.payload.get("key")) for r in resolutions if r.kind == "resolve"]
    return OperationState(
        people=people,
        groups=summarise(people.values()),
        duplicates=duplicate_pairs(snapshot.people.values(), roots, dismissed),
        headcounts=headcount_mismatches(events, group_of, roots, ordered=True),
    )


# --- random histories ----------------------------------------------------------------------

_observation = st.builds(
    lambda i, kind, person, cp, status, minute, skew, device: EventRec(
        f"x{i}",
        device,
        i,
        kind,
        minute * _M // 4,  # quarter minutes: equal corrected times, pairs in both windows
        skew_ms=skew,
        person=person if kind in ("checkin", "walkin", "flag") else None,
        checkpoint=cp,
        group=10 if kind == "headcount" else None,
        status=status if kind in ("checkin", "walkin") else None,
        count=2 if kind == "headcount" else None,
        flag=("medical" if i % 3 else "lost_documents") if kind == "flag" else None,
        received_ms=minute * _M,
    ),
    st.integers(0, 60),  # ids repeat (with other contents): the first one given wins
    st.sampled_from(["checkin", "checkin", "checkin", "walkin", "flag", "headcount"]),
    st.sampled_from(PEOPLE),
    st.sampled_from([1, 2, 3, 4]),  # 4 is on no route
    st.sampled_from(["boarded", "absent", "present", "arrived", "left", "crossed"]),
    st.integers(0, 400),
    st.sampled_from([0, 0, 15_000, -15_000]),
    st.sampled_from(["dA", "dB", "dC"]),
)
_void = st.tuples(
    st.integers(0, 70),  # target: an observation, a void (v...) or nothing
    st.sampled_from(["x", "v"]),
    st.sampled_from(["dA", "dB", "dC"]),
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
        else {"key": f"two_places:x{other[1:]}:x{group}"}
        if kind == "resolve"
        else {},
    ),
    st.integers(0, 12),
    st.sampled_from(
        ["confirm", "declare_missing", "merge", "move", "accept_walkin", "revert", "resolve"]
    ),
    st.sampled_from(PEOPLE),
    st.sampled_from(PEOPLE),
    st.sampled_from([10, 11, 12]),
    st.integers(0, 400),
)


def _history(
    observations: list[EventRec], voids: list[tuple[int, str, str, int]]
) -> list[EventRec]:
    return observations + [
        EventRec(f"v{i}", device, 50_000 + i, "void", minute * _M // 4, ref=f"{prefix}{target}")
        for i, (target, prefix, device, minute) in enumerate(voids)
    ]


@settings(max_examples=400, deadline=None)
@given(st.lists(_observation, max_size=50), st.lists(_void, max_size=8))
def test_retractions_and_conflicts_are_those_found_before(
    observations: list[EventRec], voids: list[tuple[int, str, str, int]]
) -> None:
    events = _history(observations, voids)
    for given_ in (events, unique_sorted(events)):
        assert retractions(given_) == retractions_before(given_)
    ordered = unique_sorted(events)
    retracted, foreign = retractions(ordered)
    seen = [e for e in ordered if e.kind in ("checkin", "walkin") and e.id not in retracted]
    for route in ((1, 2, 3), (1, 3), ()):
        assert _conflicts(seen, foreign, route) == conflicts_before(seen, foreign, route)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(_observation, max_size=50),
    st.lists(_void, max_size=8),
    st.lists(_resolution, max_size=8),
    st.booleans(),
    st.booleans(),
)
def test_a_person_is_derived_as_before_with_voids_merges_resolutions_and_priors(
    observations: list[EventRec],
    voids: list[tuple[int, str, str, int]],
    resolutions: list[ResolutionRec],
    timeline: bool,
    with_prior: bool,
) -> None:
    events = _history(observations, voids)
    ordered = unique_sorted(events)
    prior = (
        Prior(
            fresh=frozenset(e.id for e in events[::2]),
            flags=("vulnerable",),
            conflicts=({"key": "two_places:a:b", "kind": "two_places", "events": ["a", "b"]},),
            event_count=3,
        )
        if with_prior
        else None
    )
    for i, pid in enumerate(PEOPLE[:4]):
        person = PersonRec(pid, group=10 if i % 2 else 11, name_keys=("b", "a"))
        members = {PEOPLE[4], PEOPLE[5]} if i == 0 else {PEOPLE[3]} if i == 1 else set()
        merged_into = PEOPLE[0] if i == 3 else None
        before = derive_person_before(
            person, events, resolutions, GROUPS, merged_into, members, timeline, prior
        )
        assert (
            derive_person(
                person, events, resolutions, GROUPS, merged_into, members, timeline, prior
            )
            == before
        )
        assert (
            derive_person(
                person,
                ordered,
                resolutions,
                GROUPS,
                merged_into,
                members,
                timeline,
                prior,
                presorted=True,
            )
            == before
        )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_observation, max_size=60),
    st.lists(_void, max_size=8),
    st.lists(_resolution, max_size=8),
    st.booleans(),
)
def test_an_operation_is_derived_as_before_with_merge_chains_and_cycles(
    observations: list[EventRec],
    voids: list[tuple[int, str, str, int]],
    resolutions: list[ResolutionRec],
    timeline: bool,
) -> None:
    events = _history(observations, voids)
    people = {p: PersonRec(p, group=10 if i % 2 else 11) for i, p in enumerate(PEOPLE)}
    snap = Snapshot(1, people, GROUPS, events, resolutions)
    before = derive_operation_before(snap, timeline)
    assert derive_operation(snap, timeline) == before
    ordered = dataclasses.replace(snap, events=unique_sorted(events))
    assert derive_operation(ordered, timeline, ordered=True) == before
    assert derive_operation(ordered, timeline, queues=False, ordered=True).people == before.people


def test_merged_records_in_a_cycle_or_merged_into_themselves_are_derived_as_before() -> None:
    events = [
        EventRec(
            f"x{i}",
            "dA" if i % 2 else "dB",
            i,
            "checkin",
            i * _M,
            person=p,
            checkpoint=1 + i % 3,
            status="present",
        )
        for i, p in enumerate(["p0", "p1", "p2", "p0", "p1", "p2", "p3", "p3"])
    ] + [EventRec("v0", "dA", 99, "void", 9 * _M, ref="x1")]
    people = {p: PersonRec(p, group=10) for p in PEOPLE}
    cases = [
        [("p0", "p1"), ("p1", "p0")],  # a cycle of two
        [("p0", "p1"), ("p1", "p2"), ("p2", "p0")],  # of three
        [("p3", "p3")],  # into itself
        [("p0", "p1"), ("p1", "p2"), ("p4", "p2")],  # a chain and a branch
    ]
    for case in cases:
        resolutions = [
            ResolutionRec(f"r{i}", "merge", i * _M, person=dup, payload={"into": into})
            for i, (dup, into) in enumerate(case)
        ]
        snap = Snapshot(1, people, GROUPS, events, resolutions)
        assert derive_operation(snap) == derive_operation_before(snap)


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False), st.integers(1000, 3000))
def test_a_whole_operation_sorted_in_c_passes_is_in_the_one_order_with_the_first_of_each_id(
    rng: random.Random, size: int
) -> None:
    unique = rng.random() < 0.3  # as read from a database: no id twice
    events = [
        EventRec(
            f"e{k if unique else rng.randrange(size)}",  # else ids repeat: the first one wins
            rng.choice(["dA", "dB", "dC"]),
            rng.randrange(5),
            "checkin",
            rng.randrange(40),  # long runs of equal corrected times
            skew_ms=rng.randrange(-2, 3),
            author=f"a{k}",
        )
        for k in range(size)
    ]
    first: dict[str, EventRec] = {}
    for e in events:
        first.setdefault(e.id, e)
    expected = sorted(first.values(), key=lambda e: e.order)
    got = unique_sorted(events)
    assert got == expected and all(a is b for a, b in zip(got, expected, strict=True))
    assert unique_sorted(iter(events)) == expected  # any iterable
