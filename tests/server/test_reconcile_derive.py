"""The pure reconciliation core: order-independent, deterministic, states add up."""

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
    derive_person,
    duplicate_pairs,
    headcount_mismatches,
)

ROUTE = (1, 2, 3)
GROUPS = {10: GroupRec(10, "Bus 1", 4, ROUTE)}
PEOPLE = {f"p{i}": PersonRec(f"p{i}", group=10) for i in range(4)}
H = 3600 * 1000


def _events() -> list[EventRec]:
    e = [
        EventRec("e01", "dA", 1, "checkin", 1 * H, person="p0", checkpoint=1, status="boarded"),
        EventRec("e02", "dA", 2, "checkin", 1 * H, person="p1", checkpoint=1, status="boarded"),
        EventRec("e03", "dB", 1, "checkin", 1 * H, person="p1", checkpoint=1, status="absent"),
        EventRec("e04", "dA", 3, "headcount", 1 * H + 5, checkpoint=1, group=10, count=4),
        EventRec(
            "e05", "dC", 1, "checkin", 3 * H, skew_ms=H, person="p0", checkpoint=2, status="crossed"
        ),
        EventRec("e06", "dC", 2, "checkin", 4 * H, person="p0", checkpoint=1, status="present"),
        EventRec("e07", "dC", 3, "checkin", 4 * H, person="p2", checkpoint=3, status="arrived"),
        EventRec("e08", "dC", 4, "void", 4 * H + 1, ref="e07"),
        EventRec("e09", "dA", 4, "void", 4 * H + 2, ref="e06"),
        EventRec("e10", "dC", 5, "flag", 4 * H + 3, person="p3", flag="medical"),
        EventRec("e11", "dC", 6, "checkin", 4 * H + 4, person="p3", checkpoint=3, status="arrived"),
    ]
    return e


RESOLUTIONS = [
    ResolutionRec("r1", "confirm", 5 * H, person="p2"),
    ResolutionRec("r2", "merge", 5 * H + 1, person="p3", payload={"into": "p0"}),
    ResolutionRec("r3", "revert", 5 * H + 2, person="p3", payload={"resolution": "r2"}),
    ResolutionRec("r4", "declare_missing", 5 * H + 3, person="p1"),
]


def _state(events: list[EventRec], resolutions: list[ResolutionRec]) -> dict:
    derived = derive_operation(Snapshot(1, PEOPLE, GROUPS, events, resolutions))
    return {
        "people": {k: (v.comparable(), v.version) for k, v in derived.people.items()},
        "groups": derived.groups,
        "duplicates": derived.duplicates,
        "headcounts": derived.headcounts,
    }


BASELINE = _state(_events(), RESOLUTIONS)


@settings(max_examples=150, deadline=None)
@given(
    st.permutations(_events()),
    st.lists(st.sampled_from(_events()), max_size=8),
    st.permutations(RESOLUTIONS),
    st.lists(st.sampled_from(RESOLUTIONS), max_size=3),
)
def test_permuted_and_duplicated_events_give_identical_state(
    events: list[EventRec],
    extra: list[EventRec],
    resolutions: list[ResolutionRec],
    extra_res: list[ResolutionRec],
) -> None:
    mixed = list(events) + extra
    assert _state(mixed, list(resolutions) + extra_res) == BASELINE


def test_the_baseline_states_are_exactly_as_reasoned() -> None:
    people = {k: v[0] for k, v in BASELINE["people"].items()}
    # p0: crossed at 2 (device C one hour fast, so 2h corrected), then back at 1 (4h), but
    # device A's void of C's event is foreign: it retracts nothing and is a conflict.
    assert people["p0"]["state"] == "checked_in"
    assert people["p0"]["last_checkpoint"] == 1
    assert [c["kind"] for c in people["p0"]["conflicts"]] == ["foreign_void", "route_reversal"]
    # p1: boarded on A and absent on B at the same time: contradictory; then declared missing.
    assert people["p1"]["state"] == "missing"
    assert [c["kind"] for c in people["p1"]["conflicts"]] == ["contradictory_status"]
    # p2: arrived, voided by the same device, then confirmed by staff.
    assert (people["p2"]["state"], people["p2"]["last_checkpoint"]) == ("confirmed", None)
    # p3: arrived with an open medical flag; the merge into p0 was reverted.
    assert (people["p3"]["state"], people["p3"]["merged_into"]) == ("needs_assistance", None)
    group = BASELINE["groups"][10]
    assert (group["records"], group["expected"], group["accounted"], group["unaccounted"]) == (
        4,
        4,
        3,
        1,
    )
    assert sum(group["by_state"].values()) == group["records"]
    assert BASELINE["headcounts"] == [
        {
            "key": "headcount:e04",
            "event": "e04",
            "group": 10,
            "checkpoint": 1,
            "counted": 4,
            "named": 2,
            "difference": 2,
            "at_ms": H + 5,
        }
    ]


def test_a_merge_counts_the_duplicates_events_for_its_primary() -> None:
    merge = ResolutionRec("m", "merge", 9 * H, person="p3", payload={"into": "p2"})
    derived = derive_operation(Snapshot(1, PEOPLE, GROUPS, _events(), [merge]))
    assert derived.people["p3"].state == "merged"
    assert derived.people["p3"].merged_into == "p2"
    # p2's own arrival was voided; p3's arrival and medical flag now count for p2.
    assert (derived.people["p2"].state, derived.people["p2"].last_checkpoint) == (
        "needs_assistance",
        3,
    )
    group = derived.groups[10]
    assert (group["records"], group["expected"], group["by_state"]["merged"]) == (4, 3, 1)


