"""Stored nightly reports for staff: list, download, verify; per-person files need coordinator."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, jsonify, send_file

from server.auth.access import current_staff, has_role, operation_for, require_staff
from server.errors import NotFound
from server.reports import integrity, service, tables

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


@bp.get("/operations/<int:op_id>/reports")
@require_staff("viewer")
def list_reports(op_id: int) -> Response:
    """The operation's stored reports with their files (restricted ones marked)."""
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
    return jsonify({"items": items, "public_key": service.public_key()})


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
    op = operation_for(current_staff(), op_id)
    folder = _night(op.id, date)
    verdict = integrity.verify(folder, integrity.load_public_key(service.public_key()))
    return jsonify({"date": date, **verdict.as_dict()})
