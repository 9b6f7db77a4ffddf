"""Load reconciliation inputs from the database and write derived state back.

``load_snapshot`` freezes what the pure core needs (optionally only what was received before a
cut-off, for the nightly report); ``recompute`` refreshes a few people on ingest or after a
resolution; ``rebuild`` recomputes an operation from events and resolutions alone.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from peewee import JOIN, PostgresqlDatabase, UUIDField

from server.db import database
from server.models import (
    Event,
    Group,
    Person,
    PersonLink,
    PersonState,
    Resolution,
    RouteStop,
    utcnow,
)
from server.models.reconcile import DeriveBacklog, ReconcileMark
from server.reconcile.derive import (
    EventRec,
    GroupRec,
    PersonRec,
    Prior,
    ResolutionRec,
    Snapshot,
    can_fold,
    derive_operation,
    derive_person,
    fold_window_start,
)
from server.reconcile.derive import PersonState as DerivedState
from sync.normalize import name_key

_EVENT_COLUMNS = (
    Event.id,
    Event.device,
    Event.seq,
    Event.kind,
    Event.captured_ms,
    Event.skew_ms,
    Event.person,
    Event.checkpoint,
    Event.group,
    Event.status,
    Event.method,
    Event.author,
    Event.count,
    Event.ref,
    Event.received_at,
    Event.time_flag,
    Event.body,
)


def _marks(n: int) -> str:
    return ", ".join([database.obj.param] * n)


def _col(field: Any) -> str:
    return f'"{field.model._meta.table_name}"."{field.column_name}"'


def _fetch(fields: tuple[Any, ...], where: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Run one SELECT of ``fields`` without peewee's per-value SQL building (hot path).

    Values come back as the driver gives them; callers convert what they use.
    """
    table = fields[0].model._meta.table_name
    sql = f'SELECT {", ".join(_col(f) for f in fields)} FROM "{table}" WHERE {where}'
    return list(database.execute_sql(sql, params).fetchall())


def _fetch_events(where: str, params: list[Any], source: str = '"event"') -> list[tuple[Any, ...]]:
    """``_EVENT_COLUMNS`` of matching events; only flags need their (sealed) body read.

    ``source``: the table as the FROM clause names it (:func:`_events_by_person`)."""
    sql = f"SELECT {event_list_sql()} FROM {source} WHERE {where}"
    return list(database.execute_sql(sql, params).fetchall())


def _events_by_person() -> str:
    """The event table, read through its person index on SQLite whatever the statistics
    say: a list of 1,000 people or more (a deriver's part) was planned as a scan of the
    whole table when sampled statistics (``server.db.statistics``) overestimated the events
    a person has (9 a person sampled at 30,000 events, 2 in fact: 25-40 ms a part instead
    of 15-18, and growing with the table). PostgreSQL plans with full statistics."""
    if isinstance(database.obj, PostgresqlDatabase):
        return '"event"'
    return '"event" INDEXED BY "event_person"'


def event_list_sql(received: str | None = None, timeline: bool = True) -> str:
    """The select list of ``_EVENT_COLUMNS`` (only flags' sealed bodies), table-qualified.

    UUID columns are read as text on PostgreSQL (psycopg2 would make a ``uuid.UUID`` of each,
    only for ``event_rec`` to turn it back into text). ``received`` replaces the receive time
    column with that SQL expression. ``timeline=False`` reads what only timelines show (method,
    author, time flag) as their ``EventRec`` defaults instead.
    """
    postgres = isinstance(database.obj, PostgresqlDatabase)
    cols = [
        f"CAST({_col(f)} AS TEXT)"
        if postgres and isinstance(getattr(f, "rel_field", f), UUIDField)
        else received
        if received is not None and f is Event.received_at
        else _col(f)
        if timeline or not (f is Event.method or f is Event.author or f is Event.time_flag)
        else "''"
        if f is Event.author
        else "NULL"
        for f in _EVENT_COLUMNS[:-1]
    ]
    cols.append(f"CASE WHEN {_col(Event.kind)} = 'flag' THEN {_col(Event.body)} END")
    return ", ".join(cols)


@functools.lru_cache(maxsize=65536)
def _name_key(name: str) -> str:
    return name_key(name)


def to_ms(value: dt.datetime) -> int:
    """Milliseconds since the epoch of a naive UTC datetime."""
    return int(value.replace(tzinfo=dt.UTC).timestamp() * 1000)


def _uid(value: Any) -> str | None:
    """The dashed text form of a UUID as any backend returns it (hex, dashed or UUID)."""
    if value is None:
        return None
    text = str(value)
    if len(text) == 32:
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
    return text


def _when_ms(value: Any) -> int:
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return to_ms(value)


