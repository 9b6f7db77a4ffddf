"""``staff`` commands: accounts, roles, assignments, passwords and tokens."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from server.auth import tokens
from server.cli.output import command_errors, emit, json_option, require_initialised
from server.models import ROLES, StaffUser
from server.operations.service import get_operation
from server.staff import service


@click.group()
def staff() -> None:
    """Manage staff accounts (administrator, coordinator, viewer)."""


def _row(u: StaffUser) -> dict:
    return {
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "role": u.role,
        "active": u.is_active,
        "operations": [a.operation_id for a in u.assignments],
    }


@staff.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", "display_name", default="", help="Display name.")
@click.option("--operation", "operations", multiple=True, help="Assign to this operation (repeat).")
@json_option
@with_appcontext
@command_errors
def staff_add(
    username: str, role: str, display_name: str, operations: tuple[str, ...], as_json: bool
) -> None:
    """Create a staff account with a generated one-time password.

    Example: muster-server staff add olena --role coordinator --operation 1
    """
    require_initialised()
    ops = [get_operation(o) for o in operations]
    user, password = service.create_staff(username, role=role, display_name=display_name)
    for op in ops:
        service.assign(user, op)
    data = {**_row(StaffUser.get_by_id(user.id)), "one_time_password": password}
    emit(
        data,
        as_json,
        lambda d: (
            f"Created {d['role']} '{d['username']}'. "
            f"One-time password (shown once): {d['one_time_password']}"
        ),
    )


@staff.command("list")
@json_option
@with_appcontext
@command_errors
def staff_list(as_json: bool) -> None:
    """List staff accounts with roles and operations.

    Example: muster-server staff list
    """
    require_initialised()
    items = [_row(u) for u in StaffUser.select().order_by(StaffUser.id)]
    emit(
        items,
        as_json,
        lambda d: "\n".join(
            f"{u['id']:>4}  {u['role']:<12} {'active' if u['active'] else 'disabled':<9}"
            f" {u['username']}  operations {u['operations']}"
            for u in d
        ),
    )


@staff.command("assign")
@click.argument("username")
@click.option("--operation", "operation_ref", required=True)
@click.option("--remove", is_flag=True, help="Remove the assignment instead.")
@json_option
@with_appcontext
@command_errors
def staff_assign(username: str, operation_ref: str, remove: bool, as_json: bool) -> None:
    """Give (or with --remove take away) access to an operation.

    Example: muster-server staff assign olena --operation 2
    """
    require_initialised()
    user, op = service.find_staff(username), get_operation(operation_ref)
    (service.unassign if remove else service.assign)(user, op)
    emit(
        _row(StaffUser.get_by_id(user.id)),
        as_json,
        lambda d: f"Operations of {d['username']}: {d['operations']}",
    )


@staff.command("role")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@json_option
@with_appcontext
@command_errors
def staff_role(username: str, role: str, as_json: bool) -> None:
    """Change a staff member's role.

    Example: muster-server staff role olena viewer
    """
    require_initialised()
    user = service.find_staff(username)
    service.set_role(user, role)
    emit(
        _row(StaffUser.get_by_id(user.id)),
        as_json,
        lambda d: f"{d['username']} is now {d['role']}.",
    )


@staff.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="Enable again instead.")
@json_option
@with_appcontext
@command_errors
def staff_disable(username: str, enable: bool, as_json: bool) -> None:
    """Disable an account (its tokens are revoked at once), or enable it again.

    Example: muster-server staff disable olena
    """
    require_initialised()
    user = service.find_staff(username)
    service.set_active(user, enable)
    emit(
        _row(StaffUser.get_by_id(user.id)),
        as_json,
        lambda d: f"{d['username']} is {'active' if d['active'] else 'disabled'}.",
    )


@staff.command("password")
@click.argument("username")
@click.password_option("--password", help="The new password (prompted if omitted).")
@with_appcontext
@command_errors
def staff_password(username: str, password: str) -> None:
    """Set a staff member's password.

    Example: muster-server staff password olena
    """
    require_initialised()
    service.set_password(service.find_staff(username), password)
    click.echo("Password changed.")


@staff.command("token")
@click.argument("username")
@click.option("--hours", type=float, default=None, help="Lifetime (default TOKEN_TTL_HOURS).")
@click.option("--label", default="cli", show_default=True)
@json_option
@with_appcontext
@command_errors
def staff_token(username: str, hours: float | None, label: str, as_json: bool) -> None:
    """Issue an API token for a staff member (shown once).

    Example: muster-server staff token olena --hours 8
    """
    require_initialised()
    user = service.find_staff(username)
    ttl = hours if hours is not None else float(current_app.config["TOKEN_TTL_HOURS"])
    secret, row = tokens.issue(user, ttl_hours=ttl, label=label)
    emit(
        {"token": secret, "expires_at": row.expires_at.isoformat() + "Z"},
        as_json,
        lambda d: f"Token (shown once): {d['token']}\nExpires: {d['expires_at']}",
    )
