"""Console pages: operations, dashboard, roster, person, discrepancy queues, devices, reports.

Every number and list comes from the same code the JSON API runs. Where that code is a view
function of ``server.api`` (the overview, the roster filter, the timeline, the queues, the
device list), the console calls the undecorated function (``__wrapped__``) with ``g.staff``
set from the session: the API's decorator only authenticates the bearer token, and the body
does the role check (``operation_for``) and the work, so both surfaces share one copy.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from server.api import devices as devices_api
from server.api import reconcile as reconcile_api
from server.api import reports as reports_api
from server.api.util import paging
from server.auth.access import current_staff, has_role, operation_for
from server.console import chart, present
from server.console.blueprint import bp
from server.errors import NotFound
from server.models import Assignment, Checkpoint, Device, Group, Operation, Person
from server.operations.schemas import MAX_ID
from server.people.schemas import person_schema_for
from server.reconcile import queues
from server.reconcile.derive import STATES


def api(view: Callable[..., Any], *args: Any) -> Any:
    """Run an API view's body (its role checks included) for the session's staff member."""
    current_staff()  # not logged in: Unauthorized, which the console turns into the login page
    return view.__wrapped__(*args)  # type: ignore[attr-defined]


def _context(op: Operation) -> dict[str, Any]:
    """What every operation page needs: the operation, its zone, names of checkpoints, groups."""
    staff = current_staff()
    return {
        "op": op,
        "tz": op.timezone or "UTC",
        "staff": staff,
        "can_resolve": has_role(staff, "coordinator"),
        "is_admin": has_role(staff, "admin"),
        "checkpoints": {
            c.id: c.name for c in Checkpoint.select().where(Checkpoint.operation == op.id)
        },
        "groups": {
            g.id: g.name
            for g in Group.select().where(Group.operation == op.id).order_by(Group.name)
        },
    }


def people_by_id(op: Operation, ids: list[str]) -> dict[str, dict[str, Any]]:
    """People of ``op`` as the staff member's role may see them, keyed by id."""
    wanted = [uuid.UUID(i) for i in {i for i in ids if i}]
    if not wanted:
        return {}
    schema = person_schema_for(current_staff().role)
    rows = Person.select().where((Person.operation == op.id) & Person.id.in_(wanted))
    return {str(p.id): schema.dump(p) for p in rows}


@bp.get("/")
def index() -> Response:
    return redirect(url_for("console.operations"))


@bp.get("/operations")
def operations() -> str:
    """The operations the staff member is assigned to."""
    staff = current_staff()
    ops = (
        Operation.select()
        .join(Assignment, on=(Assignment.operation == Operation.id))
        .where(Assignment.staff == staff.id)
        .order_by(Operation.id.desc())
    )
    return render_template("console/operations.html", operations=list(ops), staff=staff)


@bp.get("/operations/<int:op_id>")
def dashboard(op_id: int) -> str:
    """Every group's expected vs accounted, checkpoints, the curve over time, open queues."""
    op = operation_for(current_staff(), op_id)
    overview = api(reconcile_api.overview, op_id)
    ctx = _context(op)
    times = chart.accounted_times(op.id)
    svg = chart.svg(
        times,
        overview["totals"]["expected"],
        ctx["tz"],
        _("People accounted for over time"),
    )
    return render_template(
        "console/dashboard.html",
        overview=overview,
        chart=svg,
        queue_names=[q for q in queues.QUEUES if q in overview["queues"]],
        **ctx,
    )


#: Console roster page size.
ROSTER_PAGE = 200


@bp.get("/operations/<int:op_id>/roster")
def roster(op_id: int) -> str | Response:
    """A group's roster (or everyone's) with states, filtered by the URL's group and state.

    Searching posts the form to ``roster_search``: names and document numbers never go in a URL.
    An old link with ``?q=`` is sent back here without it.
    """
    if "q" in request.args:
        # Checked before the log-in, so the login redirect's next= cannot carry the terms.
        flash(_("Search terms are kept out of links: use the search box."), "error")
        kept: dict[str, Any] = {k: v for k, v in request.args.items() if k != "q"}
        return redirect(url_for("console.roster", op_id=op_id, **kept), code=303)
    op = operation_for(current_staff(), op_id)
    limit, offset = paging(default=ROSTER_PAGE)
    filters = reconcile_api._query_filters()  # the API's: group, state, source
    return _roster_page(op, filters, limit, offset)


@bp.post("/operations/<int:op_id>/roster")
def roster_search(op_id: int) -> str | Response:
    """The roster searched by name in any script or (coordinators) document number.

    The search form and the "More" button post the terms with the CSRF token; the results
    render from the POST. Without terms the non-personal filters go back into the URL.
    """
    op = operation_for(current_staff(), op_id)
    form = {
        "q": request.form.get("q", "").strip(),
        "group": request.form.get("group") or None,
        "state": [s for v in request.form.getlist("state") for s in v.split(",") if s],
        "source": request.form.get("source") or None,
    }
    try:
        filters = reconcile_api.roster_filter_schema.load(form)
        offset = int(request.form.get("offset") or 0)
        if not 0 <= offset <= MAX_ID:
            raise ValueError(offset)
    except (ValidationError, ValueError):
        flash(_("This search form was not valid; nothing was searched."), "error")
        return redirect(url_for("console.roster", op_id=op.id), code=303)
    if not filters["q"]:
        return redirect(url_for("console.roster", op_id=op.id, **_url_filters(filters)), code=303)
    return _roster_page(op, filters, ROSTER_PAGE, offset)


