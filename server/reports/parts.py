"""A night's snapshot read in parts: the people split by id, each part's events read on their own.

Reading a million events and deriving every person from them is most of a report. A person's
state depends only on the events naming their own records (and records merged with them),
the voids aimed at those, and resolutions; so the people are split into parts by id, and each
part reads only the events naming its people and is derived on its own, in a second process
when there is one (``content.build``). What every part needs is read once, before that, into
the :class:`Frame`: person records, groups, resolutions, and the *shared* events (those naming
no person, and every void and headcount: voids retract records of any part, headcounts count
people of every part). Records that were ever merged with each other stay in one part (the
part of the lowest id among them), so a merged record's events are derived with its root's.

Parts tile the events: every event of the snapshot is in exactly one part or among the shared
ones (``tests/reports`` checks that the pieces are ``load_snapshot``'s events, and that a
report made in parts is the report made whole).
"""

from __future__ import annotations

import datetime as dt
import uuid
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from peewee import SqliteDatabase

from server.db import database
from server.models import Event, Person, Resolution
from server.reconcile.derive import EventRec, GroupRec, PersonRec, ResolutionRec, unique_sorted
from server.reconcile.store import (
    _PERSON_FIELDS,
    _fetch,
    _person_rec_from_row,
    _snapshot_events,
    _uid,
    epoch_us_sql,
    load_groups,
    ms_of_us,
    resolution_rec,
)

#: Event kinds every part reads (they are shared): voids and headcounts.
SHARED_KINDS = ("headcount", "void")


@dataclass
class PersonInfo:
    """The person details a report prints: as of generation (see docs/reports.md)."""

    id: str
    external_id: str
    full_name: str
    entry_ms: int


@dataclass
class Frame:
    """What every part of a night needs, read once (``load_snapshot``'s filters)."""

    operation_id: int
    people: dict[str, PersonRec]
    groups: dict[int, GroupRec]
    resolutions: list[ResolutionRec]
    #: Events naming no person, and every void and headcount, in ``unique_sorted`` order.
    shared: list[EventRec]


def _sqlite() -> bool:
    return isinstance(database.obj, SqliteDatabase)


def _received_before(cutoff: dt.datetime) -> tuple[str, list[Any]]:
    """``load_snapshot``'s condition on events received before ``cutoff`` (operation first)."""
    param = database.obj.param
    return (
        f'"operation_id" = {param} AND "received_at" < {param}',
        [Event.received_at.db_value(cutoff)],
    )


def read_frame(operation_id: int, cutoff: dt.datetime) -> Frame:
    """People, groups and resolutions as ``load_snapshot(received_before=cutoff)`` reads them,
    and the shared events (``Frame.shared``)."""
    param = database.obj.param
    where, params = _received_before(cutoff)
    params = [operation_id, *params]
    kinds = ", ".join(f"'{k}'" for k in SHARED_KINDS)
    shared = _snapshot_events(where + ' AND "person" IS NULL', params, True)
    # Voids and headcounts name no person (their schemas have no such field); read apart all
    # the same, on SQLite through the index of kinds (``+`` keeps it off the receive times').
    unindexed = where.replace('"received_at"', '+"received_at"') if _sqlite() else where
    shared += _snapshot_events(
        unindexed + f' AND "person" IS NOT NULL AND "kind" IN ({kinds})', params, True
    )
    rows = _fetch(
        _PERSON_FIELDS,
        f'"operation_id" = {param} AND "entry_date" < {param}',
        [operation_id, Person.entry_date.db_value(cutoff)],
    )
    return Frame(
        operation_id=operation_id,
        people={rec.id: rec for rec in map(_person_rec_from_row, rows)},
        groups=load_groups(operation_id),
        resolutions=[
            resolution_rec(r)
            for r in Resolution.select().where(
                (Resolution.operation == operation_id) & (Resolution.at < cutoff)
            )
        ],
        shared=unique_sorted(shared),
    )


def people_info(operation_id: int, cutoff: dt.datetime) -> dict[str, PersonInfo]:
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


