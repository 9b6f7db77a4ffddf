"""Console forms that change things: resolutions, enrolment codes, device revocation.

Resolutions are validated by the API's ``ResolutionCreateSchema`` and applied by
``server.reconcile.resolve.apply``, so they are checked, stored, recomputed and audited exactly
as ``POST /api/v1/operations/{op}/resolutions``. Every form carries the CSRF token, checked in
``server.console.security`` before any of these run.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import current_app, flash, redirect, render_template, request
from flask_babel import gettext as _
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from server.api import devices as devices_api
from server.api.devices import qr_svg
from server.auth.access import current_staff, operation_for
from server.console.blueprint import bp
from server.console.views import _context, api
from server.devices import enrolment
from server.errors import MusterError
from server.reconcile import resolve
from server.reconcile.schemas import ResolutionCreateSchema

resolution_create = ResolutionCreateSchema()
#: Form fields a resolution may carry (the schema decides which are needed for each kind).
RESOLUTION_FIELDS = (
    "kind",
    "reason",
    "person",
    "into",
    "group",
    "key",
    "record",
    "resolution",
    "based_on_version",
)


def _back(op_id: int) -> str:
    """Where to return after a form: the page it came from, if it is a page of this console."""
    target = request.form.get("next", "")
    prefix = f"/console/operations/{op_id}"
    return target if target.startswith(prefix) and "//" not in target else prefix


@bp.post("/operations/<int:op_id>/resolutions")
def create_resolution(op_id: int) -> Response:
    """Record a resolution from a console form (coordinator), then go back to the page."""
    staff = current_staff()
    op = operation_for(staff, op_id, "coordinator")
    form: dict[str, Any] = {
        k: request.form[k].strip() for k in RESOLUTION_FIELDS if request.form.get(k, "").strip()
    }
    if "reason" not in form:
        flash(_("Give a reason: it is kept in the audit log."), "error")
        return redirect(_back(op_id), code=303)
    try:
        data = resolution_create.load(form)
    except ValidationError:
        flash(_("This form was incomplete; nothing was changed."), "error")
        return redirect(_back(op_id), code=303)
    for name in ("person", "into", "resolution"):
        if data.get(name) is not None:
            data[name] = str(data[name])
    try:
        resolve.apply(op, staff, data)
    except MusterError as exc:
        if exc.status == 409:
            flash(
                _(
                    "Someone changed this record since you loaded the page; nothing was "
                    "changed. Review it and try again."
                ),
                "error",
            )
        else:
            flash(_("Refused: %(message)s", message=exc.message), "error")
        return redirect(_back(op_id), code=303)
    flash(_("Recorded."), "ok")
    return redirect(_back(op_id), code=303)


@bp.post("/operations/<int:op_id>/devices/code")
def create_code(op_id: int) -> str:
    """Create a one-time enrolment code (admin) and show it once, with its QR image."""
    staff = current_staff()
    op = operation_for(staff, op_id, "admin")
    label = request.form.get("label", "").strip()[:100]
    code, row = enrolment.create_code(
        op, ttl_minutes=current_app.config["ENROLMENT_TTL_MINUTES"], actor=staff, label=label
    )
    listing = api(devices_api.list_devices, op_id)
    return render_template(
        "console/devices.html",
        devices=listing["items"],
        new_code={"code": code, "expires_at": row.expires_at, "qr": qr_svg(code)},
        **_context(op),
    )


@bp.post("/operations/<int:op_id>/devices/<uuid:device_id>/revoke")
def revoke_device(op_id: int, device_id: uuid.UUID) -> Response:
    """Revoke a device (admin); its next request is refused."""
    staff = current_staff()
    op = operation_for(staff, op_id, "admin")
    reason = request.form.get("reason", "").strip()[:500]
    if not reason:
        flash(_("Give a reason: it is kept in the audit log."), "error")
    else:
        enrolment.revoke(enrolment.find_device(op, device_id), actor=staff, reason=reason)
        flash(_("Device revoked."), "ok")
    return redirect(f"/console/operations/{op_id}/devices", code=303)
