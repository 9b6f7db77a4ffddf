"""What a night's report says, computed from frozen snapshots (no wall clock anywhere).

The night's state is ``derive_operation`` of what was received before the cut-off; the previous
night's is derived from the same loaded events filtered by the previous cut-off, so each row of
the database is read once per report. Both are computed per part of the people (``parts``:
``_part`` derives one, possibly in a second process; ``_whole`` adds them up), which gives
what deriving the whole snapshot gives. ``summary`` holds counts and ids only (no names); names
live in ``people`` and are written only to the restricted file and to the lists the ministry
needs.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from typing import Any, TypeVar

from server import forked
from server.db import tuples
from server.models import Checkpoint, Device, Group, Operation, QuarantinedRecord
from server.reconcile.derive import (
    ACCOUNTED,
    STATES,
    UNACCOUNTED,
    EventRec,
    OperationState,
    PersonRec,
    PersonState,
    ResolutionRec,
    Snapshot,
    active_resolutions,
    derive_operation,
    duplicate_pairs,
    headcount_mismatches,
    merge_roots,
    summarise,
    unique_sorted,
)
from server.reconcile.store import to_ms
from server.reports import nights, parts
from server.reports.parts import PersonInfo

FORMAT = "muster-report/1"
T = TypeVar("T")
#: Field getters: the passes over every event below run in C (``map``, ``compress``).
_ID = operator.attrgetter("id")
_PERSON = operator.attrgetter("person")
_REF = operator.attrgetter("ref")
_RECEIVED = operator.attrgetter("received_ms")
_KIND = operator.attrgetter("kind")
#: Earlier nights' totals for the chart: date -> totals, from stored reports when present.
HistoryLookup = Callable[[dt.date], dict[str, Any] | None]


@dataclass
class ReportData:
    """Everything the writers need for one night."""

    summary: dict[str, Any]
    state: OperationState
    people: dict[str, PersonInfo]
    changes: dict[str, str] = field(default_factory=dict)
    late: list[dict[str, Any]] = field(default_factory=list)
    group_names: dict[int | None, str] = field(default_factory=dict)
    checkpoint_names: dict[int, str] = field(default_factory=dict)


def iso_utc(ms: int | None) -> str:
    """``2024-03-01T18:00:00Z`` for epoch milliseconds (seconds precision)."""
    if ms is None:
        return ""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))  # per person: fast


def _totals(groups: dict[int | None, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "records": 0,
        "expected": 0,
        "accounted": 0,
        "unaccounted": 0,
        "by_state": dict.fromkeys(STATES, 0),
    }
    for g in groups.values():
        for key in ("records", "expected", "accounted", "unaccounted"):
            out[key] += g[key]
        for s, n in g["by_state"].items():
            out["by_state"][s] += n
    return out


def _sub_snapshot(
    snap: Snapshot,
    people: dict[str, PersonInfo],
    before_ms: int,
    extra: Sequence[EventRec] = (),
) -> Snapshot:
    """The snapshot as it stood at ``before_ms``: the same filters ``load_snapshot`` applies."""
    return Snapshot(
        operation_id=snap.operation_id,
        people={pid: rec for pid, rec in snap.people.items() if people[pid].entry_ms < before_ms},
        groups=snap.groups,
        events=list(
            compress(snap.events, map(operator.lt, map(_RECEIVED, snap.events), repeat(before_ms)))
        )
        + list(extra),
        resolutions=[r for r in snap.resolutions if r.at_ms < before_ms],
    )


def _rederived(snap: Snapshot, before: Snapshot, ordered: bool = False) -> dict[str, PersonState]:
    """The previous night's states of the people whose inputs changed since ``before``.

    ``before`` is ``snap`` as it stood at an earlier cut-off (``_sub_snapshot``). A person's
    state depends only on their own and their merged records' events (voids aimed at those
    included), the resolutions naming any of them and the merges tying them together. So a
    person is derived again when one of their records got an event or a resolution since (a
    revert counts for the records its target named), together with everyone merged with them
    then or now; everyone else's state is the same at both cut-offs (``_previous``).
    ``ordered``: the events of both went through ``unique_sorted`` (so no id is repeated).
    """
    if ordered:  # ``before.events`` picks from ``snap.events`` (``_sub_snapshot``): the rest
        new = []  # are new (an event of ``before`` not met in order makes all after it "new",
        rest = iter(before.events)  # which derives more people again, never fewer)
        following = next(rest, None)
        for e in snap.events:
            if e is following:
                following = next(rest, None)
            else:
                new.append(e)
    else:
        kept = {e.id for e in before.events}
        new = [e for e in snap.events if e.id not in kept]
    twice: set[str] = set()
    if not ordered:  # an id given twice (never from a database): all its records count as new
        twice = {i for i, n in Counter(e.id for e in snap.events).items() if n > 1}
        new += [e for e in snap.events if e.id in twice]
    changed = {e.person for e in new if e.person}
    refs = {e.ref for e in new if not e.person and e.ref is not None}
    if refs:  # voids: their target's person
        aimed = compress(snap.events, map(refs.__contains__, map(_ID, snap.events)))
        changed |= {e.person for e in aimed if e.person}
    versions: dict[str, list[ResolutionRec]] = {}
    for r in snap.resolutions:
        versions.setdefault(r.id, []).append(r)
    earlier = {r.id for r in before.resolutions}
    for r in snap.resolutions:
        if r.id not in earlier or len(versions[r.id]) > 1:
            named = [r]
            if r.kind == "revert":  # the records its target named
                named += versions.get(str(r.payload.get("resolution")), [])
            for x in named:
                changed |= {str(x.person), str(x.payload.get("into"))}
    all_roots = (merge_roots(snap.resolutions), merge_roots(before.resolutions))
    size = -1
    while size != len(changed):  # everyone merged with a changed record, now or then
        size = len(changed)
        for roots in all_roots:
            changed |= {roots[p] for p in changed if p in roots}
            changed |= {dup for dup, root in roots.items() if root in changed}
    redo = {pid: rec for pid, rec in before.people.items() if pid in changed}
    if not redo:
        return {}
    voids = [  # and any other event that names no person but another event
        e
        for e in compress(
            before.events, map(operator.is_not, map(_REF, before.events), repeat(None))
        )
        if not e.person
    ]
    targets = {e.ref for e in voids}
    owner = (
        {
            e.id: e.person
            for e in compress(before.events, map(targets.__contains__, map(_ID, before.events)))
        }
        if targets
        else {}
    )
    if not twice and "" not in changed:
        # The same selection in C: an event of a changed person, or a void of one's record
        # (``changed`` holds person ids as text, never ``None``; "" is left to the loop).
        theirs = set()
        for e in voids:
            who = owner.get(str(e.ref))
            if who is not None and who in changed:
                theirs.add(e.id)
        picked = map(
            operator.or_,
            map(changed.__contains__, map(_PERSON, before.events)),
            map(theirs.__contains__, map(_ID, before.events)),
        )
        events = list(compress(before.events, picked))
    else:
        events = []
        for e in before.events:
            who = e.person or (owner.get(e.ref) if e.ref is not None else None)
            if who in changed or e.id in twice:  # every version: the first one given wins
                events.append(e)
    return derive_operation(
        Snapshot(before.operation_id, redo, before.groups, events, before.resolutions),
        timeline=False,
        queues=False,
        ordered=ordered,
    ).people


def _previous(
    snap: Snapshot,
    before: Snapshot,
    state: OperationState,
    ordered: bool = False,
    again: dict[str, PersonState] | None = None,
) -> OperationState:
    """``derive_operation(before, queues=False)``, deriving again only the people whose inputs
    changed since ``before`` was taken (``_rederived``, or ``again`` when already computed);
    everyone else's state is the same as in ``state`` = ``derive_operation(snap)``.
    ``tests/reports`` compares the result with a full derivation.
    """
    if again is None:
        again = _rederived(snap, before, ordered)
    return _merged(before.people, state, again)


def _merged(
    people: Iterable[str], state: OperationState, again: dict[str, PersonState]
) -> OperationState:
    """The previous night: ``again`` for the people derived again, ``state``'s for the rest."""
    out = {pid: again[pid] if pid in again else state.people[pid] for pid in sorted(people)}
    return OperationState(out, summarise(out.values()), [], [])


