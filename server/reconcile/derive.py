"""The pure core of reconciliation: events and resolutions in, per-person state out.

Nothing here touches the database, the clock or Flask, so the same functions serve ingest
(a few people at a time), ``muster-server rebuild`` and the nightly report (a frozen snapshot).

Events form a grow-only set. Every function first drops duplicate ids and sorts by
``(corrected capture time, device, seq, event id)``, so arrival order, batching and repetition
never change a result. The corrected time is the device's capture time minus the clock skew the
server measured when the event arrived. A void retracts an earlier event of the *same* device;
a void aimed at another device's event retracts nothing and is reported as a conflict.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

#: Every reconciliation state, and how each counts towards a group's expected size.
ACCOUNTED = ("checked_in", "arrived", "needs_assistance", "confirmed", "left")
UNACCOUNTED = ("not_seen", "absent", "missing")
STATES = (*ACCOUNTED, *UNACCOUNTED, "merged")

POSITIVE_STATUSES = ("present", "boarded", "crossed", "arrived")
#: Flags that put a person in ``needs_assistance`` until voided.
ASSISTANCE_FLAGS = ("medical", "injured", "vulnerable")

#: Resolution kinds; which ones concern one person (and so may carry based_on_version).
RESOLUTION_KINDS = (
    "confirm",
    "declare_missing",
    "merge",
    "resolve",
    "move",
    "accept_walkin",
    "release_quarantine",
    "revert",
)
PERSON_KINDS = ("confirm", "declare_missing", "merge", "resolve", "move", "accept_walkin")

#: Two observations of one person closer than this at different checkpoints: "two places".
TWO_PLACES_WINDOW_MS = 10 * 60 * 1000
#: Contradictory statuses from two devices at one checkpoint within this window.
CONTRADICTION_WINDOW_MS = 30 * 60 * 1000
#: A headcount is compared with named check-ins this close in time at the same checkpoint.
HEADCOUNT_WINDOW_MS = 30 * 60 * 1000
#: Open conflicts kept per person, the first by key: a person seen back and forth between
#: checkpoints by several devices pairs up quadratically (hundreds of pairs, tens of KB of
#: state rewritten on every event). Twenty say "look at this timeline" as well as four hundred;
#: resolving some brings the next ones up. Keeping the smallest keys commutes with adding
#: events, so folding (``Prior``) stays equal to deriving from the whole history.
MAX_OPEN_CONFLICTS = 20


class EventRec(NamedTuple):
    """One accepted event, as reconciliation needs it.

    A named tuple rather than a frozen dataclass: ingest, rebuild and the nightly report make
    one per stored event, and a tuple is built several times faster.
    """

    id: str
    device: str
    seq: int
    kind: str
    captured_ms: int
    skew_ms: int = 0
    person: str | None = None
    checkpoint: int | None = None
    group: int | None = None
    status: str | None = None
    method: str | None = None
    author: str = ""
    count: int | None = None  # type: ignore[assignment]  # shadows tuple.count; never called
    ref: str | None = None
    flag: str | None = None
    received_ms: int = 0
    time_flag: str | None = None

    @property
    def corrected_ms(self) -> int:
        return self.captured_ms - self.skew_ms

    @property
    def order(self) -> tuple[int, str, int, str]:
        return (self.corrected_ms, self.device, self.seq, self.id)


@dataclass(frozen=True)
class ResolutionRec:
    """One staff resolution; ``payload`` holds ids only (person, into, group, key, record)."""

    id: str
    kind: str
    at_ms: int
    person: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
    actor: str = ""
    reason: str = ""

    @property
    def order(self) -> tuple[int, str]:
        return (self.at_ms, self.id)


@dataclass(frozen=True)
class PersonRec:
    """A person record: its roster group, source and the keys used to spot duplicates."""

    id: str
    group: int | None = None
    source: str = "roster"
    document_key: str = ""
    birth_date: str | None = None
    name_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupRec:
    id: int
    name: str = ""
    expected_size: int = 0
    route: tuple[int, ...] = ()


@dataclass
class PersonState:
    """What reconciliation knows about one person record."""

    person: str
    group: int | None
    state: str
    reason: str = ""
    last_checkpoint: int | None = None
    last_seen_ms: int | None = None
    route_pos: int | None = None
    merged_into: str | None = None
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    name_keys: list[str] = field(default_factory=list)
    event_count: int = 0
    #: The first observation at the furthest route position reached (route reversals are
    #: reported against it); stored so ingest can fold later events in without the history.
    furthest: str | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)

    @property
    def accounted(self) -> bool:
        return self.state in ACCOUNTED

    def comparable(self) -> dict[str, Any]:
        """The stored fields (everything but the timeline), for digests and equality tests."""
        return {
            "person": self.person,
            "group": self.group,
            "state": self.state,
            "reason": self.reason,
            "last_checkpoint": self.last_checkpoint,
            "last_seen_ms": self.last_seen_ms,
            "route_pos": self.route_pos,
            "merged_into": self.merged_into,
            "conflicts": self.conflicts,
            "flags": self.flags,
            "name_keys": self.name_keys,
            "event_count": self.event_count,
            "furthest": self.furthest,
        }

    def encoded(self) -> tuple[str, str, str]:
        """The JSON text of ``conflicts``, ``flags`` and ``name_keys``, as they are stored."""
        return (
            json.dumps(self.conflicts, sort_keys=True) if self.conflicts else "[]",
            json.dumps(self.flags) if self.flags else "[]",
            json.dumps(self.name_keys, ensure_ascii=False) if self.name_keys else "[]",
        )

    def version_of(self, encoded: tuple[str, str, str]) -> str:
        """The version, given :meth:`encoded` (ingest stores both and encodes once)."""
        raw = "\x1f".join(
            (
                self.person,
                str(self.group),
                self.state,
                self.reason,
                str(self.last_checkpoint),
                str(self.last_seen_ms),
                str(self.route_pos),
                str(self.merged_into),
                *encoded,
                str(self.event_count),
            )
        )
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    @property
    def version(self) -> str:
        """A digest of the stored fields: equal states have equal versions, on any backend."""
        return self.version_of(self.encoded())


#: Field getters for passes that run in C (``map``) over a million events.
_ID = operator.attrgetter("id")
_KIND = operator.attrgetter("kind")
_CAPTURED = operator.attrgetter("captured_ms")
_SKEW = operator.attrgetter("skew_ms")


def unique_sorted(events: Iterable[EventRec]) -> list[EventRec]:
    """Drop repeated event ids and sort in the one deterministic order."""
    if not isinstance(events, list):
        events = list(events)
    if len(events) < 1000:
        by_id: dict[str, EventRec] = {}
        for e in events:
            by_id.setdefault(e.id, e)
        # ``EventRec.order`` spelled out: two property calls less per event.
        return sorted(
            by_id.values(), key=lambda e: (e.captured_ms - e.skew_ms, e.device, e.seq, e.id)
        )
    # Many events (a whole operation): the first of each id (a dict keeps the last value given
    # for a key, so the list goes in backwards; its order does not matter, ids being unique
    # after), sorted by corrected time alone, an integer sort of indices, then each run of
    # equal times put in (device, seq, id) order. Same result; the passes run in C.
    ids = list(map(_ID, events))
    values = (
        events
        if len(set(ids)) == len(ids)
        else list(dict(zip(reversed(ids), reversed(events), strict=True)).values())
    )
    del ids
    at = list(map(operator.sub, map(_CAPTURED, values), map(_SKEW, values)))
    order = sorted(range(len(values)), key=at.__getitem__)
    out = list(map(values.__getitem__, order))
    times = list(map(at.__getitem__, order))
    del at, order
    ties = [i for i in range(1, len(times)) if times[i] == times[i - 1]]
    k = 0
    while k < len(ties):
        start = end = ties[k]
        while k + 1 < len(ties) and ties[k + 1] == end + 1:
            k += 1
            end += 1
        out[start - 1 : end + 1] = sorted(
            out[start - 1 : end + 1], key=lambda e: (e.device, e.seq, e.id)
        )
        k += 1
    return out


def active_resolutions(resolutions: Iterable[ResolutionRec]) -> list[ResolutionRec]:
    """Resolutions not undone by a ``revert``, deduplicated and in (time, id) order."""
    by_id = {r.id: r for r in resolutions}
    reverted = {str(r.payload.get("resolution")) for r in by_id.values() if r.kind == "revert"}
    return sorted(
        (r for r in by_id.values() if r.id not in reverted and r.kind != "revert"),
        key=lambda r: r.order,
    )


def retractions(events: Sequence[EventRec]) -> tuple[set[str], list[EventRec]]:
    """Ids retracted by same-device voids, and the voids that aimed at another device's event."""
    # Most people have no void: a pass in C finds that, and only voids' targets are mapped.
    if "void" not in map(_KIND, events):
        return set(), []
    voids = [e for e in events if e.kind == "void" and e.ref is not None]
    refs = {v.ref for v in voids}
    by_id = {e.id: e for e in events if e.id in refs}  # the last of a repeated id, as before
    retracted: set[str] = set()
    foreign: list[EventRec] = []
    for e in voids:
        target = by_id.get(e.ref)  # type: ignore[arg-type]
        if target is None or target.kind == "void":
            continue
        if target.device == e.device:
            retracted.add(target.id)
        else:
            foreign.append(e)
    return retracted, foreign


