"""``device`` commands: enrolment codes, the device list, revocation."""

from __future__ import annotations

import uuid

import click
from flask import current_app
from flask.cli import with_appcontext

from server.api.devices import device_as_dict
from server.cli.output import command_errors, emit, json_option, require_initialised
from server.devices import enrolment
from server.models import Device
from server.operations.service import get_operation


@click.group()
def device() -> None:
    """Enrol, list and revoke field devices."""


@device.command("code")
@click.option("--operation", "operation_ref", required=True, help="Operation id or name.")
@click.option("--label", default="", help="Name for the device, e.g. 'Medyka phone 2'.")
@click.option("--minutes", type=int, default=None, help="Lifetime (default ENROLMENT_TTL_MINUTES).")
@click.option("--qr", is_flag=True, help="Also print the code as a QR code in the terminal.")
@json_option
@with_appcontext
@command_errors
def device_code(
    operation_ref: str, label: str, minutes: int | None, qr: bool, as_json: bool
) -> None:
    """Make a one-time enrolment code (single use, expiring) for one device.

    Example: muster-server device code --operation 1 --label "Medyka phone 2" --qr
    """
    require_initialised()
    op = get_operation(operation_ref)
    ttl = minutes or current_app.config["ENROLMENT_TTL_MINUTES"]
    code, row = enrolment.create_code(op, ttl_minutes=ttl, actor=None, label=label)
    data = {"code": code, "expires_at": row.expires_at.isoformat() + "Z", "operation_id": op.id}
    emit(data, as_json, lambda d: f"Enrolment code: {d['code']} (expires {d['expires_at']})")
    if qr and not as_json:
        import segno

        segno.make(code, error="m").terminal(compact=True)


@device.command("list")
@click.option("--operation", "operation_ref", required=True, help="Operation id or name.")
@json_option
@with_appcontext
@command_errors
def device_list(operation_ref: str, as_json: bool) -> None:
    """List devices with last sync, clock skew, sequence marks and gaps.

    Example: muster-server device list --operation 1
    """
    require_initialised()
    op = get_operation(operation_ref)
    items = [device_as_dict(d) for d in Device.select().where(Device.operation == op)]
    emit(
        items,
        as_json,
        lambda d: (
            "\n".join(
                f"{x['id']}  {x['label'] or '-':<20} seen {x['last_seen_at'] or 'never'}  "
                f"seq {x['contiguous_seq']}/{x['high_seq']}  gaps {x['gaps']}"
                + ("  REVOKED" if x["revoked_at"] else "")
                for x in d
            )
            or "No devices yet."
        ),
    )


@device.command("revoke")
@click.argument("device_id", type=click.UUID)
@click.option("--reason", default="", help="Why, for the audit log.")
@json_option
@with_appcontext
@command_errors
def device_revoke(device_id: uuid.UUID, reason: str, as_json: bool) -> None:
    """Revoke a device: its next request is refused; what it sends goes to quarantine.

    Example: muster-server device revoke 6c1e... --reason "phone lost at Medyka"
    """
    require_initialised()
    row = Device.get_or_none(Device.id == device_id)
    if row is None:
        raise click.ClickException("No such device.")
    done = enrolment.revoke(row, actor=None, reason=reason)
    emit(device_as_dict(done), as_json, lambda d: f"Revoked {d['id']}.")
