"""``operation``, ``checkpoint`` and ``group`` commands."""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from server.cli.output import command_errors, emit, json_option, require_initialised
from server.models import CHECKPOINT_KINDS, Checkpoint, Group
from server.operations import service
from server.operations.schemas import CheckpointSchema, GroupSchema, OperationSchema

operation_schema = OperationSchema()


@click.group()
def operation() -> None:
    """Create, list and close operations (one evacuation each)."""


@operation.command("create")
@click.argument("name")
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone, e.g. Europe/Kyiv.")
@click.option("--starts-at", default=None, help="ISO 8601 start time (default: now).")
@click.option(
    "--report-cutoff", default="21:00", show_default=True, help="Nightly cut-off, HH:MM local."
)
@json_option
@with_appcontext
@command_errors
def operation_create(
    name: str, timezone: str, starts_at: str | None, report_cutoff: str, as_json: bool
) -> None:
    """Create an operation.

    Example: muster-server operation create "Kharkiv students" --timezone Europe/Kyiv
    """
    require_initialised()
    raw: dict[str, Any] = {"name": name, "timezone": timezone, "report_cutoff": report_cutoff}
    if starts_at:
        raw["starts_at"] = starts_at
    op = service.create_operation(operation_schema.load(raw), actor=None)
    emit(operation_schema.dump(op), as_json, lambda d: f"Created operation {d['id']}: {d['name']}")


@operation.command("list")
@json_option
@with_appcontext
@command_errors
def operation_list(as_json: bool) -> None:
    """List every operation.

    Example: muster-server operation list --json
    """
    require_initialised()
    items = operation_schema.dump(service.list_operations(None), many=True)
    emit(
        items,
        as_json,
        lambda d: (
            "\n".join(f"{o['id']:>4}  {o['status']:<8} {o['timezone']:<16} {o['name']}" for o in d)
            or "No operations yet."
        ),
    )


@operation.command("close")
@click.argument("operation_ref")
@click.option("--reason", default="", help="Why, for the audit log.")
@json_option
@with_appcontext
@command_errors
def operation_close(operation_ref: str, reason: str, as_json: bool) -> None:
    """Close an operation (devices stop syncing to it; data stays until purged).

    Example: muster-server operation close 1 --reason "all arrived"
    """
    require_initialised()
    op = service.close_operation(service.get_operation(operation_ref), actor=None, reason=reason)
    emit(operation_schema.dump(op), as_json, lambda d: f"Closed operation {d['id']}.")


@click.group()
def checkpoint() -> None:
    """Add and list checkpoints of an operation."""


@checkpoint.command("add")
@click.option("--operation", "operation_ref", required=True, help="Operation id or name.")
@click.argument("name")
@click.option("--kind", type=click.Choice(CHECKPOINT_KINDS), default="other", show_default=True)
@json_option
@with_appcontext
@command_errors
def checkpoint_add(operation_ref: str, name: str, kind: str, as_json: bool) -> None:
    """Add a checkpoint.

    Example: muster-server checkpoint add --operation 1 "Medyka crossing" --kind border
    """
    require_initialised()
    op = service.get_operation(operation_ref)
    cp = service.add_checkpoint(
        op, CheckpointSchema().load({"name": name, "kind": kind}), actor=None
    )
    emit(CheckpointSchema().dump(cp), as_json, lambda d: f"Added checkpoint {d['id']}: {d['name']}")


@checkpoint.command("list")
@click.option("--operation", "operation_ref", required=True, help="Operation id or name.")
@json_option
@with_appcontext
@command_errors
def checkpoint_list(operation_ref: str, as_json: bool) -> None:
    """List the checkpoints of an operation.

    Example: muster-server checkpoint list --operation 1
    """
    require_initialised()
    op = service.get_operation(operation_ref)
    rows = Checkpoint.select().where(Checkpoint.operation == op).order_by(Checkpoint.id)
    items = CheckpointSchema().dump(list(rows), many=True)
    emit(
        items,
        as_json,
        lambda d: (
            "\n".join(f"{c['id']:>4}  {c['kind']:<10} {c['name']}" for c in d)
            or "No checkpoints yet."
        ),
    )


@click.group()
def group() -> None:
    """Add and list groups (people travelling together, with a route)."""


@group.command("add")
@click.option("--operation", "operation_ref", required=True, help="Operation id or name.")
@click.argument("name")
@click.option("--leader", default="", help="Who leads the group.")
@click.option("--expected", "expected_size", type=int, default=0, help="Expected size.")
@click.option("--route", default="", help="Checkpoint ids or names, comma-separated, in order.")
@json_option
@with_appcontext
@command_errors
def group_add(
    operation_ref: str, name: str, leader: str, expected_size: int, route: str, as_json: bool
) -> None:
    """Add a group with its planned route.

    Example: muster-server group add --operation 1 "Bus 3" --expected 52 --route "Kharkiv station,Medyka crossing"
    """
    require_initialised()
    op = service.get_operation(operation_ref)
    stops = [service.find_checkpoint(op, r.strip()).id for r in route.split(",") if r.strip()]
    data = GroupSchema().load(
        {"name": name, "leader": leader, "expected_size": expected_size, "route": stops}
    )
    g = service.add_group(op, data, actor=None)
    emit(service.group_as_dict(g), as_json, lambda d: f"Added group {d['id']}: {d['name']}")


@group.command("list")
@click.option("--operation", "operation_ref", required=True, help="Operation id or name.")
@json_option
@with_appcontext
@command_errors
def group_list(operation_ref: str, as_json: bool) -> None:
    """List the groups of an operation with their routes.

    Example: muster-server group list --operation 1 --json
    """
    require_initialised()
    op = service.get_operation(operation_ref)
    items = [service.group_as_dict(g) for g in Group.select().where(Group.operation == op)]
    emit(
        items,
        as_json,
        lambda d: (
            "\n".join(
                f"{g['id']:>4}  expected {g['expected_size']:>5}  {g['name']}  route {g['route']}"
                for g in d
            )
            or "No groups yet."
        ),
    )