def merge_roots(resolutions: Iterable[ResolutionRec]) -> dict[str, str]:
    """Map each merged duplicate to the root record of its chain (cycles cannot be stored)."""
    links = {
        str(r.person): str(r.payload["into"])
        for r in active_resolutions(resolutions)
        if r.kind == "merge" and r.person
    }
    roots: dict[str, str] = {}
    for dup in links:
        node, seen = dup, {dup}
        while node in links and links[node] not in seen:
            node = links[node]
            seen.add(node)
        roots[dup] = node
    return roots


@dataclass(frozen=True)
class Prior:
    """What a person's stored state says about events that are not passed in again.

    Ingest folds new events into a stored state without reading the person's whole history
    when that gives the same result (see ``server/reconcile/store.py``): it passes the new
    events, the earlier observations close enough in time to pair with them, the furthest
    observation and the voids aimed at those; ``Prior`` carries the rest (their flags, their
    conflicts and how many they were). Only for a person with no resolutions and no merges,
    and new events that are check-ins or walk-ins later than every earlier observation.
    Conflicts found among the earlier events alone are already in ``conflicts`` (and one found
    in a partial history could be wrong), so only those naming a ``fresh`` event are added.
    """

    fresh: frozenset[str]
    flags: tuple[str, ...] = ()
    conflicts: tuple[dict[str, Any], ...] = ()
    #: Events of the person that are in the stored state but not among those passed in.
    event_count: int = 0


