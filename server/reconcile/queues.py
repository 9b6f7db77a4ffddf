"""Discrepancy queues and group summaries, read from stored derived state.

Per-person facts (state, conflicts) were derived on ingest; cross-person ones (duplicates,
headcounts) are computed here with the same pure functions the nightly report uses.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from server.db import database
from server.ingest.service import gaps
from server.models import Device, Event, Person, PersonState, QuarantinedRecord
from server.reconcile import store
from server.reconcile.derive import (
    ACCOUNTED,
    STATES,
    UNACCOUNTED,
    PersonRec,
    duplicate_pairs,
    summarise,
)
from server.reconcile.derive import (
    PersonState as DerivedState,
)
from server.reconcile.headcounts import _identity, _snapshot, headcounts

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


def _q(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    return list(database.execute_sql(sql, params).fetchall())


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _state_counts(operation_id: int, group: int | None) -> list[tuple[Any, ...]]:
    """(group, state, last checkpoint, n) over stored states, plus never-derived people.

    One aggregate over ``person_state`` (index on operation, group, state) and one over the
    people that have no state row yet (they read as ``not_seen`` in their roster group).
    """
    param = database.obj.param
    where_s, where_p = "", ""
    params_s: list[Any] = [operation_id]
    params_p: list[Any] = [operation_id]
    if group is not None:
        where_s, where_p = f' AND "s"."group" = {param}', f' AND "p"."group_id" = {param}'
        params_s.append(group)
        params_p.append(group)
    return _q(
        'SELECT "s"."group", "s"."state", "s"."last_checkpoint", COUNT(*) '
        'FROM "person_state" AS "s" '
        f'WHERE "s"."operation_id" = {param}{where_s} '
        'GROUP BY "s"."group", "s"."state", "s"."last_checkpoint"',
        params_s,
    ) + _q(
        'SELECT "p"."group_id", \'not_seen\', NULL, COUNT(*) FROM "person" AS "p" '
        f'WHERE "p"."operation_id" = {param}{where_p} AND NOT EXISTS '
        '(SELECT 1 FROM "person_state" AS "s" WHERE "s"."person" = "p"."id") '
        'GROUP BY "p"."group_id"',
        params_p,
    )


def _summarise_counts(rows: list[tuple[Any, ...]]) -> dict[int | None, dict[str, Any]]:
    """``derive.summarise`` over aggregated rows instead of one state per person."""
    out: dict[int | None, dict[str, Any]] = {}
    for gid, state, checkpoint, n in rows:
        g = out.setdefault(
            gid,
            {
                "records": 0,
                "expected": 0,
                "accounted": 0,
                "unaccounted": 0,
                "by_state": dict.fromkeys(STATES, 0),
                "by_checkpoint": {},
            },
        )
        g["records"] += n
        g["by_state"][state] += n
        if state == "merged":
            continue
        g["expected"] += n
        if state in ACCOUNTED:
            g["accounted"] += n
            if checkpoint is not None:
                cp = str(checkpoint)
                g["by_checkpoint"][cp] = g["by_checkpoint"].get(cp, 0) + n
        else:
            g["unaccounted"] += n
    for g in out.values():
        g["by_checkpoint"] = dict(sorted(g["by_checkpoint"].items()))
    return out


def summaries(operation_id: int) -> dict[int | None, dict[str, Any]]:
    """Per-group summary from stored state: records, expected, accounted, by state/checkpoint."""
    return _summarise_counts(_state_counts(operation_id, None))


def group_summary(operation_id: int, group: int) -> dict[str, Any] | None:
    """One group's summary (None when it has no records), reading only that group's rows."""
    return _summarise_counts(_state_counts(operation_id, group)).get(group)


# Cross-person queues, cached per operation and keyed by ``store.fingerprint``: pages of one
# unchanged queue then cost a page. A few operations at most are live at once.
_CACHE: OrderedDict[tuple[str, int], tuple[tuple[Any, ...], list[dict[str, Any]]]] = OrderedDict()
_CACHE_SIZE = 32
_CACHE_LOCK = threading.Lock()


def _cached(
    name: str, operation_id: int, compute: Callable[[int], list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """``compute(operation_id)``, reused while the operation's fingerprint stays the same."""
    if database.in_transaction():
        # A writer's uncommitted changes must never be cached for others, nor a cache hide them.
        return compute(operation_id)
    key = store.fingerprint(operation_id)
    if key is None:
        return compute(operation_id)
    with _CACHE_LOCK:
        hit = _CACHE.get((name, operation_id))
        if hit is not None and hit[0] == key:
            _CACHE.move_to_end((name, operation_id))
            return hit[1]
    items = compute(operation_id)
    with _CACHE_LOCK:
        _CACHE[(name, operation_id)] = (key, items)
        _CACHE.move_to_end((name, operation_id))
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return items


