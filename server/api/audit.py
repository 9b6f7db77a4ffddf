"""The audit log of an operation: who did what, when and why (coordinators and admins)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request

from server.api.openapi import api_doc
from server.api.util import paging
from server.auth.access import current_staff, operation_for, require_staff
from server.models import AuditEntry
from server.reconcile.schemas import AuditEntrySchema, AuditPageSchema

bp = Blueprint("audit", __name__)
entry_schema = AuditEntrySchema()


@bp.get("/operations/<int:op_id>/audit")
@api_doc(
    "The operation's audit log, newest first; filter by action prefix",
    response=AuditPageSchema,
    query={"action": "action prefix, e.g. resolution.", "limit": "page size", "offset": "start"},
)
@require_staff("coordinator")
def audit_log(op_id: int) -> dict[str, Any]:
    op = operation_for(current_staff(), op_id, "coordinator")
    limit, offset = paging()
    query = AuditEntry.select().where(AuditEntry.operation == op.id)
    if request.args.get("action"):
        query = query.where(AuditEntry.action.startswith(request.args["action"]))
    rows = query.order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    return {"items": entry_schema.dump(list(rows), many=True), "total": query.count()}
