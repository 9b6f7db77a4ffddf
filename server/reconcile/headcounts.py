"""The headcounts queue: counts of a group at a checkpoint that differ from the people named.

``_headcounts`` is the whole computation (every headcount, every check-in near one, every
void). ``headcounts`` answers the same from a ``HeadcountIndex`` kept per operation in this
process, taking in only what arrived since it was last read; ``tests/server/
test_reconcile_headcounts.py`` holds the two equal. ``docs/reconciliation.md`` has the rules.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from array import array
from bisect import bisect_left, bisect_right, insort
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from peewee import PostgresqlDatabase

from server.db import database
from server.reconcile import store
from server.reconcile.derive import (
    HEADCOUNT_WINDOW_MS,
    POSITIVE_STATUSES,
    headcount_mismatches,
)

#: Guards the kept indexes and their per-operation locks.
_LOCK = threading.Lock()


def _q(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    return list(database.execute_sql(sql, params).fetchall())


def _in(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def _headcounts(operation_id: int, window_ms: int = HEADCOUNT_WINDOW_MS) -> list[dict[str, Any]]:
    param = database.obj.param
    counts = [
        store.event_rec(r, received=False)
        for r in store._fetch_events(
            f'"operation_id" = {param} AND "kind" = \'headcount\'', [operation_id]
        )
    ]
    if not counts:
        return []
    # Only check-ins within some headcount's window at its checkpoint can be named: read each
    # merged window once, on the (operation, checkpoint, corrected time) index.
    windows: list[tuple[int, int, int]] = []
    for h in sorted(
        (h for h in counts if h.checkpoint is not None),
        key=lambda h: (h.checkpoint, h.corrected_ms),
    ):
        lo, hi = h.corrected_ms - window_ms, h.corrected_ms + window_ms
        if windows and windows[-1][0] == h.checkpoint and lo <= windows[-1][2]:
            windows[-1] = (h.checkpoint, windows[-1][1], max(hi, windows[-1][2]))  # type: ignore[arg-type]
        else:
            windows.append((h.checkpoint, lo, hi))  # type: ignore[arg-type]
    at = '("captured_ms" - COALESCE("skew_ms", 0))'
    nearby = [
        store.event_rec(r, received=False)
        for checkpoint, lo, hi in windows
        for r in store._fetch_events(
            f'"operation_id" = {param} AND "checkpoint" = {param} AND {at} >= {param} '
            f"AND {at} <= {param} AND \"kind\" IN ('checkin', 'walkin')",
            [operation_id, checkpoint, lo, hi],
        )
    ]
    if any(h.checkpoint is None for h in counts):
        nearby += [
            store.event_rec(r, received=False)
            for r in store._fetch_events(
                f"\"operation_id\" = {param} AND \"kind\" IN ('checkin', 'walkin') "
                'AND "checkpoint" IS NULL',
                [operation_id],
            )
        ]
    # Every void of the operation: one aimed outside these events retracts nothing here.
    voids = [
        store.event_rec(r, received=False)
        for r in store._fetch_events(
            f'"operation_id" = {param} AND "kind" = \'void\'', [operation_id]
        )
    ]
    group_of = _group_of(operation_id)
    roots = store.roots_of(store.links(operation_id))
    skip = store.dismissed(operation_id)
    return [
        h
        for h in headcount_mismatches(counts + nearby + voids, group_of, roots, window_ms)
        if h["key"] not in skip
    ]


# The headcount queue, kept up to date --------------------------------------------------------
#
# The whole computation (``_headcounts``) reads every check-in near a headcount: nearly every
# event of an operation, seconds at a million. ``HeadcountIndex`` keeps what it derives from
# in memory and takes in only what arrived since; ``headcounts`` checks in the database that
# nothing else changed, and computes everything again when it cannot show that.

_POSITIVE = frozenset(POSITIVE_STATUSES)
#: Events whose ``received_at`` is this close below the newest one already read are read again
#: to find new ones: ingest stamps the time inside its write transaction, before deriving and
#: committing, so a transaction committing after another can carry an earlier time. Later
#: arrivals are caught by the count check and cost one whole computation, never a wrong result.
_RECENT_MS = 15_000
#: Operations whose index is kept: about 60 MB for 1,000,000 check-ins near 30,000 headcounts.
_INDEXES_KEPT = 2


class _Row(NamedTuple):
    """The columns of an event the headcount queue reads (ids as the database returns them)."""

    id: Any
    device: Any
    seq: int
    kind: str
    person: Any
    checkpoint: int | None
    group: int | None
    status: str | None
    counted: int | None
    at: int  # corrected capture time
    ref: Any = None
    received: Any = None


def _names(row: _Row) -> bool:
    """Whether an event names its person to headcounts (``headcount_mismatches``' rule)."""
    return row.person is not None and (
        row.kind == "walkin" or (row.kind == "checkin" and row.status in _POSITIVE)
    )


class HeadcountIndex:
    """``headcount_mismatches`` kept up to date as events arrive.

    For each (checkpoint, group) bucket it keeps the times each person (merged duplicates as
    their root) was named there, and each headcount with its named count. A named check-in
    that enters a headcount's window for a person not yet inside it adds one to that count; a
    new headcount counts the people with a time inside its window; a void takes its target
    back out. Only check-ins inside some headcount's window (``covered``, per checkpoint) are
    kept: no other can be named, and the ones a new headcount's window adds are read then
    (``fetch``).

    Events must come in without repetition: each at most once, as new or as fetched. What it
    cannot take in (a merge or group change of a person it holds) is the caller's to detect;
    it then builds a new index.
    """

    def __init__(
        self,
        group_of: Mapping[str, int | None],
        roots: Mapping[str, str],
        voided: set[tuple[Any, Any]],
        window_ms: int = HEADCOUNT_WINDOW_MS,
    ) -> None:
        self.group_of = dict(group_of)
        self.roots = dict(roots)
        #: (target id, device) of every void: a same-device void retracts its target.
        self.voided = voided
        #: (checkpoint, person, time) of retracted named check-ins not read yet: ``fetch``
        #: returns no ids, and equal ones are interchangeable for counting.
        self.retracted: Counter[tuple[int | None, Any, int]] = Counter()
        self.window_ms = window_ms
        #: Per checkpoint, the merged closed intervals of corrected time whose check-ins are kept.
        self.covered: dict[int | None, list[tuple[int, int]]] = {}
        #: (checkpoint, group) -> root person -> sorted times named there.
        self.seen: dict[tuple[int | None, int | None], dict[str, array[int]]] = {}
        #: People (not roots) with a kept check-in: their group or root must not change.
        self.people: set[str] = set()
        #: (checkpoint, group) -> sorted (time, headcount id).
        self.heads: dict[tuple[int | None, int | None], list[tuple[int, str]]] = {}
        #: Headcount id -> (event order, group, checkpoint, counted, time); named people.
        self.info: dict[
            str, tuple[tuple[int, str, int, str], int | None, int | None, int | None, int]
        ] = {}
        self.named: dict[str, int] = {}
        #: The mismatches: their event order, sorted, and their items; headcounts whose named
        #: count changed since ``items`` last listed them.
        self._listed: list[tuple[int, str, int, str]] = []
        self._item: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        self._where: dict[Any, tuple[str, int | None]] = {}  # stored person -> root, group
        self._devices: dict[Any, str] = {}  # one text per device, shared by its headcounts

    def is_covered(self, checkpoint: int | None, at: int) -> bool:
        spans = self.covered.get(checkpoint, [])
        i = bisect_right(spans, (at, math.inf)) - 1
        return i >= 0 and spans[i][0] <= at <= spans[i][1]

    def _uncover(self, checkpoint: int | None, lo: int, hi: int) -> list[tuple[int, int]]:
        """The parts of [lo, hi] not covered yet at ``checkpoint``; and cover all of it."""
        gaps = []
        spans = self.covered.setdefault(checkpoint, [])
        at = lo
        for a, b in spans:
            if b < at:
                continue
            if a > hi:
                break
            if a > at:
                gaps.append((at, a - 1))
            at = max(at, b + 1)
        if at <= hi:
            gaps.append((at, hi))
        merged: list[tuple[int, int]] = []
        for a, b in sorted([*spans, (lo, hi)]):
            if merged and a <= merged[-1][1] + 1:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        self.covered[checkpoint] = merged
        return gaps

    def _place(self, person: Any) -> tuple[str, int | None]:
        text = str(store._uid(person))
        self.people.add(text)
        where = self._where[person] = (self.roots.get(text, text), self.group_of.get(text))
        return where

    def add(self, checkpoint: int | None, found: Iterable[tuple[Any, int]]) -> None:
        """Name the people of stored named check-ins at ``checkpoint``: (person, time) pairs,
        the person as stored. Each one adds to the headcounts whose window it enters."""
        w, retracted, where_of, seen = self.window_ms, self.retracted, self._where, self.seen
        for person, at in found:
            if retracted and retracted.get((checkpoint, person, at)):
                retracted[(checkpoint, person, at)] -= 1
                continue
            root, group = where_of.get(person) or self._place(person)
            bucket = (checkpoint, group)
            by_root = seen.get(bucket)
            if by_root is None:
                by_root = seen[bucket] = {}
            times = by_root.get(root)
            if times is None:
                times = by_root[root] = array("q")
            heads = self.heads.get(bucket)
            if heads:
                lo = bisect_left(heads, (at - w,))
                for t, hid in heads[lo : bisect_right(heads, (at + w, "~"), lo)]:
                    i = bisect_left(times, t - w)
                    if i == len(times) or times[i] > t + w:
                        self.named[hid] += 1
                        self._dirty.add(hid)
            insort(times, at)

    def update(
        self,
        rows: Iterable[_Row],
        fetch: Callable[[int | None, int, int], Iterable[Any]],
        lookup: Callable[[list[Any]], Iterable[_Row]] | None = None,
    ) -> None:
        """Take in new events: voids, check-ins and walk-ins, then headcounts.

        ``fetch(checkpoint, lo, hi)`` returns (person, time) of the stored named check-ins and
        walk-ins at a checkpoint with a corrected time in [lo, hi], as of the same moment as
        ``rows``: a person, and a walk-in or a check-in with a positive status. ``lookup(ids)``
        returns the stored events with these ids (the targets of new voids).
        """
        rows = list(rows)
        voids = [r for r in rows if r.kind == "void" and r.ref is not None]
        if voids:
            arriving = {r.id for r in rows}
            earlier = [v.ref for v in voids if v.ref not in arriving]
            targets = {t.id: t for t in (lookup(earlier) if lookup and earlier else ())}
            for v in voids:
                if (v.ref, v.device) in self.voided:
                    continue  # retracted already (or the same void again)
                self.voided.add((v.ref, v.device))
                target = targets.get(v.ref)
                if target is not None and target.device == v.device:  # a void of a void: nothing
                    self._retract(target)
        fresh: list[_Row] = []
        for row in rows:
            if row.kind == "headcount":
                if (row.id, row.device) not in self.voided:
                    fresh.append(row)
                continue
            if not _names(row):
                continue
            covered = self.is_covered(row.checkpoint, row.at)
            if (row.id, row.device) in self.voided:
                if not covered:  # a window read later will meet it: skip it then
                    self.retracted[(row.checkpoint, row.person, row.at)] += 1
            elif covered:
                self.add(row.checkpoint, [(row.person, row.at)])
        # New headcounts' windows: read what is not kept yet, merged per checkpoint.
        w = self.window_ms
        for row in sorted(fresh, key=lambda r: (r.checkpoint is None, r.checkpoint or 0, r.at)):
            for lo, hi in self._uncover(row.checkpoint, row.at - w, row.at + w):
                self.add(row.checkpoint, fetch(row.checkpoint, lo, hi))
        by_bucket: dict[tuple[int | None, int | None], list[tuple[int, str]]] = {}
        for row in fresh:
            hid = str(store._uid(row.id))
            device = self._devices.setdefault(row.device, str(store._uid(row.device)))
            order = (row.at, device, row.seq, hid)
            self.info[hid] = (order, row.group, row.checkpoint, row.counted, row.at)
            by_bucket.setdefault((row.checkpoint, row.group), []).append((row.at, hid))
        for bucket, new in by_bucket.items():
            self._count(bucket, new)
            heads = self.heads.setdefault(bucket, [])
            for item in new:
                insort(heads, item)

    def _retract(self, target: _Row) -> None:
        """Take back a stored headcount or named check-in that a new void retracts."""
        if target.kind == "headcount":
            hid = str(store._uid(target.id))
            if hid not in self.info:
                return
            order, group, checkpoint, _counted, at = self.info.pop(hid)
            del self.named[hid]
            self._dirty.discard(hid)
            if self._item.pop(hid, None) is not None:
                del self._listed[bisect_left(self._listed, order)]
            self.heads[(checkpoint, group)].remove((at, hid))
            return
        if not _names(target):
            return
        if not self.is_covered(target.checkpoint, target.at):
            self.retracted[(target.checkpoint, target.person, target.at)] += 1
            return
        # Covered, named and not retracted before: it is kept, once.
        root, group = self._where.get(target.person) or self._place(target.person)
        bucket, w, at = (target.checkpoint, group), self.window_ms, target.at
        by_root = self.seen[bucket]
        times = by_root[root]
        del times[bisect_left(times, at)]
        if not times:
            del by_root[root]
        heads = self.heads.get(bucket)
        if heads:
            lo = bisect_left(heads, (at - w,))
            for t, hid in heads[lo : bisect_right(heads, (at + w, "~"), lo)]:
                i = bisect_left(times, t - w)
                if i == len(times) or times[i] > t + w:
                    self.named[hid] -= 1
                    self._dirty.add(hid)

    def _count(self, bucket: tuple[int | None, int | None], new: list[tuple[int, str]]) -> None:
        """Named people of new headcounts: a sweep over each root's merged windows."""
        w = self.window_ms
        points: list[tuple[int, int, str]] = []
        for times in self.seen.get(bucket, {}).values():
            # A root's windows merged: inside from a start to the end of the last overlapping.
            start, end = times[0] - w, times[0] + w
            for t in times:
                if t - w > end:
                    points += ((start, 0, ""), (end, 2, ""))
                    start = t - w
                end = t + w
            points += ((start, 0, ""), (end, 2, ""))
        points += ((t, 1, hid) for t, hid in new)
        # At one time: windows open, then headcounts are counted, then windows close.
        inside = 0
        for _t, what, hid in sorted(points):
            if what == 0:
                inside += 1
            elif what == 2:
                inside -= 1
            else:
                self.named[hid] = inside
                self._dirty.add(hid)

    def items(self) -> list[dict[str, Any]]:
        """The mismatches, in event order (as ``headcount_mismatches`` lists them)."""
        listed, item_of = self._listed, self._item
        for hid in self._dirty:
            order, group, checkpoint, counted, at = self.info[hid]
            named = self.named[hid]
            was = hid in item_of
            if named != counted:
                item_of[hid] = {
                    "key": f"headcount:{hid}",
                    "event": hid,
                    "group": group,
                    "checkpoint": checkpoint,
                    "counted": counted,
                    "named": named,
                    "difference": (counted or 0) - named,
                    "at_ms": at,
                }
                if not was:
                    insort(listed, order)
            elif was:
                del item_of[hid]
                del listed[bisect_left(listed, order)]
        self._dirty.clear()
        return [item_of[order[3]] for order in listed]


def _at(table: str = "") -> str:
    """Corrected capture time, as the (operation, checkpoint, time) index spells it."""
    t = f'"{table}".' if table else ""
    return f'({t}"captured_ms" - COALESCE({t}"skew_ms", 0))'


def _named(table: str = "") -> str:
    """Check-ins that name someone (``headcount_mismatches``' rule)."""
    table = f'"{table}".' if table else ""
    return (
        f"{table}\"kind\" IN ('checkin', 'walkin') AND {table}\"person\" IS NOT NULL AND "
        f'({table}"kind" = \'walkin\' OR {table}"status" IN ({_in(POSITIVE_STATUSES)}))'
    )


def _uid_sql(name: str, table: str = "") -> str:
    """A UUID column as text on PostgreSQL (dashed), as stored (hex) on SQLite."""
    column = f'"{table}"."{name}"' if table else f'"{name}"'
    if isinstance(database.obj, PostgresqlDatabase):
        return f"CAST({column} AS TEXT)"
    return column


def _columns() -> str:
    """``_Row``'s select list."""
    u = _uid_sql
    return (
        f'{u("id")}, {u("device_id")}, "seq", "kind", {u("person")}, "checkpoint", '
        f'"group", "status", "count", {_at()}, {u("ref")}, "received_at"'
    )


def _when(value: Any) -> dt.datetime:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def _group_of(operation_id: int) -> dict[str, int | None]:
    """Each person's current group: the stored state's, else the roster's."""
    param = database.obj.param
    return {
        str(store._uid(pid)): g
        for pid, g in _q(
            'SELECT "p"."id", CASE WHEN "s"."person" IS NULL THEN "p"."group_id" '
            'ELSE "s"."group" END FROM "person" AS "p" '
            'LEFT JOIN "person_state" AS "s" ON "s"."person" = "p"."id" '
            f'WHERE "p"."operation_id" = {param}',
            [operation_id],
        )
    }


def _fetcher(operation_id: int) -> Callable[[int | None, int, int], list[tuple[Any, int]]]:
    """(person, corrected time) of the named check-ins at a checkpoint in a time range."""
    param = database.obj.param

    def fetch(checkpoint: int | None, lo: int, hi: int) -> list[tuple[Any, int]]:
        if checkpoint is None:
            where, params = '"checkpoint" IS NULL', [operation_id, lo, hi]
        else:
            where, params = f'"checkpoint" = {param}', [operation_id, checkpoint, lo, hi]
        return _q(  # type: ignore[return-value]
            f'SELECT {_uid_sql("person")}, {_at()} FROM "event" '
            f'WHERE "operation_id" = {param} AND {where} '
            f"AND {_at()} >= {param} AND {_at()} <= {param} AND {_named()}",
            params,
        )

    return fetch


@dataclass
class _Kept:
    """An operation's headcount index and what it has read: the events' count, the newest
    receive time, the ids received near it, the fingerprint and items it was last read at."""

    index: HeadcountIndex
    #: The operation's creation time and the database's name: an id is no identity across
    #: databases (tests) nor after an operation is deleted and its id reused.
    identity: tuple[Any, ...]
    events: int
    newest: dt.datetime | None
    recent: set[Any]
    key: tuple[Any, ...] | None = None
    items: list[dict[str, Any]] = field(default_factory=list)


def _since(newest: dt.datetime) -> dt.datetime:
    return newest - dt.timedelta(milliseconds=_RECENT_MS)


def _received_since(operation_id: int, since: dt.datetime) -> tuple[set[Any], Any]:
    """Ids of the events received at or after ``since``, and the newest receive time."""
    param = database.obj.param
    rows = _q(
        f'SELECT {_uid_sql("id")}, "received_at" FROM "event" '
        f'WHERE "operation_id" = {param} AND "received_at" >= {param}',
        [operation_id, since],
    )
    # Stored times compare as times (SQLite's text "YYYY-MM-DD HH:MM:SS[.ffffff]" as well).
    return {r[0] for r in rows}, max((r[1] for r in rows), default=None)


def _events(ids: list[Any]) -> list[_Row]:
    out: list[_Row] = []
    for i in range(0, len(ids), 500):
        part = ids[i : i + 500]
        out += (
            _Row(*r)
            for r in _q(
                f'SELECT {_columns()} FROM "event" WHERE "id" IN ({store._marks(len(part))})',
                part,
            )
        )
    return out


def _build(operation_id: int) -> _Kept:
    """Every headcount and the check-ins near them, read afresh (inside a snapshot)."""
    param = database.obj.param
    ((events, newest),) = _q(
        f'SELECT COUNT(*), MAX("received_at") FROM "event" WHERE "operation_id" = {param}',
        [operation_id],
    )
    newest = _when(newest) if newest is not None else None
    marks = [
        _Row(*r)
        for r in _q(
            f'SELECT {_columns()} FROM "event" WHERE "operation_id" = {param} '
            "AND \"kind\" IN ('headcount', 'void')",
            [operation_id],
        )
    ]
    index = HeadcountIndex(
        _group_of(operation_id),
        store.roots_of(store.links(operation_id)),
        {(r.ref, r.device) for r in marks if r.kind == "void" and r.ref is not None},
    )
    if index.voided:
        # Named check-ins a void of their own device retracts: each once, however many voids.
        for _id, checkpoint, person, at in _q(
            f'SELECT DISTINCT "t"."id", "t"."checkpoint", {_uid_sql("person", "t")}, {_at("t")} '
            'FROM "event" AS "v" JOIN "event" AS "t" ON "t"."id" = "v"."ref" '
            f'WHERE "v"."operation_id" = {param} AND "v"."kind" = \'void\' '
            f'AND "t"."device_id" = "v"."device_id" AND {_named("t")}',
            [operation_id],
        ):
            index.retracted[(checkpoint, person, at)] += 1
    index.update((r for r in marks if r.kind == "headcount"), _fetcher(operation_id))
    recent = _received_since(operation_id, _since(newest))[0] if newest is not None else set()
    return _Kept(index, _identity(operation_id), events, newest, recent)


def _identity(operation_id: int) -> tuple[Any, ...]:
    param = database.obj.param
    created = _q(f'SELECT "created_at" FROM "operation" WHERE "id" = {param}', [operation_id])
    return (database.obj.database, str(created[0][0]) if created else None)


def _changed(
    old: Mapping[str, Any], new: Mapping[str, Any], default: Callable[[str], Any]
) -> set[str]:
    if old == new:
        return set()
    return {k for k in old.keys() | new.keys() if old.get(k, default(k)) != new.get(k, default(k))}


def _advance(kept: _Kept, operation_id: int, key: tuple[Any, ...]) -> bool:
    """Take in what arrived since ``kept`` was read; False when that cannot be shown safe.

    New events are the ones received since shortly before the newest already read that were
    not read then; the event count proves there are no others (events are never deleted nor
    changed). Groups and merges change only with people and resolutions, which the
    fingerprint's other parts follow (``store.fingerprint``): when those moved, a person with
    kept check-ins who changed group or root makes it build the index again.
    """
    index = kept.index
    if kept.newest is None or kept.key is None or kept.identity != _identity(operation_id):
        return False
    # Every event read then and received since shortly before the newest is in ``recent``
    # (all of those received in that span, and more): the others received since are new.
    ids, newest = _received_since(operation_id, _since(kept.newest))
    fresh = [i for i in ids if i not in kept.recent]
    ((events,),) = _q(
        f'SELECT COUNT(*) FROM "event" WHERE "operation_id" = {database.obj.param}',
        [operation_id],
    )
    if events != kept.events + len(fresh):
        return False
    new = _events(fresh)
    if any(r.checkpoint is None and r.kind in ("checkin", "walkin", "headcount") for r in new):
        return False  # no event schema allows it; the whole computation handles it
    if key[2:] != kept.key[2:]:
        group_of = _group_of(operation_id)
        roots = store.roots_of(store.links(operation_id))
        moved = _changed(index.group_of, group_of, lambda k: None)
        moved |= _changed(index.roots, roots, lambda k: k)
        if moved & index.people:
            return False
        index.group_of, index.roots = group_of, roots
    index.update(new, _fetcher(operation_id), _events)
    kept.events, kept.recent = events, ids
    kept.newest = max(kept.newest, _when(newest)) if newest is not None else kept.newest
    return True


@contextmanager
def _snapshot() -> Iterator[None]:
    """One consistent view of the database for several reads: a read-only transaction."""
    with database.atomic():
        if isinstance(database.obj, PostgresqlDatabase):
            database.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        yield


_KEPT: OrderedDict[int, _Kept] = OrderedDict()
_KEPT_LOCKS: dict[int, threading.Lock] = {}


def headcounts(operation_id: int, window_ms: int = HEADCOUNT_WINDOW_MS) -> list[dict[str, Any]]:
    """Headcounts that differ from the named check-ins of their group near them.

    The same items as ``_headcounts`` (the whole computation), from the operation's kept
    ``HeadcountIndex``: unchanged since the last read, it answers at once; new events (voids
    too) are taken in, and so are merges and moves of people it holds no check-in of; after
    anything it cannot show safe (``_advance``) it is built again. All of it reads one
    snapshot of the database.
    """
    if window_ms != HEADCOUNT_WINDOW_MS or database.in_transaction():
        # A writer's uncommitted changes must never be kept for others, nor kept ones hide them.
        return _headcounts(operation_id, window_ms)
    with _LOCK:
        lock = _KEPT_LOCKS.setdefault(operation_id, threading.Lock())
    with lock, _snapshot():
        key = store.fingerprint(operation_id)
        if key is None:
            return _headcounts(operation_id, window_ms)
        with _LOCK:
            kept = _KEPT.pop(operation_id, None)
        if kept is not None and kept.key == key:
            items = kept.items
        else:
            if kept is None or not _advance(kept, operation_id, key):
                kept = _build(operation_id)
            skip = store.dismissed(operation_id)
            items = kept.index.items()
            kept.items = items = [h for h in items if h["key"] not in skip] if skip else items
            kept.key = key
        # Kept again only once read through: an error above leaves no half-updated index.
        with _LOCK:
            _KEPT[operation_id] = kept
            while len(_KEPT) > _INDEXES_KEPT:
                _KEPT.popitem(last=False)
        return items