def _missing_sql(operation_id: int, now_ms: int, stale_hours: float) -> tuple[str, list[Any]]:
    """The missing queue as one SELECT (stored states plus never-derived people)."""
    param = database.obj.param
    sql = (
        'WITH "front" AS (SELECT "group" AS "g", MAX("route_pos") AS "f" FROM "person_state" '
        f'WHERE "operation_id" = {param} AND "state" IN ({_in(ACCOUNTED)}) '
        'AND "route_pos" IS NOT NULL GROUP BY "group") '
        'SELECT "s"."person" AS "person", "s"."group" AS "grp", "s"."state", "s"."reason", '
        '"s"."last_checkpoint", "s"."last_seen_ms", "s"."route_pos", "front"."f" '
        # No join to person: a state row exists only for a person of its operation (states are
        # derived from person rows, which are never deleted but with their operation).
        'FROM "person_state" AS "s" LEFT JOIN "front" ON "front"."g" = "s"."group" '
        f'WHERE "s"."operation_id" = {param} '
        f'AND ("s"."state" IN ({_in(UNACCOUNTED)}) '
        "OR (\"s\".\"state\" IN ('checked_in', 'needs_assistance') "
        'AND "front"."f" IS NOT NULL AND COALESCE("s"."route_pos", 0) < "front"."f") '
        'OR ("s"."state" = \'checked_in\' AND "s"."last_seen_ms" IS NOT NULL '
        f'AND "s"."last_seen_ms" < {param})) '
        'UNION ALL SELECT "p"."id", "p"."group_id", \'not_seen\', '
        '\'not seen at any checkpoint\', NULL, NULL, NULL, NULL FROM "person" AS "p" '
        f'WHERE "p"."operation_id" = {param} AND NOT EXISTS '
        '(SELECT 1 FROM "person_state" AS "s" WHERE "s"."person" = "p"."id")'
    )
    return sql, [operation_id, operation_id, now_ms - stale_hours * 3600 * 1000, operation_id]


def _missing_item(row: tuple[Any, ...], now_ms: int, stale_hours: float) -> dict[str, Any]:
    person, group, state, reason, checkpoint, seen_ms, route_pos, front = row
    reasons = []
    if state not in ACCOUNTED:
        reasons.append(reason)
    elif state in ("checked_in", "needs_assistance") and front and (route_pos or 0) < front:
        reasons.append("not seen at the group's latest checkpoint")
    elif state == "checked_in" and seen_ms is not None and now_ms - seen_ms > stale_hours * 3600000:
        reasons.append(f"not seen for {stale_hours:g} hours")
    pid = store._uid(person)
    return {
        "key": f"missing:{pid}",
        "person": pid,
        "group": group,
        "state": state,
        "reasons": reasons,
        "last_checkpoint": checkpoint,
        "last_seen_ms": seen_ms,
    }


