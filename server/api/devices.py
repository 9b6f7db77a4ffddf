"""Staff side of devices: enrolment codes, the device list, revocation, the quarantine."""

from __future__ import annotations

import io
import uuid
from typing import Any

from flask import Blueprint, current_app
from marshmallow import fields, validate

from server.api.openapi import api_doc
from server.api.util import load_json, paging
from server.auth.access import current_staff, operation_for, require_staff
from server.devices import enrolment
from server.ingest.service import gaps
from server.models import Device, QuarantinedRecord
from server.operations.schemas import StrictSchema

bp = Blueprint("devices", __name__)


class EnrolmentCreateSchema(StrictSchema):
    label = fields.Str(load_default="", validate=validate.Length(max=100))
    ttl_minutes = fields.Int(load_default=None, validate=validate.Range(min=1, max=7 * 24 * 60))


class RevokeSchema(StrictSchema):
    reason = fields.Str(load_default="", validate=validate.Length(max=500))


def device_as_dict(d: Device) -> dict[str, Any]:
    return {
        "id": str(d.id),
        "label": d.label,
        "operation_id": d.operation_id,
        "enrolled_at": d.enrolled_at.isoformat() + "Z",
        "revoked_at": d.revoked_at.isoformat() + "Z" if d.revoked_at else None,
        "last_seen_at": d.last_seen_at.isoformat() + "Z" if d.last_seen_at else None,
        "skew_ms": d.skew_ms,
        "high_seq": d.high_seq,
        "contiguous_seq": d.contiguous_seq,
        "gaps": gaps(d),
    }


def qr_svg(text: str) -> str:
    import segno

    out = io.BytesIO()
    segno.make(text, error="m").save(out, kind="svg", scale=4, xmldecl=False)
    return out.getvalue().decode()


@bp.post("/operations/<int:op_id>/enrolments")
@api_doc("Create a one-time enrolment code (admin)", body=EnrolmentCreateSchema, status=201)
@require_staff("admin")
def create_enrolment(op_id: int) -> tuple[dict[str, Any], int]:
    op = operation_for(current_staff(), op_id, "admin")
    data = load_json(EnrolmentCreateSchema())
    ttl = data["ttl_minutes"] or current_app.config["ENROLMENT_TTL_MINUTES"]
    code, row = enrolment.create_code(
        op, ttl_minutes=ttl, actor=current_staff(), label=data["label"]
    )
    return {
        "code": code,
        "expires_at": row.expires_at.isoformat() + "Z",
        "operation_id": op.id,
        "qr_svg": qr_svg(code),
    }, 201


@bp.get("/operations/<int:op_id>/devices")
@api_doc("Devices of an operation with sequence gaps")
@require_staff()
def list_devices(op_id: int) -> dict[str, Any]:
    op = operation_for(current_staff(), op_id)
    rows = Device.select().where(Device.operation == op).order_by(Device.enrolled_at)
    return {"items": [device_as_dict(d) for d in rows]}


@bp.post("/operations/<int:op_id>/devices/<uuid:device_id>/revoke")
@api_doc("Revoke a device (admin)", body=RevokeSchema)
@require_staff("admin")
def revoke_device(op_id: int, device_id: uuid.UUID) -> dict[str, Any]:
    op = operation_for(current_staff(), op_id, "admin")
    data = load_json(RevokeSchema())
    device = enrolment.revoke(
        enrolment.find_device(op, device_id), actor=current_staff(), reason=data["reason"]
    )
    return device_as_dict(device)


@bp.get("/operations/<int:op_id>/quarantine")
@api_doc("Quarantined records (coordinator)", query={"limit": "page size", "offset": "start"})
@require_staff("coordinator")
def list_quarantine(op_id: int) -> dict[str, Any]:
    op = operation_for(current_staff(), op_id, "coordinator")
    limit, offset = paging()
    query = QuarantinedRecord.select().where(QuarantinedRecord.operation == op)
    items = [
        {
            "id": q.id,
            "device_id": str(q.device_id) if q.device_id else None,
            "received_at": q.received_at.isoformat() + "Z",
            "reason": q.reason,
            "message": q.message,
            "event_id": str(q.event_id) if q.event_id else None,
            "seq": q.seq,
            "released_at": q.released_at.isoformat() + "Z" if q.released_at else None,
        }
        for q in query.order_by(QuarantinedRecord.id).limit(limit).offset(offset)
    ]
    return {"items": items, "total": query.count()}
