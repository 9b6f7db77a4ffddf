"""Reconciliation for staff: overview, group summaries, roster with states, timelines,
discrepancy queues and resolutions. Viewers read; coordinators resolve."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import Blueprint, Response, request, stream_with_context

from server.api.openapi import api_doc
from server.api.util import load_json, paging
from server.auth.access import current_staff, operation_for, require_staff
from server.crypto.fields import blind_index
from server.errors import MusterError, NotFound
from server.models import Group, Operation, Person, Resolution
from server.operations.schemas import MAX_ID
from server.people.schemas import person_schema_for
from server.reconcile import queues, resolve, store
from server.reconcile.derive import STATES
from server.reconcile.derive import PersonState as DerivedState
from server.reconcile.schemas import (
    GroupSummarySchema,
    OverviewSchema,
    QueuePageSchema,
    ResolutionCreateSchema,
    ResolutionPageSchema,
    ResolutionSchema,
    RosterFilterSchema,
    RosterPageSchema,
    RosterSearchSchema,
    TimelineSchema,
)
from server.reports import exports
from sync.normalize import document_key, name_tokens
from sync.protocol import ErrorCode

bp = Blueprint("reconcile", __name__)
resolution_create = ResolutionCreateSchema()
roster_filter_schema = RosterFilterSchema()
roster_search_schema = RosterSearchSchema()


def state_dict(s: DerivedState) -> dict[str, Any]:
    return {
        "state": s.state,
        "reason": s.reason,
        "group": s.group,
        "last_checkpoint": s.last_checkpoint,
        "last_seen_ms": s.last_seen_ms,
        "route_pos": s.route_pos,
        "merged_into": s.merged_into,
        "conflicts": s.conflicts,
        "flags": s.flags,
        "event_count": s.event_count,
        "version": s.version,
    }


def _summary(
    op: Operation, gid: int | None, data: dict[str, Any] | None, group: Group | None
) -> dict[str, Any]:
    empty = {
        "records": 0,
        "expected": 0,
        "accounted": 0,
        "unaccounted": 0,
        "by_state": dict.fromkeys(STATES, 0),
        "by_checkpoint": {},
    }
    return {
        "group": gid,
        "name": group.name if group else "",
        "planned_size": group.expected_size if group else 0,
        **(data or empty),
    }


def _group(op: Operation, gid: int) -> Group:
    group = Group.get_or_none((Group.operation == op.id) & (Group.id == gid))
    if group is None:
        raise NotFound("No such group in this operation.")
    return group


@bp.get("/operations/<int:op_id>/overview")
@api_doc("Operation overview: totals, every group's summary, queue sizes", response=OverviewSchema)
@require_staff()
def overview(op_id: int) -> dict[str, Any]:
    op = operation_for(current_staff(), op_id)
    sums = queues.summaries(op.id)
    groups = {g.id: g for g in Group.select().where(Group.operation == op.id)}
    items = [
        _summary(op, gid, sums.get(gid), groups.get(gid))
        for gid in sorted(set(groups) | {k for k in sums if k is not None})
    ]
    if None in sums:
        items.append(_summary(op, None, sums[None], None))
    totals = _summary(op, None, None, None)
    for item in items:
        for key in ("records", "expected", "accounted", "unaccounted", "planned_size"):
            totals[key] += item[key]
        for state, n in item["by_state"].items():
            totals["by_state"][state] += n
        for cp, n in item["by_checkpoint"].items():
            totals["by_checkpoint"][cp] = totals["by_checkpoint"].get(cp, 0) + n
    counts = {name: queues.queue_count(op.id, name) for name in queues.QUEUES if name != "late"}
    return {"operation": op.id, "totals": totals, "groups": items, "queues": counts}


@bp.get("/operations/<int:op_id>/groups/<int:group_id>/summary")
@api_doc("One group: expected, accounted, by checkpoint and by state", response=GroupSummarySchema)
@require_staff()
def group_summary(op_id: int, group_id: int) -> dict[str, Any]:
    op = operation_for(current_staff(), op_id)
    group = _group(op, group_id)
    return _summary(op, group.id, queues.group_summary(op.id, group.id), group)


def _matches(person: Person, state: DerivedState, q: str, may_see_documents: bool) -> bool:
    key = document_key(q) if may_see_documents and len(q) >= 4 else ""
    if key and blind_index(key) == person.document_key:
        return True
    wanted = name_tokens(q)
    if not wanted:
        return False
    keys = state.name_keys or list(store.name_keys_of(person))
    have = {t for k in keys for t in k.split()}
    return all(any(h.startswith(w) for h in have) for w in wanted)


#: The answer to a search term in a URL; it never repeats the term.
SEARCH_IN_BODY = (
    "Search terms are not taken in the URL (they would reach logs and browser history): send "
    "them as q in the JSON body of POST /api/v1/operations/{op}/roster/search or "
    "/roster/search.csv."
)


def _query_filters() -> dict[str, Any]:
    """The roster filters of a GET's query arguments: group, state, source; never a search."""
    if "q" in request.args:
        raise MusterError(SEARCH_IN_BODY, code=ErrorCode.BAD_REQUEST)
    group = request.args.get("group")
    # isascii: "²".isdigit() is true but int() refuses it; the cap keeps the driver from overflow.
    if group and not (group.isascii() and group.isdigit() and int(group) <= MAX_ID):
        raise MusterError("group is an integer id.", code=ErrorCode.BAD_REQUEST)
    states = [s for s in request.args.get("state", "").split(",") if s]
    if any(s not in STATES for s in states):
        raise MusterError(
            "Unknown state filter.", code=ErrorCode.BAD_REQUEST, details={"states": list(STATES)}
        )
    return {
        "q": "",
        "group": int(group) if group else None,
        "state": states,
        "source": request.args.get("source") or None,
    }