def _url_filters(filters: dict[str, Any]) -> dict[str, Any]:
    """The filters that may go in a URL (group, state, source): none of them is personal."""
    kept = {
        "group": filters["group"],
        "state": ",".join(filters["state"]) or None,
        "source": filters["source"],
    }
    return {k: v for k, v in kept.items() if v is not None}


def _roster_page(op: Operation, filters: dict[str, Any], limit: int, offset: int) -> str:
    """The roster page for ``filters`` (the API's roster filter and search)."""
    ctx = _context(op)
    rows = reconcile_api._roster(op, filters)
    schema = person_schema_for(current_staff().role)
    group = filters["group"]
    summary = api(reconcile_api.group_summary, op.id, group) if group is not None else None
    more = None
    if len(rows) > offset + limit:
        more = {**_url_filters(filters), "offset": offset + limit}
        if limit != ROSTER_PAGE:
            more["limit"] = limit
    return render_template(
        "console/roster.html",
        more=more,
        rows=[(schema.dump(p), s) for p, s in rows[offset : offset + limit]],
        total=len(rows),
        group=group,
        summary=summary,
        states=STATES,
        search=filters,
        **ctx,
    )


@bp.get("/operations/<int:op_id>/people/<uuid:person_id>")
def person(op_id: int, person_id: uuid.UUID) -> str:
    """One person: state, both scripts, timeline with devices and times, quick resolutions."""
    op = operation_for(current_staff(), op_id)
    data = api(reconcile_api.timeline, op_id, person_id)
    ctx = _context(op)
    device_ids = {t["device"] for t in data["timeline"] if t.get("device")}
    labels = (
        {
            str(d.id): d.label or str(d.id)[:8]
            for d in Device.select(Device.id, Device.label).where(
                (Device.operation == op.id) & Device.id.in_([uuid.UUID(i) for i in device_ids])
            )
        }
        if device_ids
        else {}
    )
    merged_into = data["state"].get("merged_into")
    return render_template(
        "console/person.html",
        person=data["person"],
        state=data["state"],
        timeline=data["timeline"],
        devices=labels,
        merged_into=people_by_id(op, [merged_into]).get(merged_into) if merged_into else None,
        **ctx,
    )


@bp.get("/operations/<int:op_id>/queues/<name>")
def queue(op_id: int, name: str) -> str:
    """One discrepancy queue with a resolution form per item (for coordinators)."""
    op = operation_for(current_staff(), op_id)
    if name not in queues.QUEUES:
        raise NotFound("No such queue.")
    page = api(reconcile_api.discrepancy_queue, op_id, name)
    ids: list[str] = []
    for item in page["items"]:
        ids += [item.get("person") or ""] + list(item.get("people") or [])
    return render_template(
        "console/queue.html",
        name=name,
        page=page,
        people=people_by_id(op, ids),
        queue_names=[q for q in queues.QUEUES if q != "late"],
        **_context(op),
    )


@bp.get("/operations/<int:op_id>/devices")
def devices(op_id: int) -> str:
    """Devices: last sync, clock skew, sequence gaps; admins create codes and revoke."""
    op = operation_for(current_staff(), op_id)
    listing = api(devices_api.list_devices, op_id)
    return render_template(
        "console/devices.html", devices=listing["items"], new_code=None, **_context(op)
    )


@bp.get("/operations/<int:op_id>/reports")
def reports(op_id: int, verdict: dict[str, Any] | None = None) -> str:
    """Stored reports with their files (restricted ones only for coordinators), verification,
    and the partner exports for coordinators; the same listing as the API's."""
    op = operation_for(current_staff(), op_id)
    return render_template(
        "console/reports.html",
        listing=reports_api.listing(op.id),
        verdict=verdict,
        exports=[("roster.csv", "CSV"), ("roster.xlsx", "XLSX"), ("pfif.xml", "PFIF 1.4")],
        **_context(op),
    )


@bp.get("/operations/<int:op_id>/reports/<date>/verify")
def verify_report(op_id: int, date: str) -> str:
    """Check a stored report with the API's verify function; show OK or each bad file."""
    current_staff()
    return reports(op_id, verdict=reports_api.verdict(op_id, date))


@bp.get("/operations/<int:op_id>/reports/<date>/files/<name>")
def report_file(op_id: int, date: str, name: str) -> Response:
    """One file of a stored report, under the API's rules (per-person files: coordinators)."""
    return api(reports_api.download, op_id, date, name)  # type: ignore[no-any-return]


@bp.get("/operations/<int:op_id>/exports/<name>")
def export_file(op_id: int, name: str) -> Response:
    """A partner export (coordinators and admins), streamed by the API's view body."""
    views = {
        "roster.csv": reports_api.export_roster_csv,
        "roster.xlsx": reports_api.export_roster_xlsx,
        "pfif.xml": reports_api.export_pfif,
    }
    if name not in views:
        raise NotFound("No such export.")
    return api(views[name], op_id)  # type: ignore[no-any-return]


def init_app(app: Flask) -> None:
    """Template helpers, and the form handlers (imported for their routes)."""
    from server.console import actions  # noqa: F401 - registers the POST routes

    present.init_app(app)
    app.jinja_env.globals["reports_available"] = _reports_available()


def _reports_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("server.reports") is not None
