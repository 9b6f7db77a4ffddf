"""Derive behind ingest: acknowledge once events are durable, fold them in just after.

With ``DERIVE = "behind"`` (the default) a push stores its events, and one backlog row per
operation holding their ids (``derive_backlog``), in one transaction, and answers; it does
not derive state on the request's thread. The backlog is folded into derived state:

* by the deriver, a second process that ``serve`` starts (``muster-server derive``), as soon
  as rows appear: on a second core, while the server goes on taking pushes;
* by whoever takes the operation's derive turn first (``store.serialise``): a resolution, a
  rebuild or an inline ingest drains the backlog before it reads what it derives from;
* before any staff request or CLI command that reads derived state (:func:`catch_up`), which
  waits for a running deriver or drains itself: so what staff see still includes every
  acknowledged event, as with ``"inline"``. Device sync requests do not wait. A staff
  request that would have to make up more than ``CATCH_UP_LIMIT`` events itself answers
  503 ``catching_up`` instead, and leaves them to the deriver: it never shows figures that
  miss acknowledged events, and never holds the write lock (and every device's push) for
  a long drain.

Draining is one write transaction: the rows of the operation, read in order, are folded in
with ``store.on_events`` (people in disjoint parts, so that every event of a person, and
every void aimed at one of their events, is folded in the same call) and deleted. A crash
before the commit leaves the rows for the next turn; the events were durable all along.
``tests/server/test_reconcile_backlog.py`` proves the state after draining equals the state
after a rebuild, however and whenever it is drained.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, current_app, has_app_context, request
from peewee import SqliteDatabase

from server import forked
from server.db import database, write_transaction
from server.errors import CatchingUp
from server.models import DeriveBacklog
from server.reconcile import store
from server.reconcile.derive import EventRec

log = logging.getLogger("muster.derive")

#: People derived at a time while draining: bounds the SQL parameter lists.
PART = 2000
#: Events a part's people hold at most, as far as their stored states tell (plus the new
#: ones), unless one person alone holds more: what a part reads back and works on grows
#: with its people's histories. Measured at 1,000,000 events (50 a person), a round of
#: 20,000 new events took 333 MB more in parts of 2,000 people, 207 / 155 / 124 MB with
#: parts of 20,000 / 5,000 / 2,000 events (49-67 s, the smallest the slowest).
PART_EVENTS = 5_000
#: Event ids read back per query.
READ = 2000
#: Blueprints whose requests need no catch-up: devices' sync (a push writes, and a pull's
#: states are at most the deriver's lag behind: the device shows its own captures anyway),
#: health checks, metrics, the field app's files and the API description.
_EXEMPT = frozenset({"sync", "health", "metrics", "fieldapp", "openapi"})
#: Staff requests that read no derived state need no catch-up either, and so never answer
#: ``catching_up``: logging in, staff and tokens, devices and enrolment, the audit log, and
#: the nightly reports (made from a frozen snapshot of the events, not from derived state).
_NO_STATE = frozenset(
    {
        "console.login",
        "console.logout",
        "console.set_language",
        "console.devices",
        "console.create_code",
        "console.revoke_device",
        "console.reports",
        "console.report_file",
        "console.verify_report",
        "staff.create_staff",
        "staff.create_token",
        "staff.list_staff",
        "staff.me",
        "staff.revoke_current_token",
        "devices.create_enrolment",
        "devices.list_devices",
        "devices.list_quarantine",
        "devices.revoke_device",
        "audit.audit_log",
        "reports.list_reports",
        "reports.download",
        "reports.verify",
    }
)


def behind() -> bool:
    """Whether ingest leaves derivation to the backlog (``DERIVE`` setting)."""
    return bool(has_app_context() and current_app.config.get("DERIVE") == "behind")


def defer(operation_id: int, rows: Iterable[dict[str, Any]]) -> int:
    """Note just-stored events for derivation (inside the transaction that stores them): one
    row holding their ids, 16 bytes each."""
    ids = b"".join(_uuid(row["id"]).bytes for row in rows)
    if ids:
        DeriveBacklog.insert(operation=operation_id, events=ids).execute()
    return len(ids) // 16


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _parts(
    recs: list[EventRec], aimed_at: dict[str, str], history: dict[str, int] | None = None
) -> list[list[dict[str, Any]]]:
    """The events as ``on_events`` rows, in parts that never split a person's events: at most
    ``PART`` people, whose earlier events (``history``: stored counts) and new ones add up
    to at most ``PART_EVENTS`` (a person with more has a part of their own)."""
    by_person: dict[str | None, list[dict[str, Any]]] = {}
    for rec in recs:
        row = {"id": rec.id, "person": rec.person, "ref": rec.ref}
        owner = rec.person or (aimed_at.get(rec.ref) if rec.ref else None)
        by_person.setdefault(owner, []).append(row)
    loose = by_person.pop(None, [])
    history = history or {}
    parts: list[list[dict[str, Any]]] = []
    part: list[dict[str, Any]] = []
    people = events = 0
    for owner, rows in by_person.items():
        weight = history.get(str(owner), 0) + len(rows)
        if people and (people >= PART or events + weight > PART_EVENTS):
            parts.append(part)
            part, people, events = [], 0, 0
        part += rows
        people, events = people + 1, events + weight
    parts.append(part)
    parts[0] = loose + parts[0]
    return parts


def _history(recs: list[EventRec], aimed_at: dict[str, str]) -> dict[str, int]:
    """How many events the stored states of the people these events touch hold."""
    people = sorted({store._hex(r.person) for r in recs if r.person})
    people = sorted(set(people) | {store._hex(p) for p in aimed_at.values()})
    param = database.obj.param
    out: dict[str, int] = {}
    for start in range(0, len(people), READ):
        chunk = people[start : start + READ]
        for person, count in database.execute_sql(
            'SELECT "person", "event_count" FROM "person_state" '
            f'WHERE "person" IN ({", ".join([param] * len(chunk))})',
            chunk,
        ).fetchall():
            out[str(store._uid(person))] = int(count or 0)
    return out


def _taken(operation_id: int, limit: int | None = None) -> tuple[list[int], list[EventRec]]:
    """The operation's backlog, oldest rows first: the rows' ids and their events' records.

    ``limit``: stop after the row that brings the events to at least this many (a deriver
    round); the rest stays for the next one.
    """
    rows = database.execute_sql(
        'SELECT "id", "events" FROM "derive_backlog" '
        f'WHERE "operation_id" = {database.obj.param} ORDER BY "id"',
        [operation_id],
    ).fetchall()
    taken: list[int] = []
    ids: list[str] = []
    for row_id, blob in rows:
        raw = bytes(blob)
        taken.append(int(row_id))
        ids += [raw[i : i + 16].hex() for i in range(0, len(raw), 16)]
        if limit is not None and len(ids) >= limit:
            break
    if not taken:
        return [], []
    param = database.obj.param
    found: dict[str, EventRec] = {}
    for start in range(0, len(ids), READ):
        chunk = ids[start : start + READ]
        for row in database.execute_sql(
            f'SELECT {store.event_list_sql()} FROM "event" '
            f'WHERE "id" IN ({", ".join([param] * len(chunk))})',
            chunk,
        ).fetchall():
            rec = store.event_rec(row, received=False)
            found[rec.id] = rec
    # Events are never deleted while an operation is open; a purge takes whole operations.
    return taken, [found[u] for u in (str(store._uid(h)) for h in ids) if u in found]


def _aimed_at(recs: list[EventRec]) -> dict[str, str]:
    """The person of each event the voids among ``recs`` aim at (a void goes with them)."""
    param = database.obj.param
    refs = sorted({store._hex(r.ref) for r in recs if r.ref})
    aimed_at: dict[str, str] = {}
    for start in range(0, len(refs), READ):
        chunk = refs[start : start + READ]
        for eid, person in database.execute_sql(
            'SELECT "id", "person" FROM "event" WHERE "person" IS NOT NULL AND '
            f'"id" IN ({", ".join([param] * len(chunk))})',
            chunk,
        ).fetchall():
            aimed_at[str(store._uid(eid))] = str(store._uid(person))
    return aimed_at


def _forget(rows: list[int]) -> None:
    """Delete the backlog rows a drain took: by id, as on PostgreSQL a row with a smaller id
    can commit after one with a larger (ids are handed out before commit), so "up to the
    last one taken" could delete a row no drain has seen."""
    param = database.obj.param
    for start in range(0, len(rows), READ):
        chunk = rows[start : start + READ]
        database.execute_sql(
            f'DELETE FROM "derive_backlog" WHERE "id" IN ({", ".join([param] * len(chunk))})',
            chunk,
        )