def _changes(now: OperationState, prev: OperationState | None) -> dict[str, str]:
    """person -> ``arrived`` / ``newly_missing`` / ``found`` since the previous cut-off."""
    out: dict[str, str] = {}
    before = prev.people if prev is not None else {}
    for pid, s in now.people.items():
        if s.state == "merged":
            continue
        p = before.get(pid)
        old = p.state if p is not None else None
        if s.state == "arrived" and old != "arrived":
            out[pid] = "arrived"
        elif s.state in UNACCOUNTED and (
            old in ACCOUNTED or (s.state in ("missing", "absent") and old != s.state)
        ):
            out[pid] = "newly_missing"
        elif s.accounted and old in UNACCOUNTED:
            out[pid] = "found"
    return out


@dataclass
class LateFacts:
    """Late records and the states their people would have had with them in time."""

    late: list[EventRec]
    owner: dict[str, str | None]
    touched: set[str]
    corrected: OperationState


def _late_facts(snap: Snapshot, before: Snapshot | None, prev_ms: int | None) -> LateFacts | None:
    """The late records and their people's corrected states (None when there are none)."""
    if prev_ms is None or before is None:
        return None
    received = compress(snap.events, map(operator.ge, map(_RECEIVED, snap.events), repeat(prev_ms)))
    late = [e for e in received if e.captured_ms - e.skew_ms < prev_ms]
    if not late:
        return None
    refs = set(map(_REF, snap.events))
    refs.discard(None)
    # what voids aim at
    by_id = {e.id: e for e in compress(snap.events, map(refs.__contains__, map(_ID, snap.events)))}
    owner = {e.id: e.person or (by_id[e.ref].person if e.ref in by_id else None) for e in late}
    roots = merge_roots(before.resolutions)
    touched = {p for p in owner.values() if p}
    touched |= {roots.get(p, p) for p in touched}
    touched |= {dup for dup, root in roots.items() if root in touched}
    aimed = {i for i, target in by_id.items() if target.person in touched}
    both = before.events + late
    related = list(  # their events, and the voids of their records
        compress(
            both,
            map(
                operator.or_,
                map(touched.__contains__, map(_PERSON, both)),
                map(aimed.__contains__, map(_REF, both)),
            ),
        )
    )
    corrected = derive_operation(
        Snapshot(
            operation_id=snap.operation_id,
            people={p: rec for p, rec in before.people.items() if p in touched},
            groups=snap.groups,
            events=related,
            resolutions=before.resolutions,
        ),
        timeline=False,
        queues=False,
    )
    return LateFacts(late, owner, touched, corrected)