def missing_page(
    operation_id: int,
    limit: int | None = None,
    offset: int = 0,
    now_ms: int | None = None,
    stale_hours: float = STALE_HOURS,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the missing queue, filtered, ordered and sliced in SQL; and its total."""
    now_ms = now_ms or int(time.time() * 1000)
    sql, params = _missing_sql(operation_id, now_ms, stale_hours)
    # One evaluation gives the page and (as a window count) the queue's total.
    page = (
        f'SELECT "q".*, COUNT(*) OVER () FROM ({sql}) AS "q" '
        'ORDER BY COALESCE("q"."grp", 0), "q"."person"'
    )
    if limit is not None:
        page += f" LIMIT {int(limit)} OFFSET {int(offset)}"
    rows = _q(page, params)
    # Past the end there is no row to carry the count: count separately.
    total = rows[0][-1] if rows else _q(f'SELECT COUNT(*) FROM ({sql}) AS "q"', params)[0][0]
    return [_missing_item(r[:-1], now_ms, stale_hours) for r in rows], total


def missing(
    operation_id: int, now_ms: int | None = None, stale_hours: float = STALE_HOURS
) -> list[dict[str, Any]]:
    """Unaccounted people, people behind their group's furthest checkpoint, and stale ones."""
    return missing_page(operation_id, None, 0, now_ms, stale_hours)[0]


def walkins_page(
    operation_id: int, limit: int | None = None, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One page of walk-ins not accepted into a group nor merged (name order), and its total."""
    param = database.obj.param
    base = (
        'FROM "person" AS "p" LEFT JOIN "person_state" AS "s" ON "s"."person" = "p"."id" '
        f'WHERE "p"."operation_id" = {param} AND "p"."source" = \'walk-in\' '
        'AND ("s"."state" IS NULL OR "s"."state" != \'merged\') '
        'AND "p"."id" NOT IN (SELECT "person" FROM "resolution" '
        f'WHERE "operation_id" = {param} AND "kind" = \'accept_walkin\' '
        'AND "reverted_by" IS NULL AND "person" IS NOT NULL)'
    )
    params = [operation_id, operation_id]
    total = _q(f"SELECT COUNT(*) {base}", params)[0][0]
    sql = (
        'SELECT "p"."id", CASE WHEN "s"."person" IS NULL THEN "p"."group_id" '
        'ELSE "s"."group" END, COALESCE("s"."state", \'not_seen\') '
        f'{base} ORDER BY "p"."full_name", "p"."id"'
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
    items = [
        {"key": f"walkin:{store._uid(pid)}", "person": store._uid(pid), "group": g, "state": st}
        for pid, g, st in _q(sql, params)
    ]
    return items, total


def walkins(operation_id: int) -> list[dict[str, Any]]:
    """Walk-ins not yet accepted into a group (and not merged into a roster record)."""
    return walkins_page(operation_id)[0]


def _people_rows(operation_id: int) -> list[tuple[Any, ...]]:
    """Every person's duplicate inputs as stored: person columns and stored name keys."""
    param = database.obj.param
    cols = ", ".join(f'"p".{store._col(f).split(".", 1)[1]}' for f in store._PERSON_FIELDS)
    return _q(
        f'SELECT {cols}, "s"."name_keys" FROM "person" AS "p" '
        'LEFT JOIN "person_state" AS "s" ON "s"."person" = "p"."id" '
        f'WHERE "p"."operation_id" = {param} ORDER BY "p"."id"',
        [operation_id],
    )


def _people_recs(operation_id: int) -> list[PersonRec]:
    """Every person's duplicate keys: stored name keys when derived, else from the names."""
    return [store._person_rec_from_row(row[:-1], row[-1]) for row in _people_rows(operation_id)]


def _duplicates(operation_id: int) -> list[dict[str, Any]]:
    """The whole computation of the duplicates queue."""
    roots = store.roots_of(store.links(operation_id))
    return duplicate_pairs(_people_recs(operation_id), roots, store.dismissed(operation_id))


@dataclass
class _DuplicatesKept:
    """The duplicates queue of an operation with what it was computed from."""

    key: tuple[Any, ...]
    identity: tuple[Any, ...]  # the database and the operation's creation (ids get reused)
    names: dict[Any, str]  # stored name keys by person, as stored
    inputs: tuple[Any, ...]  # person rows, merge links, dismissed keys
    items: list[dict[str, Any]]


_DUPLICATES_KEPT: OrderedDict[int, _DuplicatesKept] = OrderedDict()
_DUPLICATE_LOCKS: dict[int, threading.Lock] = {}


def _stored_name_keys(operation_id: int) -> dict[Any, str]:
    param = database.obj.param
    return dict(
        _q(
            f'SELECT "person", "name_keys" FROM "person_state" WHERE "operation_id" = {param}',
            [operation_id],
        )
    )


def _duplicate_inputs(operation_id: int) -> tuple[Any, ...]:
    param = database.obj.param
    cols = ", ".join(store._col(f) for f in store._PERSON_FIELDS)
    rows = _q(
        f'SELECT {cols} FROM "person" WHERE "operation_id" = {param} ORDER BY "id"',
        [operation_id],
    )
    return rows, store.links(operation_id), store.dismissed(operation_id)


def _duplicates_of(names: dict[Any, str], inputs: tuple[Any, ...]) -> list[dict[str, Any]]:
    """``_duplicates`` from what it reads: the same records as ``_people_recs`` makes."""
    rows, links, skip = inputs
    stored = {str(store._uid(p)): raw for p, raw in names.items()}
    recs = [store._person_rec_from_row(row, stored.get(str(store._uid(row[0])))) for row in rows]
    return duplicate_pairs(recs, store.roots_of(links), skip)


def duplicates(operation_id: int) -> list[dict[str, Any]]:
    """Probable duplicate pairs with score and evidence (names of matching keys, no values).

    The same items as ``_duplicates`` (the whole computation), kept per operation with what
    they were computed from: people's rows, stored name keys, merge links and dismissed keys
    (``duplicate_pairs`` is a pure function of these). When the fingerprint moved, the stored
    name keys are read again; the rest only when the change log, the people's count or their
    latest update moved (``store.fingerprint``: what people, merges and dismissals change).
    The pairs are computed again only when something read differs: check-ins change none of
    it. All of it reads one snapshot of the database.
    """
    if database.in_transaction():
        return _duplicates(operation_id)
    with _CACHE_LOCK:
        lock = _DUPLICATE_LOCKS.setdefault(operation_id, threading.Lock())
    with lock, _snapshot():
        key = store.fingerprint(operation_id)
        if key is None:
            return _duplicates(operation_id)
        with _CACHE_LOCK:
            kept = _DUPLICATES_KEPT.pop(operation_id, None)
        if kept is None or kept.key != key:
            identity = _identity(operation_id)
            if kept is not None and kept.identity != identity:
                kept = None
            names = _stored_name_keys(operation_id)
            if kept is None or kept.key[2:] != key[2:]:
                inputs = _duplicate_inputs(operation_id)
            else:
                inputs = kept.inputs
            if kept is None or names != kept.names or inputs != kept.inputs:
                items = _duplicates_of(names, inputs)
                kept = _DuplicatesKept(key, identity, names, inputs, items)
            kept.key = key
        with _CACHE_LOCK:
            _DUPLICATES_KEPT[operation_id] = kept
            while len(_DUPLICATES_KEPT) > _INDEXES_KEPT:
                _DUPLICATES_KEPT.popitem(last=False)
        return kept.items


def _conflicts(operation_id: int) -> list[dict[str, Any]]:
    """The whole computation of the conflicts queue: every stored open conflict, by key (and
    person, for the same key stored for two people)."""
    param = database.obj.param
    out = []
    for person, group, raw in _q(
        'SELECT "person", "group", "conflicts" FROM "person_state" '
        f'WHERE "operation_id" = {param} AND "conflicts" != \'[]\'',
        [operation_id],
    ):
        for c in json.loads(raw):
            out.append({**c, "person": store._uid(person), "group": group})
    return sorted(out, key=lambda c: (c["key"], c["person"]))


def conflicts(operation_id: int) -> list[dict[str, Any]]:
    return _cached("conflicts", operation_id, _conflicts)


class _Sorted:
    """A sorted list of distinct items kept in buckets of about ``LOAD``: adding or removing
    one moves a bucket, not the whole list (400,000 conflicts at 1,000,000 events)."""

    LOAD = 1000

    def __init__(self, items: list[tuple[str, str]]) -> None:
        """``items`` sorted and distinct."""
        step = self.LOAD
        self.buckets = [items[i : i + step] for i in range(0, len(items), step)]
        self.maxes = [b[-1] for b in self.buckets]
        self.size = len(items)

    def add(self, item: tuple[str, str]) -> None:
        self.size += 1
        if not self.buckets:
            self.buckets, self.maxes = [[item]], [item]
            return
        i = min(bisect_left(self.maxes, item), len(self.buckets) - 1)
        bucket = self.buckets[i]
        insort(bucket, item)
        self.maxes[i] = bucket[-1]
        if len(bucket) > 2 * self.LOAD:
            half = len(bucket) // 2
            self.buckets[i : i + 1] = [bucket[:half], bucket[half:]]
            self.maxes[i : i + 1] = [bucket[half - 1], bucket[-1]]

    def remove(self, item: tuple[str, str]) -> None:
        i = bisect_left(self.maxes, item)
        bucket = self.buckets[i] if i < len(self.buckets) else []
        j = bisect_left(bucket, item)
        if j == len(bucket) or bucket[j] != item:
            raise KeyError(item)
        del bucket[j]
        self.size -= 1
        if bucket:
            self.maxes[i] = bucket[-1]
        else:
            del self.buckets[i], self.maxes[i]

    def slice(self, offset: int, limit: int | None) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        end = self.size if limit is None else min(self.size, offset + limit)
        start = 0
        for bucket in self.buckets:
            if start >= end:
                break
            stop = start + len(bucket)
            if stop > offset:
                out += bucket[max(0, offset - start) : end - start]
            start = stop
        return out

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for bucket in self.buckets:
            yield from bucket


@dataclass
class _ConflictIndex:
    """The conflicts queue's order: (key, person) of every stored open conflict, and per person
    the stored version its keys were read at (``person_state.version`` digests the conflicts)."""

    key: tuple[Any, ...]
    people: dict[str, tuple[str, tuple[str, ...]]]
    order: _Sorted


#: Operations whose conflict index is kept: about 110 MB of RSS for 400,000 open conflicts.
_INDEXES_KEPT = 2
#: More people changed than this since the last read: the index is built again, not updated.
_REBUILD_PEOPLE = 5000
_CONFLICTS_KEPT: OrderedDict[int, _ConflictIndex] = OrderedDict()
_CONFLICT_LOCKS: dict[int, threading.Lock] = {}


def _keys_of(raw: str) -> tuple[str, ...]:
    return tuple(c["key"] for c in json.loads(raw))


def _conflict_rows(operation_id: int, people: list[str] | None) -> list[tuple[Any, ...]]:
    """(person, version, group, conflicts) of the operation's people with open conflicts, or
    of ``people`` (dashed ids) only."""
    param = database.obj.param
    if people is None:
        return _q(
            'SELECT "person", "version", "group", "conflicts" FROM "person_state" '
            f'WHERE "operation_id" = {param} AND "conflicts" != \'[]\'',
            [operation_id],
        )
    out: list[tuple[Any, ...]] = []
    for i in range(0, len(people), 500):
        chunk = [store._hex(p) for p in people[i : i + 500]]
        out += _q(
            'SELECT "person", "version", "group", "conflicts" FROM "person_state" '
            f'WHERE "operation_id" = {param} '
            f'AND "person" IN ({", ".join([param] * len(chunk))})',
            [operation_id, *chunk],
        )
    return out


def _versions(operation_id: int) -> dict[str, str]:
    """Every stored person's version (dashed id -> version), without the conflicts text."""
    param = database.obj.param
    return {
        str(store._uid(p)): v
        for p, v in _q(
            f'SELECT "person", "version" FROM "person_state" WHERE "operation_id" = {param}',
            [operation_id],
        )
    }


def _build_conflicts(operation_id: int, key: tuple[Any, ...]) -> _ConflictIndex:
    people: dict[str, tuple[str, tuple[str, ...]]] = {
        p: (v, ()) for p, v in _versions(operation_id).items()
    }
    items = []
    for person, version, _group, raw in _conflict_rows(operation_id, None):
        pid = str(store._uid(person))
        keys = _keys_of(raw)
        people[pid] = (version, keys)
        items += [(k, pid) for k in keys]
    items.sort()
    return _ConflictIndex(key, people, _Sorted(items))


def _advance_conflicts(index: _ConflictIndex, operation_id: int, key: tuple[Any, ...]) -> bool:
    """Take in the people whose stored version changed (or who came or went); False when so
    many did that building the index again is cheaper."""
    now = _versions(operation_id)
    people = index.people
    gone = [p for p in people if p not in now]
    changed = [p for p, v in now.items() if (people.get(p) or ("",))[0] != v]
    if len(gone) + len(changed) > _REBUILD_PEOPLE:
        return False
    fresh = {
        str(store._uid(p)): (v, _keys_of(raw))
        for p, v, _g, raw in _conflict_rows(operation_id, changed)
    }
    for p in gone:
        for k in people.pop(p)[1]:
            index.order.remove((k, p))
    for p in changed:
        old = people.get(p, ("", ()))[1]
        people[p] = new = fresh.get(p, (now[p], ()))
        if old != new[1]:
            # Most changes leave a person's conflicts as they were, or add or drop a few.
            kept = set(new[1])
            for k in old:
                if k not in kept:
                    index.order.remove((k, p))
            had = set(old)
            for k in new[1]:
                if k not in had:
                    index.order.add((k, p))
    index.key = key
    return True


def conflicts_page(
    operation_id: int, limit: int | None = None, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """One page of the conflicts queue and its total: the same items as slicing ``_conflicts``.

    The order (key, person of every open conflict) is kept per operation in this process and
    updated from the stored versions of people when the fingerprint moved: only people whose
    version changed are read again. The page's people are read for the items themselves. All
    of it reads one snapshot of the database.
    """
    if database.in_transaction():
        items = _conflicts(operation_id)
        return items[offset : None if limit is None else offset + limit], len(items)
    with _CACHE_LOCK:
        lock = _CONFLICT_LOCKS.setdefault(operation_id, threading.Lock())
    with lock, _snapshot():
        key = store.fingerprint(operation_id)
        if key is None:
            items = _conflicts(operation_id)
            return items[offset : None if limit is None else offset + limit], len(items)
        with _CACHE_LOCK:
            index = _CONFLICTS_KEPT.pop(operation_id, None)
        try:
            fresh = index is None or (
                index.key != key and not _advance_conflicts(index, operation_id, key)
            )
        except KeyError:  # a kept key not found: never expected, but never a wrong page
            fresh = True
        if fresh or index is None:
            index = _build_conflicts(operation_id, key)
        page = index.order.slice(offset, limit)
        rows = {
            str(store._uid(p)): (v, g, raw)
            for p, v, g, raw in _conflict_rows(operation_id, sorted({p for _k, p in page}))
        }
        items = []
        parsed: dict[str, dict[str, dict[str, Any]]] = {}
        for k, p in page:
            version, group, raw = rows[p]
            if version != index.people[p][0]:
                raise RuntimeError("conflict index out of step with its snapshot")
            if p not in parsed:
                parsed[p] = {c["key"]: c for c in json.loads(raw)}
            items.append({**parsed[p][k], "person": p, "group": group})
        total = index.order.size
        # Kept again only once read through: an error above leaves no half-updated index.
        with _CACHE_LOCK:
            _CONFLICTS_KEPT[operation_id] = index
            while len(_CONFLICTS_KEPT) > _INDEXES_KEPT:
                _CONFLICTS_KEPT.popitem(last=False)
        return items, total


def warm(operation_id: int) -> None:
    """Build the kept indexes of an operation's queues (conflicts, headcounts, duplicates) so
    the first staff request after the server starts does not pay for them."""
    conflicts_page(operation_id, 1)
    headcounts(operation_id)
    duplicates(operation_id)


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
    """One discrepancy queue by name (see ``QUEUES``), whole."""
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


def queue_page(
    operation_id: int,
    name: str,
    cutoff: dt.datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """One page of a queue and the queue's total: the same items as slicing ``queue``.

    ``missing`` and ``walkins`` page in SQL; ``conflicts`` from its kept order (``conflicts_page``);
    ``duplicates`` and ``headcounts`` from their per-operation caches; the others are small.
    """
    if name == "missing":
        return missing_page(operation_id, limit, offset)
    if name == "walkins":
        return walkins_page(operation_id, limit, offset)
    if name == "conflicts":
        return conflicts_page(operation_id, limit, offset)
    items = queue(operation_id, name, cutoff)
    return items[offset : offset + limit], len(items)


def queue_count(operation_id: int, name: str) -> int:
    """The number of items in a queue (for the overview)."""
    return queue_page(operation_id, name, None, 1, 0)[1]


__all__ = [
    "ACCOUNTED",
    "QUEUES",
    "group_summary",
    "queue",
    "queue_count",
    "queue_page",
    "states",
    "summaries",
    "summarise",
]