def event_rec(row: Any, received: bool = True) -> EventRec:
    """An ``EventRec`` from a raw tuple of ``_EVENT_COLUMNS`` (any backend's value types).

    ``received=False`` leaves ``received_ms`` at 0: only timelines and reports read it, and
    parsing the stored time is most of the cost of a row on ingest. Built positionally, ids
    made dashed inline: a deriver round makes one per event it reads (two per new one).
    """
    (
        eid,
        device,
        seq,
        kind,
        captured,
        skew,
        person,
        cp,
        group,
        status,
        method,
        author,
        count,
        ref,
        received_at,
        time_flag,
        body,
    ) = row
    flag = json.loads(Event.body.python_value(body)).get("flag") if kind == "flag" else None
    return _new_rec(
        EventRec,
        (
            _dashed(eid),
            _dashed(device),
            seq,
            kind,
            captured,
            skew or 0,
            None if person is None else _dashed(person),
            cp,
            group,
            status,
            method,
            author,
            count,
            None if ref is None else _dashed(ref),
            flag,
            _when_ms(received_at) if received else 0,
            time_flag,
        ),
    )


_new_rec = tuple.__new__


def _dashed(value: Any) -> str:
    """:func:`_uid` of a value that is not None."""
    if type(value) is str and len(value) == 32:
        return f"{value[:8]}-{value[8:12]}-{value[12:16]}-{value[16:20]}-{value[20:]}"
    return str(value)


def stored_event_rec(row: Mapping[str, Any], flag: str | None = None) -> EventRec:
    """The ``EventRec`` of an event row as ingest hands it to the database (before storing).

    Equal to :func:`event_rec` of the stored row with ``received=False`` (a test proves it
    for every kind), so ingest can fold what it just stored without reading it back. ``flag``
    is the body's flag (the stored body is sealed).
    """
    person, ref = row.get("person"), row.get("ref")
    return EventRec(
        id=str(row["id"]),
        device=str(row["device"]),
        seq=row["seq"],
        kind=row["kind"],
        captured_ms=row["captured_ms"],
        skew_ms=row.get("skew_ms") or 0,
        person=str(person) if person else None,
        checkpoint=row.get("checkpoint"),
        group=row.get("group"),
        status=row.get("status"),
        method=row.get("method"),
        author=row.get("author", ""),
        count=row.get("count"),
        ref=str(ref) if ref else None,
        flag=flag if row["kind"] == "flag" else None,
        time_flag=row.get("time_flag"),
    )


def resolution_rec(r: Resolution) -> ResolutionRec:
    return ResolutionRec(
        id=str(r.id),
        kind=r.kind,
        at_ms=r.at_ms,
        person=str(r.person) if r.person else None,
        payload=json.loads(r.payload),
        actor=r.actor,
        reason=r.reason,
    )


def name_keys_of(p: Person) -> tuple[str, ...]:
    """Order- and script-independent keys of every name a person record carries."""
    names = [p.full_name, f"{p.given_name} {p.family_name}", *json.loads(p.alternate_names or "[]")]
    return tuple(sorted({k for k in (_name_key(n) for n in names if n.strip()) if k}))


def person_rec(p: Person, name_keys: tuple[str, ...] | None = None) -> PersonRec:
    return PersonRec(
        id=str(p.id),
        group=p.group_id,
        source=p.source,
        document_key=p.document_key or "",
        birth_date=p.birth_date.isoformat() if p.birth_date else None,
        name_keys=name_keys if name_keys is not None else name_keys_of(p),
    )


def load_groups(operation_id: int) -> dict[int, GroupRec]:
    """Every group of an operation with its route (two plain queries; ingest calls it often)."""
    param = database.obj.param
    group_table, stop_table = Group._meta.table_name, RouteStop._meta.table_name
    routes: dict[int, list[int]] = {}
    for gid, cp in database.execute_sql(
        f'SELECT "s"."group_id", "s"."checkpoint_id" FROM "{stop_table}" AS "s" '
        f'JOIN "{group_table}" AS "g" ON "g"."id" = "s"."group_id" '
        f'WHERE "g"."operation_id" = {param} ORDER BY "s"."position"',
        [operation_id],
    ).fetchall():
        routes.setdefault(gid, []).append(cp)
    return {
        gid: GroupRec(gid, name, expected or 0, tuple(routes.get(gid, ())))
        for gid, name, expected in database.execute_sql(
            f'SELECT "id", "name", "expected_size" FROM "{group_table}" '
            f'WHERE "operation_id" = {param}',
            [operation_id],
        ).fetchall()
    }