#: Earlier observations this close before the first new one can pair with it in a conflict.
FOLD_WINDOW_MS = max(TWO_PLACES_WINDOW_MS, CONTRADICTION_WINDOW_MS)
#: Kinds of new events that may be folded in. Flags are not, though folding them would be
#: simple: a derivation may read events whose backlog rows are not drained yet (a push
#: commits while a drain or a resolution derives the person on PostgreSQL; a deriver round
#: takes only the first rows), and draining such an event later must derive the person
#: again rather than count it twice. An observation already in a state is never later than
#: its last one, so it is refused below; a flag has no such tell.
FOLDABLE_KINDS = ("checkin", "walkin")


def can_fold(
    last_seen_ms: int | None, furthest: str | None, new_events: Iterable[EventRec]
) -> bool:
    """Whether new events can be folded into a stored state (see :class:`Prior`).

    The stored state must know its furthest observation (or have none at all), and every new
    event must be a check-in or walk-in later than the last stored observation.
    """
    if last_seen_ms is not None and furthest is None:
        return False  # observed only off-route, or stored before furthest was kept
    for e in new_events:
        if e.kind not in FOLDABLE_KINDS or e.ref is not None:
            return False
        if e.kind != "flag" and last_seen_ms is not None and e.corrected_ms <= last_seen_ms:
            return False
    return True


def fold_window_start(last_seen_ms: int | None, new_events: Iterable[EventRec]) -> int | None:
    """Earlier observations from this corrected time on are read again when folding: those
    that can pair with a new one in a conflict, and the last one (it decides the state when
    the new events are only flags). None: there is no earlier observation to read."""
    first = min((e.corrected_ms for e in new_events if e.kind != "flag"), default=None)
    if last_seen_ms is None:
        return None
    if first is None:
        return last_seen_ms
    return min(first - FOLD_WINDOW_MS, last_seen_ms)