def drain(operation_id: int, limit: int | None = None) -> int:
    """Fold the operation's backlog into derived state and delete it; the events folded.

    Call inside a write transaction, having taken the operation's turn (``store.serialise``
    calls this itself). ``limit``: take only the oldest rows, up to about this many events.
    """
    taken, recs = _taken(operation_id, limit)
    if not taken:
        return 0
    by_id, groups = {r.id: r for r in recs}, store.load_groups(operation_id)
    aimed_at = _aimed_at(recs)
    for part in _parts(recs, aimed_at, _history(recs, aimed_at)):
        store.on_events(operation_id, part, by_id, drained=True, groups=groups)
    _forget(taken)
    return len(recs)


def drain_beside(operation_id: int, limit: int | None = None) -> int:
    """Drain as the deriver does, mostly outside the write lock; the events folded.

    On SQLite (one writer for the whole database) the new states are worked out in a read
    transaction, whose snapshot holds the backlog rows and every event before them, while
    pushes go on committing; the write transaction then only stores them, unless a writer
    derived meanwhile (the operation's change mark moved), when it drains in turn instead.
    On PostgreSQL pushes do not wait for the operation's turn: drain in it.

    ``limit``: take only the oldest rows, up to about this many events (a deriver round).
    The states then stored may already include some later events (any derivation reads a
    person's events as they stand); the round that takes those derives the person again
    instead of folding them in (``derive.FOLDABLE_KINDS``), so nothing counts twice.
    """
    if not isinstance(database.obj, SqliteDatabase):
        with write_transaction():
            return drain_in_turn(operation_id, limit)
    with database.atomic():  # one snapshot for every read below (a deferred transaction)
        mark = store.mark_token(operation_id)
        taken, recs = _taken(operation_id, limit)
        if not taken:
            return 0
        by_id, groups = {r.id: r for r in recs}, store.load_groups(operation_id)
        aimed_at = _aimed_at(recs)
        store.stage_state_rows([], fresh=True)
        for part in _parts(recs, aimed_at, _history(recs, aimed_at)):
            derived = store.fresh_states(operation_id, part, by_id, groups).values()
            # Aside in a temporary table, not in memory (a cluster's root may come twice:
            # the later row wins, as it would be written last).
            store.stage_state_rows(store.state_rows(operation_id, derived))
    with write_transaction():
        if store.mark_token(operation_id) != mark:
            store.stage_state_rows([], fresh=True)
            return drain_in_turn(operation_id, limit)
        store.write_staged_state_rows()
        store.touch(operation_id)
        _forget(taken)
    return len(recs)