def _late_rows(
    prev: OperationState | None, facts: LateFacts | None, devices: dict[str, str]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Records captured before the previous cut-off but received after it, and their effect.

    The effect compares each touched person's state as the previous report gave it (``prev``)
    with the state that report would have given had the late records arrived in time
    (``_late_facts``).
    """
    if prev is None or facts is None:
        return [], {"reported": 0, "corrected": 0}
    owner, touched, corrected = facts.owner, facts.touched, facts.corrected
    rows = []
    for e in sorted(facts.late, key=lambda e: (e.received_ms, e.device, e.seq, e.id)):
        pid = owner[e.id]
        was = prev.people.get(pid) if pid else None
        now = corrected.people.get(pid) if pid else None
        rows.append(
            {
                "event": e.id,
                "device": e.device,
                "device_label": devices.get(e.device, ""),
                "seq": e.seq,
                "kind": e.kind,
                "person": pid,
                "group": (now.group if now else None) if pid else e.group,
                "checkpoint": e.checkpoint,
                "captured_utc": iso_utc(e.corrected_ms),
                "received_utc": iso_utc(e.received_ms),
                "reported_state": was.state if was else ("" if pid is None else "not_listed"),
                "corrected_state": now.state if now else "",
            }
        )
    reported = sum(1 for p in touched if p in prev.people and prev.people[p].accounted)
    fixed = sum(1 for p in touched if p in corrected.people and corrected.people[p].accounted)
    return rows, {"reported": reported, "corrected": fixed}


@dataclass
class DeviceFacts:
    """Per device: records received, the newest receive time, and whether seq numbers miss."""

    count: dict[str, int]
    last: dict[str, int]
    gaps: int


@dataclass
class DeviceTally:
    """Per device: records, the newest receive time (at least 0) and the sequence numbers seen;
    tallies of disjoint sets of events add up to the tally of all of them (``add``)."""

    count: dict[str, int] = field(default_factory=dict)
    last: dict[str, int] = field(default_factory=dict)
    seqs: dict[str, set[int]] = field(default_factory=dict)

    def add(self, other: DeviceTally) -> DeviceTally:
        for device, n in other.count.items():
            self.count[device] = self.count.get(device, 0) + n
            self.last[device] = max(self.last.get(device, 0), other.last[device])
            self.seqs.setdefault(device, set()).update(other.seqs[device])
        return self

    def facts(self) -> DeviceFacts:
        gaps = sum(1 for s in self.seqs.values() if len(s) < max(s))
        return DeviceFacts(self.count, self.last, gaps)


def _device_tally(events: Iterable[EventRec]) -> DeviceTally:
    """One pass over the events for ``_discrepancies`` (gaps) and ``_silent`` (last contact)."""
    count: dict[str, int] = {}
    last: dict[str, int] = {}
    seqs: dict[str, set[int]] = {}
    for e in events:
        device = e.device
        mine = seqs.get(device)
        if mine is None:
            mine = seqs[device] = set()
            count[device], last[device] = 0, max(0, e.received_ms)
        mine.add(e.seq)
        count[device] += 1
        if e.received_ms > last[device]:
            last[device] = e.received_ms
    return DeviceTally(count, last, seqs)


def _device_facts(events: Iterable[EventRec]) -> DeviceFacts:
    return _device_tally(events).facts()


def _discrepancies(
    op: Operation,
    people: Mapping[str, PersonRec],
    resolutions: Iterable[ResolutionRec],
    state: OperationState,
    cutoff: dt.datetime,
    devices: DeviceFacts,
) -> dict[str, int]:
    """Open discrepancies at the cut-off, by kind (the queues of docs/reconciliation.md).

    ``devices``: ``_device_facts`` of the night's events.
    """
    resolutions = active_resolutions(resolutions)
    dismissed = {str(r.payload.get("key")) for r in resolutions if r.kind == "resolve"}
    accepted = {str(r.person) for r in resolutions if r.kind == "accept_walkin"}
    out = dict.fromkeys(
        (
            "behind_group",
            "walkins",
            "duplicates",
            "route_reversal",
            "two_places",
            "contradictory_status",
            "foreign_void",
            "headcounts",
            "quarantine",
            "gaps",
        ),
        0,
    )
    front: dict[int | None, int] = {}
    for s in state.people.values():
        if s.route_pos is not None and s.accounted:
            front[s.group] = max(front.get(s.group, 0), s.route_pos)
        for c in s.conflicts:
            out[c["kind"]] = out.get(c["kind"], 0) + 1
    for pid, s in state.people.items():
        if s.state in ("checked_in", "needs_assistance") and (s.route_pos or 0) < front.get(
            s.group, 0
        ):
            out["behind_group"] += 1
        if people[pid].source == "walk-in" and pid not in accepted and s.state != "merged":
            out["walkins"] += 1
    out["duplicates"] = len(state.duplicates)
    out["headcounts"] = sum(1 for h in state.headcounts if h["key"] not in dismissed)
    out["quarantine"] = (
        QuarantinedRecord.select()
        .where(
            (QuarantinedRecord.operation == op.id)
            & (QuarantinedRecord.received_at < cutoff)
            & (QuarantinedRecord.released_at.is_null() | (QuarantinedRecord.released_at >= cutoff))
        )
        .count()
    )
    out["gaps"] = devices.gaps
    return out


def _silent(
    op: Operation, cutoff: dt.datetime, hours: float, devices: DeviceFacts
) -> list[dict[str, Any]]:
    """Devices with no records received for more than ``hours`` before the cut-off.

    ``devices``: ``_device_facts`` of the night's events.
    """
    cutoff_ms = to_ms(cutoff)
    last, count = devices.last, devices.count
    out = []
    for d in Device.select(Device.id, Device.label, Device.enrolled_at, Device.revoked_at).where(
        (Device.operation == op.id) & (Device.enrolled_at < cutoff)
    ):
        if d.revoked_at is not None and d.revoked_at < cutoff:
            continue
        did = str(d.id)
        seen = last.get(did, to_ms(d.enrolled_at))
        silent = (cutoff_ms - seen) / 3_600_000
        if silent > hours:
            out.append(
                {
                    "device": did,
                    "label": d.label,
                    "last_contact_utc": iso_utc(seen),
                    "hours_silent": round(silent, 1),
                    "records_received": count.get(did, 0),
                }
            )
    return sorted(out, key=lambda d: (-d["hours_silent"], d["label"], d["device"]))


def _history_point(day: dt.date, totals: dict[str, Any]) -> dict[str, Any]:
    by = totals["by_state"]
    return {
        "date": day.isoformat(),
        "expected": totals["expected"],
        "accounted": totals["accounted"],
        "unaccounted": totals["unaccounted"],
        "arrived": by["arrived"],
        "needs_assistance": by["needs_assistance"],
    }


@dataclass
class PartFacts:
    """One part of a night's people (``parts``), derived on its own; ``_whole`` adds them up."""

    #: The night's states of the part's people.
    people: dict[str, PersonState]
    #: Every headcount (as ``headcount_mismatches`` gives one) and the part's people named near it.
    headcounts: list[dict[str, Any]]
    named: dict[str, int]
    #: The previous night's states of the part's people whose records changed (``_rederived``),
    #: as much of them as is read (``Brief``).
    again: dict[str, Brief]
    late: LateFacts | None
    #: The part's own events (not the shared ones): how many, and their devices.
    events: int
    devices: DeviceTally
    #: Per earlier night whose stored totals are missing: the part's people's states then.
    earlier: list[dict[str, Brief]]


#: Of a state of an earlier night, what a report reads (its group, state and last checkpoint:
#: ``summarise``, ``_changes``, ``_late_rows``); a part in a second process sends back this
#: much instead of whole states (reasons, conflicts, name keys: a third of the pickled bytes).
Brief = tuple[int | None, str, int | None]


def _brief(states: Mapping[str, PersonState]) -> dict[str, Brief]:
    return {pid: (s.group, s.state, s.last_checkpoint) for pid, s in states.items()}


def _unbrief(briefs: Mapping[str, Brief]) -> dict[str, PersonState]:
    """States holding what ``_brief`` kept (the rest at its defaults)."""
    return {
        pid: PersonState(pid, group, state, last_checkpoint=checkpoint)
        for pid, (group, state, checkpoint) in briefs.items()
    }


def _named(
    events: list[EventRec], group_of: Mapping[str, int | None], roots: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Every headcount of ``events`` with the people named near it, by ``headcount_mismatches``
    given counts no headcount can equal (-1): so none is left out as matching."""
    probe = list(events)
    for i in compress(range(len(events)), map("headcount".__eq__, map(_KIND, events))):
        probe[i] = events[i]._replace(count=-1)
    rows = headcount_mismatches(probe, group_of, roots, ordered=True)
    return rows, {r["event"]: r["named"] for r in rows}


def _part(
    frame: parts.Frame,
    info: dict[str, PersonInfo],
    split: parts.Split,
    k: int,
    own: list[EventRec],
    prev_ms: int | None,
    earlier_ms: Sequence[int] = (),
) -> PartFacts:
    """Derive part ``k`` of the people from its events ``own`` (``parts.read_part``) and the
    shared ones: the night, the previous night where their records changed, the late records'
    effect, and earlier nights (their cut-offs ``earlier_ms``) whose totals are missing."""
    # Sorted once: every night derived below takes its events from this list, in order.
    events = unique_sorted(own + frame.shared)
    people = {pid: rec for pid, rec in frame.people.items() if split.of(pid) == k}
    snap = Snapshot(frame.operation_id, people, frame.groups, events, frame.resolutions)
    # No timelines (reports print none); the queues are made whole by ``_whole``.
    night = derive_operation(snap, timeline=False, queues=False, ordered=True).people
    group_of = {pid: s.group for pid, s in night.items()}
    headcounts, named = _named(events, group_of, merge_roots(frame.resolutions))
    again: dict[str, Brief] = {}
    late = None
    if prev_ms is not None:
        before = _sub_snapshot(snap, info, prev_ms)
        again = _brief(_rederived(snap, before, ordered=True))
        late = _late_facts(snap, before, prev_ms)
    earlier = [
        _brief(
            derive_operation(
                _sub_snapshot(snap, info, ms), timeline=False, queues=False, ordered=True
            ).people
        )
        for ms in earlier_ms
    ]
    return PartFacts(night, headcounts, named, again, late, len(own), _device_tally(own), earlier)


def _read_part(
    frame: parts.Frame,
    info: dict[str, PersonInfo],
    split: parts.Split,
    k: int,
    cutoff: dt.datetime,
    prev_ms: int | None,
    earlier_ms: Sequence[int],
) -> PartFacts:
    """``_part`` of part ``k``'s events read from the database: in a second process on a
    connection of its own (rows received before a past cut-off: the same wherever read)."""
    own = parts.read_part(frame.operation_id, cutoff, split, k)
    return _part(frame, info, split, k, own, prev_ms, earlier_ms)


def _sorted_union(states: Iterable[dict[str, T]]) -> dict[str, T]:
    """The parts' states as one dictionary in id order (``derive_operation``'s order)."""
    out: dict[str, T] = {}
    for part in states:
        out.update(part)
    return {pid: out[pid] for pid in sorted(out)}


@dataclass
class Whole:
    """The parts of a night added up: what ``derive_operation`` and ``_side`` would give."""

    state: OperationState
    again: dict[str, PersonState]
    late: LateFacts | None
    devices: DeviceFacts
    events: int
    earlier: list[dict[int | None, dict[str, Any]]]


def _duplicates(frame: parts.Frame) -> list[dict[str, Any]]:
    """The duplicates queue of the night, as ``derive_operation`` makes it (records only)."""
    resolutions = active_resolutions(frame.resolutions)
    dismissed = [str(r.payload.get("key")) for r in resolutions if r.kind == "resolve"]
    return duplicate_pairs(frame.people.values(), merge_roots(frame.resolutions), dismissed)


def _whole(
    frame: parts.Frame, facts: Sequence[PartFacts], duplicates: list[dict[str, Any]]
) -> Whole:
    """Put the parts together: people in id order, headcounts counted over every part (a
    person's records are all in one part, so the distinct people named add up), late records
    once each, devices over every event; ``duplicates``: ``_duplicates(frame)``."""
    people = _sorted_union(f.people for f in facts)
    counted = {e.id: e.count for e in frame.shared if e.kind == "headcount"}
    headcounts = []
    for row in facts[0].headcounts:  # every part has every headcount, in the same order
        named = sum(f.named[row["event"]] for f in facts)
        count = counted[row["event"]]
        if named != count:
            headcounts.append(
                {**row, "counted": count, "named": named, "difference": (count or 0) - named}
            )
    state = OperationState(
        people=people,
        groups=summarise(people.values()),
        duplicates=duplicates,
        headcounts=headcounts,
    )
    late = None
    lates = [f.late for f in facts if f.late is not None]
    if lates:  # shared late records are in every part: once each, owned where their target is
        once: dict[str, EventRec] = {}
        owner: dict[str, str | None] = {}
        for facts_of in lates:
            for e in facts_of.late:
                once.setdefault(e.id, e)
            for eid, who in facts_of.owner.items():
                if owner.get(eid) is None:
                    owner[eid] = who
        late = LateFacts(
            list(once.values()),
            owner,
            set().union(*(x.touched for x in lates)),
            OperationState(_sorted_union(x.corrected.people for x in lates), {}, [], []),
        )
    devices = _device_tally(frame.shared)
    for f in facts:
        devices.add(f.devices)
    earlier = [
        summarise(_unbrief(_sorted_union(f.earlier[i] for f in facts)).values())
        for i in range(len(facts[0].earlier))
    ]
    return Whole(
        state=state,
        again=_unbrief(_sorted_union(f.again for f in facts)),
        late=late,
        devices=devices.facts(),
        events=len(frame.shared) + sum(f.events for f in facts),
        earlier=earlier,
    )


#: Seconds a part's second process may take beyond what this process took for its own part
#: before this process reads and derives that part itself (a child stuck on a lock it
#: inherited, for instance).
PART_GRACE_S = 60.0


def build(
    op: Operation,
    day: dt.date,
    *,
    silent_hours: float,
    history: HistoryLookup,
    workers: int = 1,
) -> ReportData:
    """Compute one night's report for ``op`` from what was received before its cut-off.

    ``workers`` > 1 splits the people into as many parts, each read and derived in a process
    of its own (``parts``, ``server.forked``); the report is the same with any number.
    """
    cutoff = nights.cutoff_utc(op, day)
    cutoff_ms = to_ms(cutoff)
    prev_day = nights.previous_night(op, day)
    prev_ms = to_ms(nights.cutoff_utc(op, prev_day)) if prev_day else None
    frame = parts.read_frame(op.id, cutoff)
    people = parts.people_info(op.id, cutoff)
    first = nights.first_day(op)
    earlier_days = [  # the nights before the previous one, for the chart
        first + dt.timedelta(days=i) for i in range(((prev_day or first) - first).days)
    ]
    stored = {d: history(d) for d in earlier_days}  # their totals when stored, else derived
    missing = [d for d in earlier_days if stored[d] is None]
    earlier_ms = [to_ms(nights.cutoff_utc(op, d)) for d in missing]
    split = parts.split(frame, workers)
    work = functools.partial(
        _read_part, frame, people, split, cutoff=cutoff, prev_ms=prev_ms, earlier_ms=earlier_ms
    )
    others = [
        forked.start(functools.partial(work, k), workers=workers, connect=True)
        for k in range(1, split.count)
    ]
    started = time.monotonic()
    facts = [work(0)]
    grace = PART_GRACE_S + 2 * (time.monotonic() - started)
    duplicates = _duplicates(frame)  # while the other parts may still be at work
    facts += [other.result(timeout=grace) for other in others]
    whole = _whole(frame, facts, duplicates)
    state = whole.state
    derived = dict(zip(missing, map(_totals, whole.earlier), strict=True))
    prev = None
    if prev_ms is not None:
        then = (pid for pid in frame.people if people[pid].entry_ms < prev_ms)  # _sub_snapshot's
        prev = _merged(then, state, whole.again)
    devices = {
        str(i): label
        for i, label in tuples(
            Device.select(Device.id, Device.label).where(Device.operation == op.id)
        )
    }
    group_names: dict[int | None, str] = {
        g.id: g.name for g in Group.select().where(Group.operation == op.id)
    }
    checkpoint_names = {
        c.id: c.name for c in Checkpoint.select().where(Checkpoint.operation == op.id)
    }
    late, late_effect = _late_rows(prev, whole.late, devices)
    changes = _changes(state, prev)
    totals = _totals(state.groups)
    groups = []
    gids = sorted(state.groups.keys() | frame.groups.keys(), key=lambda g: (g is None, g or 0))
    for gid in gids:
        g = state.groups.get(gid) or {
            "records": 0,
            "expected": 0,
            "accounted": 0,
            "unaccounted": 0,
            "by_state": dict.fromkeys(STATES, 0),
            "by_checkpoint": {},
        }
        rec = frame.groups.get(gid) if gid is not None else None
        route = list(rec.route) if rec else []
        extra = sorted(int(c) for c in g["by_checkpoint"] if int(c) not in route)
        groups.append(
            {
                "group": gid,
                "name": group_names.get(gid, ""),
                "planned_size": rec.expected_size if rec else 0,
                "records": g["records"],
                "expected": g["expected"],
                "accounted": g["accounted"],
                "unaccounted": g["unaccounted"],
                "by_state": g["by_state"],
                "by_checkpoint": [
                    {"checkpoint": cp, "count": g["by_checkpoint"].get(str(cp), 0)}
                    for cp in route + extra
                ],
            }
        )
    points = [_history_point(d, stored[d] or derived[d]) for d in earlier_days]
    if prev is not None and prev_day is not None:
        points.append(_history_point(prev_day, _totals(prev.groups)))
    points.append(_history_point(day, totals))
    local = nights.cutoff_local(op, day)
    summary: dict[str, Any] = {
        "format": FORMAT,
        "operation": {"id": op.id, "name": op.name, "timezone": op.timezone},
        "date": day.isoformat(),
        "cutoff_local": local.isoformat(),
        "cutoff_utc": iso_utc(cutoff_ms),
        "previous_cutoff_utc": iso_utc(prev_ms),
        "totals": totals,
        "groups": groups,
        "checkpoints": {str(k): v for k, v in sorted(checkpoint_names.items())},
        "changes": {
            kind: sum(1 for v in changes.values() if v == kind)
            for kind in ("arrived", "newly_missing", "found")
        },
        "needs_assistance": totals["by_state"]["needs_assistance"],
        "discrepancies": _discrepancies(
            op, frame.people, frame.resolutions, state, cutoff, whole.devices
        ),
        "late": {
            "count": len(late),
            "people_changed": sum(
                1 for r in late if r["person"] and r["reported_state"] != r["corrected_state"]
            ),
            "accounted_at_previous_cutoff": late_effect,
        },
        "silent_devices": {
            "hours": silent_hours,
            "devices": _silent(op, cutoff, silent_hours, whole.devices),
        },
        "history": points,
        "events_counted": whole.events,  # each event once: ids are unique in the database
    }
    return ReportData(
        summary=summary,
        state=state,
        people=people,
        changes=changes,
        late=late,
        group_names=group_names,
        checkpoint_names=checkpoint_names,
    )


def local_text(op: Operation, ms: int | None) -> str:
    """Epoch milliseconds as ``YYYY-MM-DD HH:MM`` in the operation's time zone."""
    if ms is None:
        return ""
    when = dt.datetime.fromtimestamp(ms // 1000, dt.UTC).astimezone(nights.zone(op))
    return when.strftime("%Y-%m-%d %H:%M")


def unseen_groups(data: ReportData) -> dict[int, int]:
    """Groups no one of which has been seen at a checkpoint yet -> their people not seen.

    Early in an operation most people are "not seen" only because their group has not left
    yet; the printed reports count those per group instead of listing every name.
    """
    seen = {s.group for s in data.state.people.values() if s.last_seen_ms is not None}
    out: dict[int, int] = {}
    for s in data.state.people.values():
        if s.state == "not_seen" and s.group is not None and s.group not in seen:
            out[s.group] = out.get(s.group, 0) + 1
    return out


def missing_people(data: ReportData, op: Operation) -> list[dict[str, str]]:
    """People not accounted for at the cut-off, with what the ministry needs to find them.

    All but the people of ``unseen_groups`` (counted, not listed).
    """
    unseen = unseen_groups(data)
    rows = [
        {
            "name": data.people[pid].full_name,
            "group": data.group_names.get(s.group, ""),
            "state": s.state,
            "last_checkpoint": data.checkpoint_names.get(s.last_checkpoint or -1, ""),
            "last_seen": local_text(op, s.last_seen_ms),
            "id": pid,
        }
        for pid, s in data.state.people.items()
        if s.state in UNACCOUNTED and not (s.state == "not_seen" and s.group in unseen)
    ]
    return sorted(rows, key=lambda r: (r["group"], r["name"], r["id"]))


def assistance_people(data: ReportData, op: Operation) -> list[dict[str, str]]:
    """People needing assistance (an open medical, injured or vulnerable flag)."""
    rows = [
        {
            "name": data.people[pid].full_name,
            "group": data.group_names.get(s.group, ""),
            "flags": ", ".join(s.flags),
            "last_checkpoint": data.checkpoint_names.get(s.last_checkpoint or -1, ""),
            "last_seen": local_text(op, s.last_seen_ms),
            "id": pid,
        }
        for pid, s in data.state.people.items()
        if s.state == "needs_assistance"
    ]
    return sorted(rows, key=lambda r: (r["group"], r["name"], r["id"]))
