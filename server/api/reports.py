"""Stored nightly reports for staff (list, download, verify; per-person files need coordinator)
and the partner exports (roster CSV/XLSX, PFIF 1.4; coordinators and admins only).

``listing``, ``verdict`` and the view bodies are shared with the console (server/console/views.py).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, send_file, stream_with_context

from server.auth.access import current_staff, has_role, operation_for, require_staff
from server.errors import NotFound
from server.reports import exports, integrity, service, tables

bp = Blueprint("reports", __name__)

_TYPES = {
    ".pdf": "application/pdf",
    ".html": "text/html; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".json": "application/json",
    ".sha256": "text/plain; charset=utf-8",
}


def _night(op_id: int, date: str) -> Any:
    try:
        day = dt.date.fromisoformat(date)
    except ValueError as exc:
        raise NotFound("No such report.") from exc
    folder = service.folder_of(op_id, day)
    if not folder.is_dir():
        raise NotFound("No such report.")
    return folder


def listing(op_id: int) -> dict[str, Any]:
    """The operation's stored reports, newest first, each file marked restricted/downloadable."""
    staff = current_staff()
    op = operation_for(staff, op_id)
    may_restricted = has_role(staff, "coordinator")
    items = []
    for day in reversed(service.stored_nights(op.id)):
        folder = service.folder_of(op.id, day)
        items.append(
            {
                "date": day.isoformat(),
                "files": [
                    {**f, "downloadable": may_restricted or not f["restricted"]}
                    for f in service.files_of(folder)
                ],
            }
        )
    return {"items": items, "public_key": service.public_key()}


def verdict(op_id: int, date: str) -> dict[str, Any]:
    """A stored report checked against its manifest and signature with this server's key."""
    op = operation_for(current_staff(), op_id)
    folder = _night(op.id, date)
    result = integrity.verify(folder, integrity.load_public_key(service.public_key()))
    return {"date": date, **result.as_dict()}


@bp.get("/operations/<int:op_id>/reports")
@require_staff("viewer")
def list_reports(op_id: int) -> Response:
    """The operation's stored reports with their files (restricted ones marked)."""
    return jsonify(listing(op_id))


@bp.get("/operations/<int:op_id>/reports/<date>/files/<name>")
@require_staff("viewer")
def download(op_id: int, date: str, name: str) -> Response:
    """One file of a stored report; per-person files only for coordinators and admins."""
    staff = current_staff()
    restricted = name in tables.RESTRICTED
    op = operation_for(staff, op_id, "coordinator" if restricted else "viewer")
    folder = _night(op.id, date)
    allowed = {f["name"] for f in service.files_of(folder)}
    if name not in allowed:
        raise NotFound("No such file in this report.")
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    resp = send_file(
        folder / name,
        mimetype=_TYPES.get(suffix, "text/plain; charset=utf-8"),
        as_attachment=True,
        download_name=f"muster-{op.id}-{date}-{name}",
    )
    resp.headers["Cache-Control"] = "no-store" if restricted else "private"
    return resp


@bp.get("/operations/<int:op_id>/reports/<date>/verify")
@require_staff("viewer")
def verify(op_id: int, date: str) -> Response:
    """Check a stored report against its manifest and signature with this server's key."""
    return jsonify(verdict(op_id, date))


def _export(op_id: int, fmt: str) -> Response:
    """Stream a partner export; coordinators and admins only, never cached."""
    op = operation_for(current_staff(), op_id, "coordinator")
    domain = current_app.config.get("PFIF_DOMAIN") or exports.DEFAULT_PFIF_DOMAIN
    body = exports.export(op, fmt, str(domain))
    resp = Response(stream_with_context(body), mimetype=exports.MEDIA_TYPES[fmt])
    resp.headers["Content-Disposition"] = (
        f"attachment; filename=muster-{op.id}-{exports.FILE_NAMES[fmt]}"
    )
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/operations/<int:op_id>/exports/roster.csv")
@require_staff("coordinator")
def export_roster_csv(op_id: int) -> Response:
    """Everyone with their state as CSV for partners (no document numbers or phones)."""
    return _export(op_id, "csv")


@bp.get("/operations/<int:op_id>/exports/roster.xlsx")
@require_staff("coordinator")
def export_roster_xlsx(op_id: int) -> Response:
    """Everyone with their state as XLSX for partners (no document numbers or phones)."""
    return _export(op_id, "xlsx")


@bp.get("/operations/<int:op_id>/exports/pfif.xml")
@require_staff("coordinator")
def export_pfif(op_id: int) -> Response:
    """Everyone with their events as PFIF 1.4 person and note records (docs/reports.md)."""
    return _export(op_id, "pfif")