def _merged_groups(resolutions: Iterable[ResolutionRec]) -> dict[str, str]:
    """Every record named by a merge (active or not) -> the lowest id merged with it, ever."""
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r in resolutions:
        into = r.payload.get("into") if r.kind == "merge" else None
        if r.person is None or into is None:
            continue
        a, b = str(r.person), str(into)
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: root(x) for x in parent}


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@dataclass
class Split:
    """The people of a night in ``count`` parts: by id between ``bounds``, merged records with
    the lowest id merged with them (``lead``)."""

    bounds: tuple[str, ...] = ()
    lead: dict[str, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.bounds) + 1

    def _by_id(self, person: str) -> int:
        return bisect_right(self.bounds, person)

    def of(self, person: str) -> int:
        """The part of the events naming ``person`` (and of the record, when it is one)."""
        return self._by_id(self.lead.get(person, person))

    def condition(self, k: int) -> tuple[str, list[Any]]:
        """SQL selecting part ``k``'s events among those naming a person (and its parameters)."""
        param = database.obj.param
        terms, params = [], []
        if k > 0:
            terms.append(f'"person" >= {param}')
            params.append(Event.person.db_value(self.bounds[k - 1]))
        if k < len(self.bounds):
            terms.append(f'"person" < {param}')
            params.append(Event.person.db_value(self.bounds[k]))
        moved_out = sorted(m for m in self.lead if self._by_id(m) == k and self.of(m) != k)
        moved_in = sorted(m for m in self.lead if self._by_id(m) != k and self.of(m) == k)
        if moved_out:
            terms.append(f'"person" NOT IN ({", ".join([param] * len(moved_out))})')
            params += [Event.person.db_value(m) for m in moved_out]
        sql = " AND ".join(terms) or "1 = 1"
        if moved_in:
            sql = f'(({sql}) OR "person" IN ({", ".join([param] * len(moved_in))}))'
            params += [Event.person.db_value(m) for m in moved_in]
        return sql, params


def split(frame: Frame, n: int) -> Split:
    """``n`` parts of about as many people each (one when there are too few, or when a merged
    record's id is not a UUID: no range of the event table would be sure to hold it)."""
    ids = sorted(frame.people)
    lead = _merged_groups(frame.resolutions)
    if n <= 1 or len(ids) < 2 * n or not all(map(_is_uuid, lead)):
        return Split()
    return Split(tuple(ids[len(ids) * k // n] for k in range(1, n)), lead)


#: On SQLite a part reads the event table in row order (a scan of the rows between the first
#: and the last of the night's) rather than through the index of receive times, when that
#: range holds at most this many rows per row of the night: a row found through the index
#: costs about 2.5 times a row scanned, and every part finds all the night's rows there
#: (1,000,000 events: 1.3 s instead of 3.0 s per part).
SCAN_RATIO = 2


def _scan_range(operation_id: int, cutoff: dt.datetime) -> tuple[int, int] | None:
    """The first and last row ids of the night's events on SQLite, when scanning the rows
    between them beats the index (``SCAN_RATIO``); None otherwise, or when there are none."""
    if not _sqlite():
        return None
    where, params = _received_before(cutoff)
    count, first, last = database.execute_sql(  # from the index alone
        f'SELECT count(*), min(rowid), max(rowid) FROM "event" WHERE {where}',
        [operation_id, *params],
    ).fetchone()
    if not count or last - first + 1 > SCAN_RATIO * count:
        return None
    return first, last


def read_part(operation_id: int, cutoff: dt.datetime, parts: Split, k: int) -> list[EventRec]:
    """Part ``k``'s events (not sorted): those naming one of its people, voids and headcounts
    aside (``Frame.shared``); without what only timelines show (method, author, time flag:
    ``EventRec``'s defaults), which a report prints nowhere and leaves unread."""
    where, params = _received_before(cutoff)
    inside, more = parts.condition(k)
    kinds = ", ".join(f"'{kind}'" for kind in SHARED_KINDS)
    sql = f'{where} AND "person" IS NOT NULL AND "kind" NOT IN ({kinds}) AND {inside}'
    rows = _scan_range(operation_id, cutoff)
    if rows is not None:  # the same condition on no index (``+``) but the row ids'
        for column in ('"operation_id"', '"received_at"', '"person"', '"kind"'):
            sql = sql.replace(column, "+" + column)
        sql += f" AND rowid BETWEEN {int(rows[0])} AND {int(rows[1])}"
    return _snapshot_events(sql, [operation_id, *params, *more], True, timeline=False)