def drain_in_turn(operation_id: int, limit: int | None = None) -> int:
    """Take the operation's turn and drain (inside a write transaction)."""
    store.serialise(operation_id, drain=False)
    return drain(operation_id, limit)


def pending(operation_id: int | None = None) -> list[int]:
    """Operations (of all, or just this one) with events not yet folded into derived state."""
    where, params = "", []
    if operation_id is not None:
        where, params = f' WHERE "operation_id" = {database.obj.param}', [operation_id]
    return [
        op
        for (op,) in database.execute_sql(
            f'SELECT DISTINCT "operation_id" FROM "derive_backlog"{where}', params
        ).fetchall()
    ]


def waiting(operation_id: int | None = None, upto: int | None = None) -> int:
    """Events in the backlog (16 bytes of id each): every operation's, or one's; in the rows
    up to ``upto`` only, when given."""
    where, params = _rows_where(operation_id, upto)
    (size,) = database.execute_sql(
        f'SELECT COALESCE(SUM(LENGTH("events")), 0) FROM "derive_backlog"{where}', params
    ).fetchone()
    return int(size) // 16


def waiting_per_operation() -> dict[int, int]:
    """:func:`waiting` of each operation that has a backlog."""
    return {
        int(op): int(size) // 16
        for op, size in database.execute_sql(
            'SELECT "operation_id", SUM(LENGTH("events")) FROM "derive_backlog" '
            'GROUP BY "operation_id"'
        ).fetchall()
    }