def _roster(op: Operation, filters: dict[str, Any]) -> list[tuple[Person, DerivedState]]:
    """The roster rows ``filters`` ask for (group, state, source, q), in name order.

    ``filters`` is what ``_query_filters`` or ``RosterFilterSchema`` gives. A viewer's ``q``
    matches names only, never a document number.
    """
    staff = current_staff()
    rows = queues.states(op.id, filters["group"])
    if filters["state"]:
        rows = [(p, s) for p, s in rows if s.state in filters["state"]]
    if filters["source"]:
        rows = [(p, s) for p, s in rows if p.source == filters["source"]]
    q = filters["q"].strip()
    if q:
        rows = [(p, s) for p, s in rows if _matches(p, s, q, staff.role != "viewer")]
    return rows


def _page(op: Operation, filters: dict[str, Any], limit: int, offset: int) -> dict[str, Any]:
    """One page of the filtered roster, each person as the staff member's role may see them."""
    rows = _roster(op, filters)
    schema = person_schema_for(current_staff().role)
    return {
        "items": [
            {"person": schema.dump(p), "state": state_dict(s)}
            for p, s in rows[offset : offset + limit]
        ],
        "total": len(rows),
        "limit": limit,
        "offset": offset,
    }


def _csv(op: Operation, filters: dict[str, Any]) -> Response:
    """The filtered roster as a streamed CSV download, columns as the role may see them."""
    rows = _roster(op, filters)
    schema = person_schema_for(current_staff().role)
    return Response(
        stream_with_context(exports.roster_csv(rows, schema)),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=roster-{op.id}.csv"},
    )


@bp.get("/operations/<int:op_id>/roster")
@api_doc(
    "People with their reconciliation state; filters group, state, source. To search by name "
    "or document number use POST .../roster/search (a q here answers 400)",
    response=RosterPageSchema,
    query={
        "group": "group id",
        "state": "comma-separated states",
        "source": "roster or walk-in",
        "limit": "page size",
        "offset": "start",
    },
    refused_query=("q",),
)
@require_staff()
def roster(op_id: int) -> dict[str, Any]:
    op = operation_for(current_staff(), op_id)
    limit, offset = paging()
    return _page(op, _query_filters(), limit, offset)


@bp.post("/operations/<int:op_id>/roster/search")
@api_doc(
    "Search the roster by name in any script or (coordinators, admins) document number, with "
    "the roster's filters; the terms travel in the body, never the URL",
    body=RosterSearchSchema,
    response=RosterPageSchema,
)
@require_staff()
def roster_search(op_id: int) -> dict[str, Any]:
    op = operation_for(current_staff(), op_id)
    data = load_json(roster_search_schema)
    return _page(op, data, data.pop("limit"), data.pop("offset"))


