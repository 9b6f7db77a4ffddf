"""What a night's report says, computed from frozen snapshots (no wall clock anywhere).

The night's state is ``derive_operation`` of what was received before the cut-off; the previous
night's is derived from the same loaded events filtered by the previous cut-off, so the database
is read once per report. ``summary`` holds counts and ids only (no names); names live in
``people`` and are written only to the restricted file and to the lists the ministry needs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import operator
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from typing import Any

from server.db import database, tuples
from server.models import Checkpoint, Device, Group, Operation, Person, QuarantinedRecord
from server.reconcile.derive import (
    ACCOUNTED,
    STATES,
    UNACCOUNTED,
    EventRec,
    OperationState,
    PersonState,
    ResolutionRec,
    Snapshot,
    active_resolutions,
    derive_operation,
    merge_roots,
    summarise,
    unique_sorted,
)
from server.reconcile.store import _uid, epoch_us_sql, load_snapshot, ms_of_us, to_ms
from server.reports import beside, nights

FORMAT = "muster-report/1"
#: Field getters: the passes over every event below run in C (``map``, ``compress``).
_ID = operator.attrgetter("id")
_PERSON = operator.attrgetter("person")
_REF = operator.attrgetter("ref")
_RECEIVED = operator.attrgetter("received_ms")
#: Earlier nights' totals for the chart: date -> totals, from stored reports when present.
HistoryLookup = Callable[[dt.date], dict[str, Any] | None]


@dataclass
class PersonInfo:
    """The person details a report prints: as of generation (see docs/reports.md)."""

    id: str
    external_id: str
    full_name: str
    entry_ms: int


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


def _people(operation_id: int, cutoff: dt.datetime) -> dict[str, PersonInfo]:
    """The person records entered before ``cutoff``: one plain query (100,000 rows)."""
    param = database.obj.param
    entry = epoch_us_sql('"entry_date"')
    rows = database.execute_sql(
        f'SELECT CAST("id" AS TEXT), "external_id", "full_name", {entry} FROM "person" '
        f'WHERE "operation_id" = {param} AND "entry_date" < {param}',
        [operation_id, Person.entry_date.db_value(cutoff)],
    ).fetchall()
    out = {}
    for pid, ext, name, entry_us in rows:
        text = str(_uid(pid))
        out[text] = PersonInfo(text, ext or "", name, ms_of_us(entry_us))
    return out


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


def _device_facts(events: Sequence[EventRec]) -> DeviceFacts:
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
    return DeviceFacts(count, last, sum(1 for s in seqs.values() if len(s) < max(s)))


def _discrepancies(
    op: Operation,
    snap: Snapshot,
    state: OperationState,
    cutoff: dt.datetime,
    devices: DeviceFacts | None = None,
) -> dict[str, int]:
    """Open discrepancies at the cut-off, by kind (the queues of docs/reconciliation.md).

    ``devices``: ``_device_facts(snap.events)``, when already computed.
    """
    resolutions = active_resolutions(snap.resolutions)
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
        if snap.people[pid].source == "walk-in" and pid not in accepted and s.state != "merged":
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
    out["gaps"] = (devices or _device_facts(snap.events)).gaps
    return out


def _silent(
    op: Operation,
    snap: Snapshot,
    cutoff: dt.datetime,
    hours: float,
    devices: DeviceFacts | None = None,
) -> list[dict[str, Any]]:
    """Devices with no records received for more than ``hours`` before the cut-off.

    ``devices``: ``_device_facts(snap.events)``, when already computed.
    """
    cutoff_ms = to_ms(cutoff)
    facts = devices or _device_facts(snap.events)
    last, count = facts.last, facts.count
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
class SideFacts:
    """What ``build`` computes beside the night's derivation (in a second process if any)."""

    again: dict[str, PersonState]
    late: LateFacts | None
    devices: DeviceFacts


def _side(snap: Snapshot, people: dict[str, PersonInfo], prev_ms: int | None) -> SideFacts:
    """The previous night's people whose records changed (``_rederived``), ``_late_facts`` and
    ``_device_facts``: everything of a report that needs the snapshot but not the night."""
    devices = _device_facts(snap.events)
    if prev_ms is None:
        return SideFacts({}, None, devices)
    before = _sub_snapshot(snap, people, prev_ms)
    again = _rederived(snap, before, ordered=True)
    return SideFacts(again, _late_facts(snap, before, prev_ms), devices)


def build(
    op: Operation,
    day: dt.date,
    *,
    silent_hours: float,
    history: HistoryLookup,
    workers: int = 1,
) -> ReportData:
    """Compute one night's report for ``op`` from what was received before its cut-off.

    ``workers`` > 1 lets a second process derive the previous night meanwhile (``beside``).
    """
    cutoff = nights.cutoff_utc(op, day)
    cutoff_ms = to_ms(cutoff)
    prev_day = nights.previous_night(op, day)
    prev_ms = to_ms(nights.cutoff_utc(op, prev_day)) if prev_day else None
    snap = load_snapshot(op.id, received_before=cutoff)
    # Sorted once: every night derived below takes its events from this list, in order.
    snap = dataclasses.replace(snap, events=unique_sorted(snap.events))
    people = _people(op.id, cutoff)
    # The previous night (its people whose records changed since), the late records' effect
    # and the devices' facts are computed in a second process, when there is one, while this
    # one derives the night: the same pure functions of the same snapshot, so the same result.
    started = beside.start(lambda: _side(snap, people, prev_ms), workers=workers)
    # No timelines (reports print none); the previous nights need people and groups only.
    state = derive_operation(snap, timeline=False, ordered=True)
    side = started.result()
    prev = None
    if prev_ms is not None:
        then = (pid for pid in snap.people if people[pid].entry_ms < prev_ms)  # _sub_snapshot's
        prev = _merged(then, state, side.again)
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
    late, late_effect = _late_rows(prev, side.late, devices)
    changes = _changes(state, prev)
    totals = _totals(state.groups)
    groups = []
    gids = sorted(state.groups.keys() | snap.groups.keys(), key=lambda g: (g is None, g or 0))
    for gid in gids:
        g = state.groups.get(gid) or {
            "records": 0,
            "expected": 0,
            "accounted": 0,
            "unaccounted": 0,
            "by_state": dict.fromkeys(STATES, 0),
            "by_checkpoint": {},
        }
        rec = snap.groups.get(gid) if gid is not None else None
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
    points = []
    first = nights.first_day(op)
    d = first
    while d < (prev_day or first):
        stored = history(d)
        if stored is None:
            stored = _totals(
                derive_operation(
                    _sub_snapshot(snap, people, to_ms(nights.cutoff_utc(op, d))),
                    timeline=False,
                    queues=False,
                    ordered=True,
                ).groups
            )
        points.append(_history_point(d, stored))
        d += dt.timedelta(days=1)
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
        "discrepancies": _discrepancies(op, snap, state, cutoff, side.devices),
        "late": {
            "count": len(late),
            "people_changed": sum(
                1 for r in late if r["person"] and r["reported_state"] != r["corrected_state"]
            ),
            "accounted_at_previous_cutoff": late_effect,
        },
        "silent_devices": {
            "hours": silent_hours,
            "devices": _silent(op, snap, cutoff, silent_hours, side.devices),
        },
        "history": points,
        "events_counted": len(snap.events),  # unique_sorted: no id twice
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
