"""What a night's report says, computed from frozen snapshots (no wall clock anywhere).

The night's state is ``derive_operation`` of what was received before the cut-off; the previous
night's is derived from the same loaded events filtered by the previous cut-off, so the database
is read once per report. ``summary`` holds counts and ids only (no names); names live in
``people`` and are written only to the restricted file and to the lists the ministry needs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from server.db import tuples
from server.models import Checkpoint, Device, Group, Operation, Person, QuarantinedRecord
from server.reconcile.derive import (
    ACCOUNTED,
    STATES,
    UNACCOUNTED,
    EventRec,
    OperationState,
    Snapshot,
    active_resolutions,
    derive_operation,
    merge_roots,
)
from server.reconcile.store import load_snapshot, to_ms
from server.reports import nights

FORMAT = "muster-report/1"
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
    return dt.datetime.fromtimestamp(ms // 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        events=[e for e in snap.events if e.received_ms < before_ms] + list(extra),
        resolutions=[r for r in snap.resolutions if r.at_ms < before_ms],
    )


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


def _late(
    snap: Snapshot,
    people: dict[str, PersonInfo],
    prev: OperationState | None,
    prev_ms: int | None,
    devices: dict[str, str],
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Records captured before the previous cut-off but received after it, and their effect.

    The effect compares each touched person's state as the previous report gave it with the
    state that report would have given had the late records arrived in time.
    """
    if prev is None or prev_ms is None:
        return [], {"reported": 0, "corrected": 0}
    late = [e for e in snap.events if e.received_ms >= prev_ms and e.corrected_ms < prev_ms]
    if not late:
        return [], {"reported": 0, "corrected": 0}
    by_id = {e.id: e for e in snap.events}
    owner = {e.id: e.person or (by_id[e.ref].person if e.ref in by_id else None) for e in late}
    before = _sub_snapshot(snap, people, prev_ms)
    roots = merge_roots(before.resolutions)
    touched = {p for p in owner.values() if p}
    touched |= {roots.get(p, p) for p in touched}
    touched |= {dup for dup, root in roots.items() if root in touched}
    related = [
        e
        for e in before.events + late
        if e.person in touched
        or (e.ref in by_id and by_id[e.ref].person in touched)  # voids of their records
    ]
    corrected = derive_operation(
        Snapshot(
            operation_id=snap.operation_id,
            people={p: rec for p, rec in before.people.items() if p in touched},
            groups=snap.groups,
            events=related,
            resolutions=before.resolutions,
        )
    )
    rows = []
    for e in sorted(late, key=lambda e: (e.received_ms, e.device, e.seq, e.id)):
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


def _discrepancies(
    op: Operation, snap: Snapshot, state: OperationState, cutoff: dt.datetime
) -> dict[str, int]:
    """Open discrepancies at the cut-off, by kind (the queues of docs/reconciliation.md)."""
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
    seqs: dict[str, set[int]] = {}
    for e in snap.events:
        seqs.setdefault(e.device, set()).add(e.seq)
    out["gaps"] = sum(1 for s in seqs.values() if len(s) < max(s))
    return out


def _silent(
    op: Operation, snap: Snapshot, cutoff: dt.datetime, hours: float
) -> list[dict[str, Any]]:
    """Devices with no records received for more than ``hours`` before the cut-off."""
    cutoff_ms = to_ms(cutoff)
    last: dict[str, int] = {}
    count: dict[str, int] = {}
    for e in snap.events:
        last[e.device] = max(last.get(e.device, 0), e.received_ms)
        count[e.device] = count.get(e.device, 0) + 1
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


def build(
    op: Operation, day: dt.date, *, silent_hours: float, history: HistoryLookup
) -> ReportData:
    """Compute one night's report for ``op`` from what was received before its cut-off."""
    cutoff = nights.cutoff_utc(op, day)
    cutoff_ms = to_ms(cutoff)
    prev_day = nights.previous_night(op, day)
    prev_ms = to_ms(nights.cutoff_utc(op, prev_day)) if prev_day else None
    snap = load_snapshot(op.id, received_before=cutoff)
    people = {
        str(pid): PersonInfo(str(pid), ext or "", name, to_ms(entry))
        for pid, ext, name, entry in Person.select(
            Person.id, Person.external_id, Person.full_name, Person.entry_date
        )
        .where((Person.operation == op.id) & (Person.entry_date < cutoff))
        .tuples()
        .iterator()
    }
    state = derive_operation(snap)
    prev = derive_operation(_sub_snapshot(snap, people, prev_ms)) if prev_ms is not None else None
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
    late, late_effect = _late(snap, people, prev, prev_ms, devices)
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
                    _sub_snapshot(snap, people, to_ms(nights.cutoff_utc(op, d)))
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
        "discrepancies": _discrepancies(op, snap, state, cutoff),
        "late": {
            "count": len(late),
            "people_changed": sum(
                1 for r in late if r["person"] and r["reported_state"] != r["corrected_state"]
            ),
            "accounted_at_previous_cutoff": late_effect,
        },
        "silent_devices": {
            "hours": silent_hours,
            "devices": _silent(op, snap, cutoff, silent_hours),
        },
        "history": points,
        "events_counted": len({e.id for e in snap.events}),
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


def missing_people(data: ReportData, op: Operation) -> list[dict[str, str]]:
    """People not accounted for at the cut-off, with what the ministry needs to find them."""
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
        if s.state in UNACCOUNTED
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
