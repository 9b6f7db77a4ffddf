"""Discrepancy queues and group summaries, read from stored derived state.

Per-person facts (state, conflicts) were derived on ingest; cross-person ones (duplicates,
headcounts) are computed here with the same pure functions the nightly report uses.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from server.ingest.service import gaps
from server.models import Device, Event, Person, PersonState, QuarantinedRecord, Resolution
from server.reconcile import store
from server.reconcile.derive import (
    ACCOUNTED,
    HEADCOUNT_WINDOW_MS,
    duplicate_pairs,
    headcount_mismatches,
    summarise,
)
from server.reconcile.derive import (
    PersonState as DerivedState,
)

QUEUES = (
    "missing",
    "walkins",
    "duplicates",
    "conflicts",
    "headcounts",
    "late",
    "quarantine",
    "gaps",
)
#: A person still en route and not seen for this long is listed as missing.
STALE_HOURS = 12


def as_derived(person: Person, row: PersonState | None) -> DerivedState:
    """The stored state of a person, or ``not_seen`` for one no event has touched yet."""
    if row is None:
        return DerivedState(
            person=str(person.id),
            group=person.group_id,
            state="not_seen",
            reason="not seen at any checkpoint",
        )
    return DerivedState(
        person=str(person.id),
        group=row.group,
        state=row.state,
        reason=row.reason,
        last_checkpoint=row.last_checkpoint,
        last_seen_ms=row.last_seen_ms,
        route_pos=row.route_pos,
        merged_into=str(row.merged_into) if row.merged_into else None,
        conflicts=json.loads(row.conflicts),
        flags=json.loads(row.flags),
        name_keys=json.loads(row.name_keys),
        event_count=row.event_count,
    )


def states(operation_id: int, group: int | None = None) -> list[tuple[Person, DerivedState]]:
    return [(p, as_derived(p, row)) for p, row in store.stored_states(operation_id, group)]


def summaries(operation_id: int) -> dict[int | None, dict[str, Any]]:
    """Per-group summary from stored state: records, expected, accounted, by state/checkpoint."""
    return summarise(s for _, s in states(operation_id))


def _dismissed(operation_id: int) -> set[str]:
    return {
        json.loads(r.payload).get("key")
        for r in Resolution.select().where(
            (Resolution.operation == operation_id)
            & (Resolution.kind == "resolve")
            & Resolution.reverted_by.is_null()
        )
    }


def missing(
    operation_id: int, now_ms: int | None = None, stale_hours: float = STALE_HOURS
) -> list[dict[str, Any]]:
    """Unaccounted people, people behind their group's furthest checkpoint, and stale ones."""
    now_ms = now_ms or int(time.time() * 1000)
    rows = [s for _, s in states(operation_id) if s.state != "merged"]
    front: dict[int | None, int] = {}
    for s in rows:
        if s.route_pos is not None and s.accounted:
            front[s.group] = max(front.get(s.group, 0), s.route_pos)
    out = []
    for s in rows:
        reasons = []
        if not s.accounted:
            reasons.append(s.reason)
        elif (
            s.state in ("checked_in", "needs_assistance")
            and front.get(s.group)
            and (s.route_pos or 0) < front[s.group]
        ):
            reasons.append("not seen at the group's latest checkpoint")
        elif (
            s.state == "checked_in"
            and s.last_seen_ms is not None
            and now_ms - s.last_seen_ms > stale_hours * 3600 * 1000
        ):
            reasons.append(f"not seen for {stale_hours:g} hours")
        if reasons:
            out.append(
                {
                    "key": f"missing:{s.person}",
                    "person": s.person,
                    "group": s.group,
                    "state": s.state,
                    "reasons": reasons,
                    "last_checkpoint": s.last_checkpoint,
                    "last_seen_ms": s.last_seen_ms,
                }
            )
    return sorted(out, key=lambda d: (d["group"] or 0, d["person"]))


def walkins(operation_id: int) -> list[dict[str, Any]]:
    """Walk-ins not yet accepted into a group (and not merged into a roster record)."""
    accepted = {
        str(r.person)
        for r in Resolution.select(Resolution.person).where(
            (Resolution.operation == operation_id)
            & (Resolution.kind == "accept_walkin")
            & Resolution.reverted_by.is_null()
        )
    }
    return [
        {"key": f"walkin:{p.id}", "person": str(p.id), "group": s.group, "state": s.state}
        for p, s in states(operation_id)
        if p.source == "walk-in" and str(p.id) not in accepted and s.state != "merged"
    ]