def test_duplicates_are_found_across_scripts_with_scores_and_evidence() -> None:
    from sync.normalize import document_key, name_key

    people = [
        PersonRec(
            "a",
            document_key=document_key("E12 345 67"),
            birth_date="2001-05-04",
            name_keys=(name_key("张伟"),),
        ),
        PersonRec("b", birth_date="2001-05-04", name_keys=(name_key("WEI Zhang"),)),
        PersonRec(
            "c",
            document_key=document_key("e1234567"),
            birth_date="2001-05-04",
            name_keys=(name_key("Zhang Wei"),),
        ),
        PersonRec("d", birth_date="1999-01-02", name_keys=(name_key("Олена Коваленко"),)),
        PersonRec("e", birth_date="1999-01-02", name_keys=(name_key("Olena Kovalenko"),)),
        PersonRec("f", birth_date="1999-01-03", name_keys=(name_key("Olena Kovalenko"),)),
    ]
    pairs = duplicate_pairs(people, {})
    assert [(p["people"], p["score"], p["evidence"]) for p in pairs] == [
        (["a", "c"], 0.98, ["document_key", "name_key", "birth_date"]),
        (["a", "b"], 0.8, ["name_key", "birth_date"]),
        (["b", "c"], 0.8, ["name_key", "birth_date"]),
        (["d", "e"], 0.8, ["name_key", "birth_date"]),
    ]
    assert len(duplicate_pairs(people, {"c": "a"}, ["duplicate:a:b"])) == 1


def test_a_headcount_matching_the_named_people_is_no_mismatch() -> None:
    events = [
        EventRec(
            f"c{i}", "d", i, "checkin", 1000 + i, person=f"p{i}", checkpoint=1, status="boarded"
        )
        for i in range(3)
    ]
    events.append(EventRec("h", "d", 9, "headcount", 2000, checkpoint=1, group=10, count=3))
    assert headcount_mismatches(events, dict.fromkeys(["p0", "p1", "p2"], 10), {}) == []


def test_a_person_with_no_events_is_not_seen_with_a_reason() -> None:
    state = derive_person(PEOPLE["p0"], [], [], GROUPS)
    assert (state.state, state.reason, state.group) == (
        "not_seen",
        "not seen at any checkpoint",
        10,
    )


def _brute_force_headcounts(events: list[EventRec], group_of: dict, roots: dict) -> list:
    """The headcount rule written the slow, obvious way: every count against every check-in."""
    from server.reconcile.derive import POSITIVE_STATUSES, retractions, unique_sorted

    ordered = unique_sorted(events)
    retracted, _ = retractions(ordered)
    live = [e for e in ordered if e.id not in retracted]
    out = []
    for h in (e for e in live if e.kind == "headcount"):
        named = {
            roots.get(e.person, e.person)
            for e in live
            if e.kind in ("checkin", "walkin")
            and e.person
            and e.checkpoint == h.checkpoint
            and (e.status in POSITIVE_STATUSES or e.kind == "walkin")
            and abs(e.corrected_ms - h.corrected_ms) <= 30 * 60 * 1000
            and group_of.get(e.person) == h.group
        }
        if len(named) != h.count:
            out.append((h.id, h.count, len(named)))
    return out


_M = 60 * 1000
_observation = st.builds(
    lambda i, kind, person, cp, status, minute, skew: EventRec(
        f"x{i}",
        "dA" if i % 2 else "dB",
        i,
        kind,
        minute * _M,
        skew_ms=skew * _M,
        person=person,
        checkpoint=cp,
        status=status if kind == "checkin" else None,
    ),
    st.integers(0, 10_000),
    st.sampled_from(["checkin", "walkin"]),
    st.sampled_from(["p0", "p1", "p2", "p3", "w9"]),
    st.sampled_from([1, 2, None]),
    st.sampled_from(["boarded", "absent", "present", "left"]),
    st.integers(0, 180),
    st.integers(-10, 10),
)
_headcount = st.builds(
    lambda i, cp, group, minute, count: EventRec(
        f"h{i}", "dC", i, "headcount", minute * _M, checkpoint=cp, group=group, count=count
    ),
    st.integers(0, 10_000),
    st.sampled_from([1, 2, None]),
    st.sampled_from([10, 11, None]),
    st.integers(0, 180),
    st.integers(0, 4),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_observation, max_size=30),
    st.lists(_headcount, min_size=1, max_size=8),
    st.lists(st.sampled_from(["x0", "x1", "x2", "x3", "h0", "h1"]), max_size=3),
)
def test_sliding_window_headcounts_equal_comparing_every_count_with_every_check_in(
    observations: list[EventRec], counts: list[EventRec], voided: list[str]
) -> None:
    voids = [EventRec(f"v{i}", "dA", 90_000 + i, "void", 0, ref=r) for i, r in enumerate(voided)]
    events = observations + counts + voids
    group_of = {"p0": 10, "p1": 10, "p2": 11, "p3": None}
    roots = {"p1": "p0"}
    got = [
        (h["event"], h["counted"], h["named"])
        for h in headcount_mismatches(events, group_of, roots)
    ]
    assert got == _brute_force_headcounts(events, group_of, roots)