@bp.get("/operations/<int:op_id>/roster.csv")
@api_doc(
    "The roster with states as CSV (viewers get no document numbers or phones); to search, "
    "POST .../roster/search.csv",
    query={"group": "group id", "state": "comma-separated states", "source": "roster or walk-in"},
    refused_query=("q",),
)
@require_staff()
def roster_csv(op_id: int) -> Response:
    op = operation_for(current_staff(), op_id)
    return _csv(op, _query_filters())


@bp.post("/operations/<int:op_id>/roster/search.csv")
@api_doc(
    "The roster search as CSV (viewers get no document numbers or phones); the terms travel in "
    "the body, never the URL",
    body=RosterFilterSchema,
)
@require_staff()
def roster_search_csv(op_id: int) -> Response:
    op = operation_for(current_staff(), op_id)
    return _csv(op, load_json(roster_filter_schema))


@bp.get("/operations/<int:op_id>/people/<uuid:person_id>/timeline")
@api_doc(
    "A person's state and full timeline (device, author, capture and receive times)",
    response=TimelineSchema,
)
@require_staff()
def timeline(op_id: int, person_id: uuid.UUID) -> dict[str, Any]:
    staff = current_staff()
    op = operation_for(staff, op_id)
    person = Person.get_or_none((Person.operation == op.id) & (Person.id == person_id))
    if person is None:
        raise NotFound("No such person in this operation.")
    derived = store.derive_people(op.id, [str(person.id)], timeline=True)[str(person.id)]
    return {
        "person": person_schema_for(staff.role).dump(person),
        "state": state_dict(derived),
        "timeline": derived.timeline,
    }


@bp.get("/operations/<int:op_id>/discrepancies/<queue>")
@api_doc(
    "One discrepancy queue: missing, walkins, duplicates, conflicts, headcounts, late, "
    "quarantine or gaps",
    response=QueuePageSchema,
    query={"cutoff": "ISO 8601 UTC cut-off (late queue)", "limit": "page size", "offset": "start"},
)
@require_staff()
def discrepancy_queue(op_id: int, queue: str) -> dict[str, Any]:
    op = operation_for(current_staff(), op_id)
    if queue not in queues.QUEUES:
        raise NotFound("No such queue.", details={"queues": list(queues.QUEUES)})
    limit, offset = paging()
    cutoff = None
    if request.args.get("cutoff"):
        try:
            cutoff = dt.datetime.fromisoformat(request.args["cutoff"].replace("Z", "+00:00"))
        except ValueError as exc:
            raise MusterError("cutoff is an ISO 8601 time.", code=ErrorCode.BAD_REQUEST) from exc
        if cutoff.tzinfo is not None:
            cutoff = cutoff.astimezone(dt.UTC).replace(tzinfo=None)
    items, total = queues.queue_page(op.id, queue, cutoff, limit, offset)
    return {
        "queue": queue,
        "items": items,
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@bp.post("/operations/<int:op_id>/resolutions")
@api_doc(
    "Record a resolution (coordinator): confirm, declare_missing, merge, resolve, move, "
    "accept_walkin, release_quarantine, revert",
    body=ResolutionCreateSchema,
    response=ResolutionSchema,
    status=201,
)
@require_staff("coordinator")
def create_resolution(op_id: int) -> tuple[dict[str, Any], int]:
    staff = current_staff()
    op = operation_for(staff, op_id, "coordinator")
    data = load_json(resolution_create)
    for name in ("person", "into", "resolution"):
        if data.get(name) is not None:
            data[name] = str(data[name])
    row = resolve.apply(op, staff, data)
    return resolve.as_dict(row), 201


@bp.get("/operations/<int:op_id>/resolutions")
@api_doc(
    "Resolutions of the operation, newest first",
    response=ResolutionPageSchema,
    query={"limit": "page size", "offset": "start"},
)
@require_staff()
def list_resolutions(op_id: int) -> dict[str, Any]:
    op = operation_for(current_staff(), op_id)
    limit, offset = paging()
    query = Resolution.select().where(Resolution.operation == op.id)
    rows = query.order_by(Resolution.at_ms.desc(), Resolution.id).limit(limit).offset(offset)
    return {"items": [resolve.as_dict(r) for r in rows], "total": query.count()}