def duplicates(operation_id: int) -> list[dict[str, Any]]:
    """Probable duplicate pairs with score and evidence (names of matching keys, no values)."""
    recs = []
    for p, s in states(operation_id):
        keys = tuple(s.name_keys) if s.name_keys else store.name_keys_of(p)
        recs.append(store.person_rec(p, keys))
    roots = store.roots_of(store.links(operation_id))
    return duplicate_pairs(recs, roots, _dismissed(operation_id))


def conflicts(operation_id: int) -> list[dict[str, Any]]:
    out = []
    for row in PersonState.select().where(
        (PersonState.operation == operation_id) & (PersonState.conflicts != "[]")
    ):
        for c in json.loads(row.conflicts):
            out.append({**c, "person": str(row.person), "group": row.group})
    return sorted(out, key=lambda c: c["key"])


def headcounts(operation_id: int, window_ms: int = HEADCOUNT_WINDOW_MS) -> list[dict[str, Any]]:
    """Headcounts that differ from the named check-ins of their group near them."""
    counts = [
        store.event_rec(r)
        for r in Event.select(*store._EVENT_COLUMNS)
        .where((Event.operation == operation_id) & (Event.kind == "headcount"))
        .tuples()
    ]
    if not counts:
        return []
    checkpoints = list({h.checkpoint for h in counts})
    nearby = [
        store.event_rec(r)
        for r in Event.select(*store._EVENT_COLUMNS)
        .where(
            (Event.operation == operation_id)
            & Event.checkpoint.in_(checkpoints)
            & Event.kind.in_(["checkin", "walkin"])
        )
        .tuples()
    ]
    ids = [e.id for e in counts + nearby]
    voids = [
        store.event_rec(r)
        for r in Event.select(*store._EVENT_COLUMNS)
        .where((Event.operation == operation_id) & (Event.kind == "void") & Event.ref.in_(ids))
        .tuples()
    ]
    group_of = {str(p.id): s.group for p, s in states(operation_id)}
    roots = store.roots_of(store.links(operation_id))
    skip = _dismissed(operation_id)
    return [
        h
        for h in headcount_mismatches(counts + nearby + voids, group_of, roots, window_ms)
        if h["key"] not in skip
    ]


def late(operation_id: int, cutoff: dt.datetime) -> list[dict[str, Any]]:
    """Events captured before ``cutoff`` (corrected) but received at or after it."""
    cutoff_ms = store.to_ms(cutoff)
    query = Event.select(
        Event.id,
        Event.device,
        Event.seq,
        Event.kind,
        Event.captured_ms,
        Event.skew_ms,
        Event.received_at,
    ).where((Event.operation == operation_id) & (Event.received_at >= cutoff))
    return [
        {
            "key": f"late:{e.id}",
            "event": str(e.id),
            "device": str(e.device_id),
            "seq": e.seq,
            "kind": e.kind,
            "captured_ms": e.captured_ms - (e.skew_ms or 0),
            "received_at": e.received_at.isoformat() + "Z",
        }
        for e in query.order_by(Event.received_at, Event.id)
        if e.captured_ms - (e.skew_ms or 0) < cutoff_ms
    ]


def quarantine(operation_id: int) -> list[dict[str, Any]]:
    return [
        {
            "key": f"quarantine:{q.id}",
            "record": q.id,
            "reason": q.reason,
            "device": str(q.device_id) if q.device_id else None,
            "seq": q.seq,
            "received_at": q.received_at.isoformat() + "Z",
        }
        for q in QuarantinedRecord.select()
        .where(
            (QuarantinedRecord.operation == operation_id) & QuarantinedRecord.released_at.is_null()
        )
        .order_by(QuarantinedRecord.id)
    ]


def sequence_gaps(operation_id: int) -> list[dict[str, Any]]:
    return [
        {
            "key": f"gap:{d.id}",
            "device": str(d.id),
            "high_seq": d.high_seq,
            "contiguous_seq": d.contiguous_seq,
            "missing": gaps(d),
        }
        for d in Device.select().where(
            (Device.operation == operation_id) & (Device.high_seq > Device.contiguous_seq)
        )
    ]


def queue(
    operation_id: int,
    name: str,
    cutoff: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """One discrepancy queue by name (see ``QUEUES``)."""
    if name == "late":
        return late(operation_id, cutoff or dt.datetime.now(dt.UTC).replace(tzinfo=None))
    return {
        "missing": missing,
        "walkins": walkins,
        "duplicates": duplicates,
        "conflicts": conflicts,
        "headcounts": headcounts,
        "quarantine": quarantine,
        "gaps": sequence_gaps,
    }[name](operation_id)


__all__ = ["ACCOUNTED", "QUEUES", "queue", "states", "summaries"]