def _observation_state(e: EventRec, route: tuple[int, ...]) -> str:
    if e.status == "left":
        return "left"
    if e.status == "absent":
        return "absent"
    if e.status == "arrived" or (route and e.checkpoint == route[-1]):
        return "arrived"
    return "checked_in"


@functools.lru_cache(maxsize=1024)
def _positions(route: tuple[int, ...]) -> dict[int, int]:
    """checkpoint -> its 1-based position on ``route``, made once per route (``_conflicts``
    runs once per person); shared, so never changed by callers."""
    return {cp: i for i, cp in enumerate(route, start=1)}


def _conflicts(
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

    position = (
        _positions(route)
        if type(route) is tuple
        else {cp: i for i, cp in enumerate(route, start=1)}
    )
    furthest: EventRec | None = None
    far = 0  # the route position of ``furthest``
    for e in observations:
        pos = position.get(e.checkpoint or -1)
        if pos is None or e.status in ("absent", "left"):
            continue
        if furthest is not None and pos < far:
            add("route_reversal", furthest, e)
        if furthest is None or pos > far:
            furthest, far = e, pos
    n = len(observations)
    if n > 1:
        # Observations are in corrected-time order: each is paired with the next ones until
        # they are further apart than either window (times computed once, no list slices).
        times = [e.captured_ms - e.skew_ms for e in observations]
        for i in range(n - 1):
            a, start = observations[i], times[i]
            for j in range(i + 1, n):
                gap = times[j] - start
                if gap > FOLD_WINDOW_MS:  # max(TWO_PLACES_WINDOW_MS, CONTRADICTION_WINDOW_MS)
                    break
                b = observations[j]
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


def _contradict(a: str | None, b: str | None) -> bool:
    pair = {a, b}
    return "absent" in pair and bool(pair & set(POSITIVE_STATUSES))


def derive_person(
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
    retracted, foreign = retractions(ordered)
    mine = active_resolutions(resolutions) if resolutions else []  # most people have none
    members = {person.id, *members}
    if retracted:
        live = [e for e in ordered if e.id not in retracted and e.person in members]
    else:
        live = [e for e in ordered if e.person in members]
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
    state.event_count = sum(1 for e in ordered if e.person in members) if retracted else len(live)
    if foreign:
        theirs = {x.id for x in ordered if x.person in members}
        voids_here = [e for e in foreign if e.ref in theirs]
    else:
        voids_here = []
    state.conflicts, state.furthest = _conflicts(observations, voids_here, route)
    if prior is not None:
        state.event_count += prior.event_count
        merged = {c["key"]: c for c in prior.conflicts}
        merged.update(
            (c["key"], c) for c in state.conflicts if not prior.fresh.isdisjoint(c["events"])
        )
        state.conflicts = sorted(merged.values(), key=lambda c: c["key"])
    if mine:
        resolved = {
            str(r.payload.get("key"))
            for r in mine
            if r.kind == "resolve" and str(r.person) == person.id
        }
        state.conflicts = [c for c in state.conflicts if c["key"] not in resolved]
    del state.conflicts[MAX_OPEN_CONFLICTS:]
    # Flags are the live events that are not observations (when there are any such).
    flags = (
        {e.flag for e in live if e.kind == "flag" and e.flag}
        if len(observations) < len(live)
        else set()
    )
    state.flags = sorted(flags | set(prior.flags) if prior else flags)
    decisive: list[tuple[tuple[int, str], str, str]] = []
    if observations:
        last = observations[-1]
        at = last.captured_ms - last.skew_ms
        state.last_checkpoint, state.last_seen_ms = last.checkpoint, at
        state.route_pos = route.index(last.checkpoint) + 1 if last.checkpoint in route else None
        # The observation with the greatest (corrected time, id): among the last ones, which
        # share the greatest corrected time (observations are in corrected-time order).
        top = last
        for k in range(len(observations) - 2, -1, -1):
            e = observations[k]
            if e.captured_ms - e.skew_ms != at:
                break
            if e.id > top.id:
                top = e
        decisive.append(
            ((at, top.id), _observation_state(top, route), f"checkpoint {top.checkpoint}")
        )
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
    if (
        state.flags
        and state.state in ("checked_in", "arrived", "confirmed")
        and set(state.flags) & set(ASSISTANCE_FLAGS)
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


def _timeline_item(e: EventRec, retracted: bool) -> dict[str, Any]:
    return {
        "type": "event",
        "id": e.id,
        "kind": e.kind,
        "at_ms": e.corrected_ms,
        "captured_ms": e.captured_ms,
        "received_ms": e.received_ms,
        "device": e.device,
        "seq": e.seq,
        "author": e.author,
        "person": e.person,
        "checkpoint": e.checkpoint,
        "status": e.status,
        "method": e.method,
        "flag": e.flag,
        "count": e.count,
        "ref": e.ref,
        "time_flag": e.time_flag,
        "retracted": retracted,
    }


def duplicate_pairs(
    people: Iterable[PersonRec], roots: Mapping[str, str], dismissed: Iterable[str] = ()
) -> list[dict[str, Any]]:
    """Probable duplicates: the same document key, or the same name key and birth date.

    Score = 1 - product of (1 - weight) over the matching evidence: document 0.9, name 0.6,
    birth date 0.5. Records merged into another, and dismissed pairs, are left out.
    """
    # A record merged into another speaks through its primary; pairs are between primaries.
    people = sorted(
        (p for p in {p.id: p for p in people}.values() if p.id not in roots), key=lambda p: p.id
    )
    buckets: dict[str, list[PersonRec]] = {}
    for p in people:
        if p.document_key:
            buckets.setdefault("d:" + p.document_key, []).append(p)
        if p.birth_date:
            for key in p.name_keys:
                buckets.setdefault(f"n:{key}:{p.birth_date}", []).append(p)
    skip = set(dismissed)
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for members in buckets.values():
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                if a.id == b.id:
                    continue
                pair = (a.id, b.id) if a.id < b.id else (b.id, a.id)
                if pair in pairs:
                    continue
                evidence = []
                if a.document_key and a.document_key == b.document_key:
                    evidence.append("document_key")
                if set(a.name_keys) & set(b.name_keys):
                    evidence.append("name_key")
                if a.birth_date and a.birth_date == b.birth_date:
                    evidence.append("birth_date")
                miss = 1.0
                for name, weight in (("document_key", 0.9), ("name_key", 0.6), ("birth_date", 0.5)):
                    if name in evidence:
                        miss *= 1 - weight
                key = f"duplicate:{pair[0]}:{pair[1]}"
                if key not in skip:
                    pairs[pair] = {
                        "key": key,
                        "people": list(pair),
                        "score": round(1 - miss, 2),
                        "evidence": evidence,
                    }
    return sorted(pairs.values(), key=lambda d: (-d["score"], d["key"]))


def headcount_mismatches(
    events: Iterable[EventRec],
    group_of: Mapping[str, int | None],
    roots: Mapping[str, str],
    window_ms: int = HEADCOUNT_WINDOW_MS,
    *,
    ordered: bool = False,
) -> list[dict[str, Any]]:
    """Headcounts whose number differs from the named people checked in near them.

    Named = distinct people (merged duplicates count once) of the counted group with a positive
    check-in or walk-in at the same checkpoint within ``window_ms`` of the count.
    ``ordered=True`` says ``events`` already went through ``unique_sorted`` (saves a sort).
    """
    events = events if ordered and isinstance(events, list) else unique_sorted(events)
    # Same-device voids retract their target (``retractions``, without a map of every event).
    voids = [e for e in events if e.kind == "void" and e.ref is not None]
    retracted: set[str] = set()
    if voids:
        refs = {v.ref for v in voids}
        targets = {e.id: e for e in events if e.id in refs}
        for v in voids:
            target = targets.get(v.ref)  # type: ignore[arg-type]
            if target is not None and target.kind != "void" and target.device == v.device:
                retracted.add(target.id)
    # Candidates bucketed by (checkpoint, group), in corrected-time order (``events`` is sorted
    # by it); the headcounts of a bucket slide a window over it, counting people as they enter
    # and leave, so the cost is events + headcounts, not their product.
    buckets: dict[tuple[int | None, int | None], list[EventRec]] = {}
    counts_of: dict[tuple[int | None, int | None], list[EventRec]] = {}
    counts: list[EventRec] = []
    for e in events:
        kind = e.kind
        if kind == "checkin" or kind == "walkin":
            if e.person and (kind == "walkin" or e.status in POSITIVE_STATUSES):
                if e.id in retracted:
                    continue
                key = (e.checkpoint, group_of.get(e.person))
                bucket = buckets.get(key)
                if bucket is None:
                    buckets[key] = [e]
                else:
                    bucket.append(e)
        elif kind == "headcount" and e.id not in retracted:
            counts.append(e)
            counts_of.setdefault((e.checkpoint, e.group), []).append(e)
    named_of: dict[str, int] = {}
    for key, hs in counts_of.items():
        seen = buckets.get(key, [])
        inside: dict[str, int] = {}
        lo = hi = 0
        for h in sorted(hs, key=lambda h: h.corrected_ms):
            while hi < len(seen) and seen[hi].corrected_ms <= h.corrected_ms + window_ms:
                root = roots.get(seen[hi].person, seen[hi].person)  # type: ignore[arg-type]
                inside[root] = inside.get(root, 0) + 1  # type: ignore[index]
                hi += 1
            while lo < hi and seen[lo].corrected_ms < h.corrected_ms - window_ms:
                root = roots.get(seen[lo].person, seen[lo].person)  # type: ignore[arg-type]
                inside[root] -= 1  # type: ignore[index]
                if not inside[root]:  # type: ignore[index]
                    del inside[root]  # type: ignore[arg-type]
                lo += 1
            named_of[h.id] = len(inside)
    out = []
    for h in counts:
        named = named_of[h.id]
        if named != h.count:
            out.append(
                {
                    "key": f"headcount:{h.id}",
                    "event": h.id,
                    "group": h.group,
                    "checkpoint": h.checkpoint,
                    "counted": h.count,
                    "named": named,
                    "difference": (h.count or 0) - named,
                    "at_ms": h.corrected_ms,
                }
            )
    return out


@dataclass
class Snapshot:
    """Everything reconciliation reads, frozen: what the nightly report derives from."""

    operation_id: int
    people: dict[str, PersonRec]
    groups: dict[int, GroupRec]
    events: list[EventRec]
    resolutions: list[ResolutionRec]


@dataclass
class OperationState:
    """Every person's state, per-group summaries and the cross-person queues."""

    people: dict[str, PersonState]
    groups: dict[int | None, dict[str, Any]]
    duplicates: list[dict[str, Any]]
    headcounts: list[dict[str, Any]]


def summarise(states: Iterable[PersonState]) -> dict[int | None, dict[str, Any]]:
    """Per group: records, expected (records not merged away), accounted, by state."""
    out: dict[int | None, dict[str, Any]] = {}
    for s in states:
        g = out.get(s.group)
        if g is None:
            g = out[s.group] = {
                "records": 0,
                "expected": 0,
                "accounted": 0,
                "unaccounted": 0,
                "by_state": dict.fromkeys(STATES, 0),
                "by_checkpoint": {},
            }
        g["records"] += 1
        g["by_state"][s.state] += 1
        if s.state == "merged":
            continue
        g["expected"] += 1
        if s.accounted:
            g["accounted"] += 1
            if s.last_checkpoint is not None:
                cp = str(s.last_checkpoint)
                g["by_checkpoint"][cp] = g["by_checkpoint"].get(cp, 0) + 1
        else:
            g["unaccounted"] += 1
    return out


def derive_operation(
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
    listed = by_person.get
    for e in events:
        owner = e.person or (owner_of.get(e.ref) if e.ref is not None else None)
        if owner:
            mine = listed(owner)
            if mine is None:
                by_person[owner] = [e]
            else:
                mine.append(e)
    # A merged record's events count for its root too: the root's list is the union of its
    # cluster's lists, in the same order (each is a subsequence of ``events``, whose order is
    # strict: ids are unique).
    own = {pid: by_person.get(pid, ()) for r, c in clusters.items() for pid in (r, *c)}
    for root, cluster in clusters.items():
        union = [e for pid in (root, *cluster) for e in own[pid]]
        if union:
            union.sort(key=lambda e: (e.captured_ms - e.skew_ms, e.device, e.seq, e.id))
            by_person[root] = union
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
        people[pid] = derive_person(
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