def load_snapshot(
    operation_id: int, received_before: dt.datetime | None = None, received: bool = True
) -> Snapshot:
    """Freeze an operation's inputs; with ``received_before`` only what arrived before it.

    ``received=False`` skips events' receive times (``rebuild`` does not store them).
    """
    param = database.obj.param
    where, params = f'"operation_id" = {param}', [operation_id]
    people_where, people_params = where, [operation_id]
    resolutions = Resolution.select().where(Resolution.operation == operation_id)
    if received_before is not None:
        where += f' AND "received_at" < {param}'
        params.append(Event.received_at.db_value(received_before))
        people_where += f' AND "entry_date" < {param}'
        people_params.append(Person.entry_date.db_value(received_before))
        resolutions = resolutions.where(Resolution.at < received_before)
    return Snapshot(
        operation_id=operation_id,
        # Only the columns reconciliation reads: no sealed document numbers or phones opened.
        people={
            rec.id: rec
            for rec in map(
                _person_rec_from_row, _fetch(_PERSON_FIELDS, people_where, people_params)
            )
        },
        groups=load_groups(operation_id),
        # Plain rows, and only flags' sealed bodies opened: this reads every event.
        events=_snapshot_events(where, params, received),
        resolutions=[resolution_rec(r) for r in resolutions],
    )


def links(operation_id: int) -> dict[str, str]:
    """Active merges of an operation: duplicate id -> primary id."""
    return {
        str(link.duplicate): str(link.primary)
        for link in PersonLink.select().where(PersonLink.operation == operation_id)
    }