def _rows_where(operation_id: int | None, upto: int | None) -> tuple[str, list[int]]:
    """The ``WHERE`` clause (or none) of backlog rows of one operation (or all), up to a row."""
    param = database.obj.param
    terms, params = [], []
    if operation_id is not None:
        terms.append(f'"operation_id" = {param}')
        params.append(operation_id)
    if upto is not None:
        terms.append(f'"id" <= {param}')
        params.append(upto)
    return (" WHERE " + " AND ".join(terms) if terms else ""), params


#: Set by ``serve`` while its deriver process runs: a request then waits for it (up to
#: ``WAIT`` seconds) instead of doing the same work at the same time.
def _no_deriver() -> bool:
    return False


deriver_alive: Callable[[], bool] = _no_deriver
#: Seconds a request waits for the deriver before it drains in turn itself.
WAIT = 3.0
#: Events a request drains itself at most, once it has waited for a running deriver: what
#: is left to fold in after ``WAIT`` seconds and is more than this (after a reconnect burst,
#: say) is left to the deriver, and the request answers 503 ``catching_up``. Measured after
#: a burst of 200,000 events, before this limit: the first staff read took 10.3 s, and held
#: the write lock, and so every device's push, for 6.7 s of it.
CATCH_UP_LIMIT = 5_000


def catch_up(operation_id: int | None = None) -> int:
    """Make derived state include every event acknowledged before the call (one query when
    there is nothing to do); the operations drained here.

    While a deriver runs, wait for it to have folded in the rows there are now (later rows
    are events acknowledged after the call began); if it has not within ``WAIT`` seconds,
    drain what is left here, in the operation's turn, unless that is more than
    ``CATCH_UP_LIMIT`` events: then raise :class:`~server.errors.CatchingUp` (the deriver
    goes on). With no deriver, drain here whatever there is, ``ROUND`` events per write
    transaction, so pushes commit between them.
    """
    last = _last_row(operation_id)
    if last is None:
        return 0
    if deriver_alive():
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            time.sleep(0.005)
            if _last_row(operation_id, upto=last) is None:
                return 0
        left = waiting(operation_id, upto=last)
        if left > CATCH_UP_LIMIT:
            raise CatchingUp(left)
    ops = pending(operation_id)
    for op in ops:
        while _last_row(op, upto=last) is not None:
            with write_transaction():
                drain_in_turn(op, ROUND)
    return len(ops)


def _last_row(operation_id: int | None, upto: int | None = None) -> int | None:
    """The newest backlog row (of one operation, or of all; at most ``upto``), or None."""
    where, params = _rows_where(operation_id, upto)
    row = database.execute_sql(f'SELECT MAX("id") FROM "derive_backlog"{where}', params).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _before_request() -> None:
    endpoint = request.endpoint or "static"
    static = endpoint == "static" or endpoint.endswith(".static")
    if static or request.blueprint in _EXEMPT or endpoint in _NO_STATE:
        return
    catch_up()


def init_app(app: Flask) -> None:
    """Check the ``DERIVE`` setting; catch up before every request that may read derived
    state."""
    if app.config.get("DERIVE") not in ("inline", "behind"):
        raise ValueError('DERIVE must be "behind" or "inline"')
    app.before_request(_before_request)


# The deriver process ----------------------------------------------------------------------
#: Seconds between looks at an empty backlog.
IDLE_POLL = 0.02