def roots_of(direct: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for dup in direct:
        node, seen = dup, {dup}
        while node in direct and direct[node] not in seen:
            node = direct[node]
            seen.add(node)
        out[dup] = node
    return out


_STATE_COLUMNS = (
    "person",
    "operation_id",
    "group",
    "state",
    "reason",
    "last_checkpoint",
    "last_seen_ms",
    "route_pos",
    "merged_into",
    "conflicts",
    "flags",
    "name_keys",
    "event_count",
    "version",
    "updated_at",
    "furthest",
)
#: Their column list, and the upsert's SET clause (every column but the key), in SQL.
_STATE_LIST = ", ".join(f'"{c}"' for c in _STATE_COLUMNS)
_STATE_UPDATE = ' ON CONFLICT ("person") DO UPDATE SET ' + ", ".join(
    f'"{c}" = excluded."{c}"' for c in _STATE_COLUMNS[1:]
)


def _hex(value: str) -> str:
    """A UUID as stored (32 lowercase hex digits) from its dashed text form (a hot path: the
    ids here come from stored rows or validated events, so only the dashes go)."""
    if len(value) == 36 and value[8] == value[13] == value[18] == value[23] == "-":
        return value.replace("-", "").lower()
    return uuid.UUID(value).hex


def write_states(operation_id: int, states: Iterable[DerivedState]) -> int:
    """Store the states of these people, replacing what was stored (inside a write transaction).

    The hot path of ingest: values go to the driver as they are stored (hex UUIDs, JSON text,
    one timestamp) through one prepared upsert, with no per-value model conversions.
    """
    return write_state_rows(state_rows(operation_id, states))


def state_rows(operation_id: int, states: Iterable[DerivedState]) -> list[tuple[Any, ...]]:
    """The ``person_state`` rows of these states, as :func:`write_state_rows` stores them
    (and :func:`stage_state_rows` keeps them aside)."""
    now = PersonState.updated_at.db_value(utcnow())
    rows = []
    for s in states:
        encoded = s.encoded()
        rows.append(
            (
                _hex(s.person),
                operation_id,
                s.group,
                s.state,
                s.reason[:200],
                s.last_checkpoint,
                s.last_seen_ms,
                s.route_pos,
                _hex(s.merged_into) if s.merged_into else None,
                *encoded,
                s.event_count,
                s.version_of(encoded),
                now,
                _hex(s.furthest) if s.furthest else None,
            )
        )
    return rows


def write_state_rows(rows: list[tuple[Any, ...]]) -> int:
    """Upsert ``person_state`` rows made by :func:`state_rows` (inside a write transaction)."""
    if not rows:
        return 0
    db = database.obj
    sql = f'INSERT INTO "person_state" ({_STATE_LIST}) VALUES '
    tail = _STATE_UPDATE
    cursor = db.cursor()
    for start in range(0, len(rows), 500):
        chunk = rows[start : start + 500]
        if isinstance(db, PostgresqlDatabase):
            from psycopg2.extras import execute_values

            execute_values(cursor, sql + "%s" + tail, chunk, page_size=len(chunk))
        else:
            cursor.executemany(sql + f"({_marks(len(_STATE_COLUMNS))})" + tail, chunk)
    return len(rows)


def stage_state_rows(rows: list[tuple[Any, ...]], *, fresh: bool = False) -> None:
    """Keep ``person_state`` rows made by :func:`state_rows` aside until
    :func:`write_staged_state_rows` (SQLite: a temporary table of this connection, which a
    read transaction may write: it takes no lock on the database). A later row of a person
    replaces an earlier one. ``fresh``: forget whatever was staged before.

    The deriver works a round's states out in parts before its write turn; kept in Python
    they cost ~4.5 KB a person at 1,000,000 events (their conflicts' JSON), 56 MB for a
    round of 12,439 people."""
    database.execute_sql(
        f'CREATE TEMP TABLE IF NOT EXISTS "staged_state" ({_STATE_LIST}, PRIMARY KEY ("person"))'
    )
    if fresh:
        database.execute_sql('DELETE FROM temp."staged_state"')
    if rows:
        database.obj.cursor().executemany(
            f'INSERT OR REPLACE INTO temp."staged_state" ({_STATE_LIST}) '
            f"VALUES ({_marks(len(_STATE_COLUMNS))})",
            rows,
        )


def write_staged_state_rows() -> int:
    """Upsert the rows :func:`stage_state_rows` kept aside (inside a write transaction) and
    forget them; how many."""
    (count,) = database.execute_sql('SELECT COUNT(*) FROM temp."staged_state"').fetchone()
    database.execute_sql(
        f'INSERT INTO "person_state" ({_STATE_LIST}) SELECT {_STATE_LIST} '
        f'FROM temp."staged_state" WHERE true{_STATE_UPDATE}'
    )
    database.execute_sql('DELETE FROM temp."staged_state"')
    return int(count)


_PERSON_FIELDS = (
    Person.id,
    Person.group,
    Person.source,
    Person.document_key,
    Person.birth_date,
    Person.full_name,
    Person.given_name,
    Person.family_name,
    Person.alternate_names,
)
_PERSON_LIST = ", ".join(_col(f) for f in _PERSON_FIELDS)


#: Event ids per query when looking up the voids aimed at them.
_READ_IDS = 4096


def _padded(values: list[str]) -> list[str]:
    """``values`` repeated at the end up to the next power of two (16 at least), for an
    ``IN`` list: the driver keeps each distinct statement text prepared (Python's sqlite3
    up to 128 of them), and one of thousands of parameters is big, so a few lengths are
    kept instead of one per length (measured: 20 MB more at the peak of a burst)."""
    size = max(16, 1 << (len(values) - 1).bit_length())
    return values + values[-1:] * (size - len(values))


def _person_rec_from_row(row: tuple[Any, ...], stored_keys: str | None = None) -> PersonRec:
    """A ``PersonRec`` from ``_PERSON_FIELDS``; ``stored_keys``: the name keys of the
    person's stored state (JSON), used instead of the names when there are any. They are
    what the names give: every change of names derives the stored state again (a roster
    re-import); a purge empties both. Making keys from names is most of a derivation's time
    for a person with a short history."""
    pid, group, source, doc, birth, full, given, family, alternates = row
    if stored_keys and stored_keys != "[]":
        keys = tuple(json.loads(stored_keys))
    else:
        names = [full, f"{given} {family}", *json.loads(alternates or "[]")]
        keys = tuple(sorted({k for k in (_name_key(n) for n in names if n.strip()) if k}))
    birth_text = birth if isinstance(birth, str) or birth is None else birth.isoformat()
    return PersonRec(
        id=str(_uid(pid)),
        group=group,
        source=source,  # type: ignore[arg-type]
        document_key=doc or "",
        birth_date=birth_text or None,
        name_keys=keys,
    )


def derive_people(
    operation_id: int,
    person_ids: Iterable[str],
    timeline: bool = False,
    fresh: Mapping[str, list[str]] | None = None,
    recs: Mapping[str, EventRec] | None = None,
    groups: Mapping[int, GroupRec] | None = None,
) -> dict[str, DerivedState]:
    """Derive the given people (and whatever their merges tie them to) from the database.

    A few queries whatever the number of people: the people, their resolutions, their events
    (with the voids aimed at them); then the pure core, person by person. ``fresh`` (ingest)
    names, per person, the events just stored that name them: where their stored state allows
    (``derive.can_fold``), those are folded into it and only a window of the earlier events is
    read (:func:`_fold`), so a long history is not read again for every new check-in.
    ``recs`` may hold those fresh events' records (by id), so they need not be read back;
    ``groups`` the operation's groups (:func:`load_groups`), when the caller has them.
    """
    direct = links(operation_id)
    roots = roots_of(direct)
    wanted = {str(p) for p in person_ids}
    targets = {roots.get(p, p) for p in wanted} | wanted
    clusters: dict[str, set[str]] = {}
    for dup, root in roots.items():
        clusters.setdefault(root, set()).add(dup)
    everyone = set(targets)
    for t in list(targets):
        everyone |= clusters.get(t, set())
    if not everyone:
        return {}
    ids = [_hex(p) for p in everyone]
    m, param = _marks(len(ids)), database.obj.param
    people = {
        str(_uid(r[0])): _person_rec_from_row(r[:-1], r[-1])
        for r in database.execute_sql(
            f'SELECT {_PERSON_LIST}, "person_state"."name_keys" FROM "person" '
            'LEFT JOIN "person_state" ON "person_state"."person" = "person"."id" '
            # "+ 0" again: the primary key finds these people; the operation index would
            # scan all.
            f'WHERE "person"."operation_id" + 0 = {param} AND "person"."id" IN ({m})',
            [operation_id, *ids],
        ).fetchall()
    }
    if not people:
        return {}
    resolutions = (
        [
            resolution_rec(r)
            for r in Resolution.select().where(
                (Resolution.operation == operation_id) & Resolution.person.in_(list(everyone))
            )
        ]
        if Resolution.select().where(Resolution.operation == operation_id).exists()
        else []
    )
    if groups is None:
        groups = load_groups(operation_id)
    out: dict[str, DerivedState] = {}
    if fresh:
        resolved = {str(r.person) for r in resolutions}
        resolved |= {str(r.payload.get("into")) for r in resolutions}
        candidates = {
            pid: fresh[pid]
            for pid in targets
            if pid in fresh and pid in people and pid not in roots and pid not in clusters
            if pid not in resolved
        }
        out = _fold(operation_id, candidates, people, groups, recs or {})
        everyone -= out.keys()
        if not everyone:
            return out
        ids = [_hex(p) for p in everyone]
        m = _marks(len(ids))
    # Their events, then the voids aimed at those, by the ids just read: with "person IN (..)
    # OR ref IN (SELECT ..)" PostgreSQL scans every event (it cannot combine an index with a
    # subquery's result), and so did SQLite before the ref index left out its NULLs
    # (migration 0010); "ref IN (SELECT id .. WHERE person IN (..))" read every one of their
    # events a second time (25 ms of 41 for 500 people at 1,000,000 events). "+ 0" keeps
    # SQLite off the operation index (every event of the operation) and on the person and ref
    # indexes (these people's events only).
    found: dict[str, EventRec] = {}
    for row in _fetch_events(
        f'"operation_id" + 0 = {param} AND "person" IN ({m})',
        [operation_id, *ids],
        _events_by_person(),
    ):
        rec = event_rec(row, received=timeline)
        found[rec.id] = rec
    theirs = [_hex(eid) for eid in found]
    for start in range(0, len(theirs), _READ_IDS):
        chunk = _padded(theirs[start : start + _READ_IDS])
        for row in _fetch_events(
            f'"operation_id" + 0 = {param} AND "ref" IN ({_marks(len(chunk))})',
            [operation_id, *chunk],
        ):
            rec = event_rec(row, received=timeline)
            found[rec.id] = rec
    events = list(found.values())
    by_person: dict[str | None, list[EventRec]] = {}
    voids = []
    for e in events:
        if e.kind == "void":
            voids.append(e)
        else:
            by_person.setdefault(e.person, []).append(e)
    for pid in sorted(t for t in targets if t in people and t not in out):
        cluster = set() if pid in direct else clusters.get(pid, set())
        members = {pid, *cluster}
        mine = [e for m_ in members for e in by_person.get(m_, [])]
        ref_ids = {e.id for e in mine}
        mine += [v for v in voids if v.ref in ref_ids]
        related = [
            r
            for r in resolutions
            if str(r.person) in members or str(r.payload.get("into")) in members
        ]
        out[pid] = derive_person(
            people[pid],
            mine,
            related,
            groups,
            merged_into=direct.get(pid),
            members=cluster,
            timeline=timeline,
        )
    return out


def _fold(
    operation_id: int,
    candidates: Mapping[str, list[str]],
    people: Mapping[str, PersonRec],
    groups: Mapping[int, GroupRec],
    recs: Mapping[str, EventRec],
) -> dict[str, DerivedState]:
    """Fold just-stored events into stored states where ``derive.can_fold`` allows.

    Reads the stored states, the new events, and per person only the earlier observations
    from ``derive.fold_window_start`` on plus the furthest one (one join against a VALUES
    list of per-person bounds), and the voids aimed at those. Everyone else is left to the
    caller. ``tests/server/test_reconcile_fold.py`` proves the result equals a full derivation.
    """
    if not candidates:
        return {}
    param, db = database.obj.param, database.obj
    ids = [_hex(p) for p in candidates]
    stored = {
        str(_uid(pid)): (last_seen, _uid(furthest), flags, conflicts, count)
        for pid, last_seen, furthest, flags, conflicts, count in database.execute_sql(
            'SELECT "person", "last_seen_ms", "furthest", "flags", "conflicts", "event_count" '
            f'FROM "person_state" WHERE "person" IN ({_marks(len(ids))})',
            ids,
        ).fetchall()
    }
    wanted = [eid for pid in stored for eid in candidates[pid]]
    if not wanted:
        return {}
    new_of: dict[str, list[EventRec]] = {}
    if all(eid in recs for eid in wanted):
        for eid in wanted:
            rec = recs[eid]
            new_of.setdefault(str(rec.person), []).append(rec)
    else:
        new_ids = [_hex(eid) for eid in wanted]
        for row in database.execute_sql(
            f'SELECT {event_list_sql()} FROM "event" WHERE "id" IN ({_marks(len(new_ids))})',
            new_ids,
        ).fetchall():
            rec = event_rec(row, received=False)
            new_of.setdefault(str(rec.person), []).append(rec)
    bounds: dict[str, tuple[int | None, str | None]] = {}
    for pid, (last_seen, furthest, *_rest) in stored.items():
        new = new_of.get(pid, [])
        if new and len(new) == len(candidates[pid]) and can_fold(last_seen, furthest, new):
            bounds[pid] = (fold_window_start(last_seen, new), furthest)
    if not bounds:
        return {}
    cast = "uuid" if isinstance(db, PostgresqlDatabase) else "TEXT"
    values = ", ".join(
        [f"(CAST({param} AS {cast}), CAST({param} AS BIGINT), CAST({param} AS {cast}))"]
        * len(bounds)
    )
    params: list[Any] = []
    for pid, (start, furthest) in bounds.items():
        params += [
            _hex(pid),
            start,
            _hex(furthest) if furthest else None,
        ]
    fresh_ids = {e.id for new in new_of.values() for e in new}
    earlier = [
        e
        for e in (
            event_rec(row, received=False)
            for row in database.execute_sql(_window_sql(values), [*params, operation_id]).fetchall()
        )
        if e.id not in fresh_ids
    ]
    window: dict[str, list[EventRec]] = {}
    for e in earlier:
        window.setdefault(str(e.person), []).append(e)
    if earlier:
        refs = [_hex(e.id) for e in earlier]
        by_id = {e.id: str(e.person) for e in earlier}
        for row in _fetch_events(f'"kind" = \'void\' AND "ref" IN ({_marks(len(refs))})', refs):
            void = event_rec(row, received=False)
            window[by_id[str(void.ref)]].append(void)
    out = {}
    for pid in bounds:
        _last, _furthest, flags, conflicts, count = stored[pid]
        passed = window.get(pid, [])
        prior = Prior(
            fresh=frozenset(e.id for e in new_of[pid]),
            flags=tuple(json.loads(flags)),
            conflicts=tuple(json.loads(conflicts)),
            event_count=count - sum(1 for e in passed if e.person == pid),
        )
        out[pid] = derive_person(
            people[pid], passed + new_of[pid], [], groups, timeline=False, prior=prior
        )
    return out


def _window_sql(values: str) -> str:
    """The earlier observations a fold reads: per person of ``"w"`` (``VALUES`` of person,
    lower bound of corrected time, furthest observation), those from the bound on and the
    furthest one; the operation is the last parameter.

    PostgreSQL joins the list to the events, with the operation compared as it is: written
    ``operation_id + 0`` (as SQLite needs it elsewhere, to stay off the operation index) its
    selectivity is unknown, the planner takes the events for few, hashes the list and reads
    the whole event table (28 ms instead of 4.5 for 600 people at 60,000 events, growing with
    the table). SQLite plans that join, for a list of some hundreds of people or more, with a
    Bloom filter on the event table's person index, which it fills by reading the whole index:
    0.43 s for 600 people at 1,000,000 events, growing with the table, where looking each
    person up takes 0.04 s. So on SQLite the events are found by person (``IN``) and each
    person's bounds looked up in the list.
    """
    corrected = f"({_col(Event.captured_ms)} - COALESCE({_col(Event.skew_ms)}, 0))"
    person, param = _col(Event.person), database.obj.param
    head = f'WITH "w" ("p", "lo", "f") AS (VALUES {values}) SELECT {event_list_sql()} '
    kinds = f"{_col(Event.kind)} IN ('checkin', 'walkin')"
    if isinstance(database.obj, PostgresqlDatabase):
        return (
            head + f'FROM "w" JOIN "event" ON {person} = "w"."p" '
            f"WHERE {kinds} AND {_col(Event.operation)} = {param} "
            f'AND ({corrected} >= "w"."lo" OR {_col(Event.id)} = "w"."f")'
        )
    return (
        head + f'FROM {_events_by_person()} WHERE {person} IN (SELECT "p" FROM "w") '
        f"AND {kinds} AND {_col(Event.operation)} + 0 = {param} "
        f'AND ({corrected} >= (SELECT "lo" FROM "w" WHERE "w"."p" = {person}) '
        f'OR {_col(Event.id)} = (SELECT "f" FROM "w" WHERE "w"."p" = {person}))'
    )


def dismissed(operation_id: int) -> set[str]:
    """Keys of the discrepancies staff dismissed (``resolve`` resolutions not reverted)."""
    return {
        json.loads(r.payload).get("key")
        for r in Resolution.select().where(
            (Resolution.operation == operation_id)
            & (Resolution.kind == "resolve")
            & Resolution.reverted_by.is_null()
        )
    }


#: First key of the per-operation advisory lock that serialises derived-state writers on PG.
_DERIVE_LOCK = 0x6D75


def serialise(operation_id: int, *, drain: bool = True) -> None:
    """Take turns per operation until commit (PostgreSQL; SQLite already has one writer),
    then fold in the operation's derive backlog (``backlog.drain``) unless ``drain`` is false.

    Processes deriving the same people at once would each miss the other's events and
    collide on ``person_state`` rows, so every writer (ingest, resolutions, rebuild) takes
    this lock before it reads what it derives from; and since a stored state must include
    every event but the ones a writer brings, whatever ingest left behind comes in first.
    """
    if isinstance(database.obj, PostgresqlDatabase):
        database.execute_sql("SELECT pg_advisory_xact_lock(%s, %s)", (_DERIVE_LOCK, operation_id))
    if drain:
        from server.reconcile import backlog  # backlog builds on this module

        backlog.drain(operation_id)


def touch(operation_id: int) -> None:
    """Replace the operation's change mark (call inside the writer's transaction)."""
    token = uuid.uuid4().hex
    ReconcileMark.insert(operation=operation_id, token=token, updated_at=utcnow()).on_conflict(
        conflict_target=[ReconcileMark.operation],
        update={ReconcileMark.token: token, ReconcileMark.updated_at: utcnow()},
    ).execute()


def mark_token(operation_id: int) -> str | None:
    """The operation's change mark as it stands (None before any derived-state write)."""
    mark = ReconcileMark.get_or_none(ReconcileMark.operation == operation_id)
    return None if mark is None else str(mark.token)


def fingerprint(operation_id: int) -> tuple[Any, ...] | None:
    """What cached cross-person results of an operation depend on; None: do not cache.

    The mark changes with every derived-state write; the change log with resolutions, groups
    and roster imports; people's count and latest update with anything else done to them (a
    purge). Read it before the data it guards, so a cache can only be older than its key.
    """
    param = database.obj.param
    row = database.execute_sql(
        f'SELECT (SELECT "token" FROM "reconcile_mark" WHERE "operation_id" = {param}), '
        f'(SELECT MAX("id") FROM "change" WHERE "operation_id" = {param}), '
        f'(SELECT COUNT(*) FROM "person" WHERE "operation_id" = {param}), '
        f'(SELECT MAX("updated_at") FROM "person" WHERE "operation_id" = {param})',
        [operation_id] * 4,
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return (operation_id, *(str(v) for v in row))


def recompute(operation_id: int, person_ids: Iterable[str]) -> int:
    """Refresh the stored state of ``person_ids`` (inside the caller's transaction)."""
    serialise(operation_id)
    touch(operation_id)
    return write_states(operation_id, derive_people(operation_id, person_ids).values())


def on_events(
    operation_id: int,
    rows: list[dict[str, Any]],
    recs: Mapping[str, EventRec] | None = None,
    *,
    drained: bool = False,
    groups: Mapping[int, GroupRec] | None = None,
) -> int:
    """Fold freshly stored events into derived state: one batch, only the people they touch.

    ``recs`` (ingest) holds the rows' records by event id (:func:`stored_event_rec`);
    ``drained``: called by ``backlog.drain``, which has taken the turn already.
    """
    if not rows:
        return 0
    serialise(operation_id, drain=not drained)
    touch(operation_id)  # even headcounts and voids of no person change the headcount queue
    return write_states(operation_id, fresh_states(operation_id, rows, recs, groups).values())


def fresh_states(
    operation_id: int,
    rows: list[dict[str, Any]],
    recs: Mapping[str, EventRec] | None = None,
    groups: Mapping[int, GroupRec] | None = None,
) -> dict[str, DerivedState]:
    """The new states of the people that freshly stored events (``rows``: their ``id``,
    ``person`` and ``ref``) touch, from the stored states and events; reads only.

    Every event of those people not in ``rows`` must be in their stored states already.
    """
    fresh: dict[str, list[str]] = {}
    for row in rows:
        if row.get("person"):
            fresh.setdefault(str(row["person"]), []).append(str(row["id"]))
    people = set(fresh)
    refs = [Event.id.db_value(row["ref"]) for row in rows if row.get("ref")]
    if refs:
        aimed_at = {
            str(_uid(r[0]))
            for r in _fetch(
                (Event.person,), f'"id" IN ({_marks(len(refs))}) AND "person" IS NOT NULL', refs
            )
        }
        # A void changes what its target's person has: derive them from their whole history.
        fresh = {pid: events for pid, events in fresh.items() if pid not in aimed_at}
        people |= aimed_at
    if not people:
        return {}
    return derive_people(operation_id, people, fresh=fresh, recs=recs, groups=groups)


def rebuild(operation_id: int) -> dict[str, int]:
    """Recompute all derived state of an operation from events and resolutions alone."""
    serialise(operation_id, drain=False)
    # Everything is derived from the events again: nothing is left behind.
    DeriveBacklog.delete().where(DeriveBacklog.operation == operation_id).execute()
    touch(operation_id)
    snapshot = load_snapshot(operation_id, received=False)
    derived = derive_operation(snapshot, timeline=False)
    active = {
        str(r.id)
        for r in Resolution.select(Resolution.id).where(
            (Resolution.operation == operation_id) & Resolution.reverted_by.is_null()
        )
    }
    merges = [r for r in snapshot.resolutions if r.kind == "merge" and r.id in active]
    PersonState.delete().where(PersonState.operation == operation_id).execute()
    PersonLink.delete().where(PersonLink.operation == operation_id).execute()
    for r in merges:
        PersonLink.create(
            operation=operation_id, duplicate=r.person, primary=r.payload["into"], resolution=r.id
        )
    count = write_states(operation_id, derived.people.values())
    return {
        "people": count,
        "events": len(snapshot.events),
        "resolutions": len(snapshot.resolutions),
    }


def stored_states(
    operation_id: int,
    group: int | None = None,
) -> list[tuple[Person, PersonState | None]]:
    """People of an operation with their stored state (None: never derived, so not seen)."""
    query = (
        Person.select(Person, PersonState)
        .join(PersonState, JOIN.LEFT_OUTER, on=(PersonState.person == Person.id), attr="st")
        .where(Person.operation == operation_id)
    )
    if group is not None:
        query = query.where(
            (PersonState.group == group) | (PersonState.person.is_null() & (Person.group == group))
        )
    out = []
    for p in query.order_by(Person.full_name, Person.id):
        st = getattr(p, "st", None)
        out.append((p, st if st is not None and st.person else None))
    return out


def epoch_us_sql(column: str) -> str:
    """SQL for a naive-UTC timestamp column as whole microseconds since the epoch.

    SQLite stores ``YYYY-MM-DD HH:MM:SS[.ffffff]`` text; PostgreSQL a ``timestamp``. Computed
    by the database, it saves parsing a datetime per row; ``ms_of_us`` then gives exactly
    what ``to_ms`` gives for the same value.
    """
    if isinstance(database.obj, PostgresqlDatabase):
        return f"CAST(ROUND(EXTRACT(EPOCH FROM {column}) * 1000000) AS BIGINT)"
    return (
        f"(CAST(strftime('%s', {column}) AS INTEGER) * 1000000"
        f" + CAST(substr({column} || '.000000', 21, 6) AS INTEGER))"
    )


def ms_of_us(us: int) -> int:
    """``to_ms`` of the datetime ``us`` microseconds after the epoch (the same float steps)."""
    return int(us / 1_000_000 * 1000)


class _Words(dict[Any, Any]):
    """Each value the first time it is given: ``words[x]`` is equal to ``x``, and the same
    object for every equal ``x`` (a dictionary lookup in C; the few distinct texts of a column)."""

    def __missing__(self, value: Any) -> Any:
        self[value] = value
        return value


def _snapshot_events(
    where: str, params: list[Any], received: bool, timeline: bool = True
) -> list[EventRec]:
    """Every matching event as ``event_rec`` would make it, in one loop (1,000,000 in a report).

    The receive time comes as epoch microseconds from the database; UUIDs of devices and people
    are formatted once each and shared by their events; only flags' sealed bodies are opened.
    The few distinct texts of kinds, statuses, methods, authors and time flags are shared too
    (``_Words``): the driver makes a new string for every value of every row, and a million
    copies of ``"checkin"`` spread the records over more memory, which every later pass over
    them pays for in cache misses (and the report's second process in pickling).
    ``timeline=False``: without what only timelines show (``event_list_sql``).
    """
    when = epoch_us_sql(_col(Event.received_at)) if received else "0"
    rows = database.execute_sql(
        f'SELECT {event_list_sql(received=when, timeline=timeline)} FROM "event" WHERE {where}',
        params,
    ).fetchall()
    shared: dict[Any, str] = {}

    def uid(value: Any) -> str:
        text = shared.get(value)
        if text is None:
            text = shared[value] = str(_uid(value))
        return text

    words = _Words()
    make = tuple.__new__
    out: list[EventRec] = []
    append = out.append
    for (
        eid,
        device,
        seq,
        kind,
        captured,
        skew,
        person,
        cp,
        group,
        status,
        method,
        author,
        count,
        ref,
        when,
        time_flag,
        body,
    ) in rows:
        text = str(eid)
        if len(text) == 32:
            text = f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"
        append(
            make(
                EventRec,
                (
                    text,
                    shared.get(device) or uid(device),
                    seq,
                    words[kind],
                    captured,
                    skew or 0,
                    None if person is None else shared.get(person) or uid(person),
                    cp,
                    group,
                    words[status],
                    words[method],
                    words[author],
                    count,
                    None if ref is None else _uid(ref),
                    json.loads(Event.body.python_value(body)).get("flag")
                    if kind == "flag"
                    else None,
                    int(when / 1_000_000 * 1000) if received else 0,  # ms_of_us, inlined
                    words[time_flag],
                ),
            )
        )
    return out