#: Events a deriver round takes of an operation's backlog at most (whole rows: a row holds
#: one commit's events, so a round may go over by part of one). Bounds the memory a round
#: needs however far behind the deriver has fallen; the next round starts at once.
ROUND = 20_000
#: With ``fork``, a round is forked only when at least this many events wait: a fork costs
#: the child copies of every page of the parent it writes to (reference counts), measured
#: as 15% of ingest's end-to-end rate when every round of a few pushes forked; a round
#: smaller than this needs little memory, so the parent's high-water mark stays small.
FORK_FROM = 5_000
#: Seconds a forked round may take before the deriver gives up on it and drains in process
#: (a round is one transaction per operation: a killed child commits nothing).
ROUND_TIMEOUT = 3600.0


def _drain_round(ops: list[int]) -> int:
    """Drain each operation as the deriver does (``drain_beside``, at most ``ROUND`` events
    each); the operations drained."""
    for op in ops:
        drain_beside(op, ROUND)
    return len(ops)


def run(
    stop: Callable[[], bool],
    *,
    poll: float = IDLE_POLL,
    parent: int | None = None,
    fork: bool = False,
    after_round: Callable[[], bool] | None = None,
) -> int:
    """Drain every operation's backlog as rows appear until ``stop()`` (or the parent process
    is gone); the number of drains. Errors are logged (kind only) and retried after a pause:
    the rows stay until a drain commits.

    ``fork``: drain a round of ``FORK_FROM`` events or more in a forked child
    (``server.forked``; in process where the platform cannot fork or the child fails). Its
    working set (every event of the people it derives, their states) then leaves with the
    child: in process, the memory a round needs stays with the process as its high-water
    mark, which would grow with how far behind the deriver falls. Smaller rounds run in
    process. Only for a process with no other threads (``serve_forever``).

    ``after_round``: asked after each round; True stops the loop there.
    """
    drains = 0
    try:
        while not stop():
            if parent is not None and os.getppid() != parent:
                log.info("deriver: the server is gone; stopping")
                break
            try:
                # One connection for as long as it works (a PostgreSQL connection is a
                # server process of its own: opening one per look at an idle backlog took
                # a third of the deriver's time), closed before a fork and after an error.
                database.connect(reuse_if_open=True)
                ops = pending()
                apart = bool(ops) and fork and waiting() >= FORK_FROM
                if ops and not apart:
                    drains += _drain_round(ops)
                if apart:
                    database.close()  # no connection crosses the fork
                    round_ = functools.partial(_drain_round, ops)
                    drains += forked.start(
                        round_, workers=2, timeout=ROUND_TIMEOUT, connect=True
                    ).result()
            except Exception as exc:
                log.warning("deriver: drain failed (%s); retrying", type(exc).__name__)
                _close_quietly()
                time.sleep(1.0)
                continue
            if not ops:
                time.sleep(poll)
            elif after_round is not None and after_round():
                break
    finally:
        _close_quietly()
    return drains


def _close_quietly() -> None:
    """Close this thread's connection, whatever state it is in (after an error: broken)."""
    try:
        if not database.is_closed():
            database.close()
    except Exception as exc:
        log.debug("deriver: closing the connection failed (%s)", type(exc).__name__)


def serve_forever(
    parent: int | None = None, *, fork: bool = True, swollen: Callable[[], bool] | None = None
) -> bool:
    """The deriver's main loop, stopped by SIGTERM or SIGINT (big rounds in a forked child
    unless ``fork`` is false). Returns True when it stopped because ``swollen()`` said the
    process holds too much memory (checked between rounds): the caller starts afresh."""
    stopping = False
    full = False

    def stop_signal(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    def after_round() -> bool:
        nonlocal full
        full = swollen is not None and swollen()
        return full

    signal.signal(signal.SIGTERM, stop_signal)
    signal.signal(signal.SIGINT, stop_signal)
    run(lambda: stopping, parent=parent, fork=fork, after_round=after_round)
    return full and not stopping
