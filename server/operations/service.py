"""Create and read operations, checkpoints and groups. Called by views, CLI and tests alike."""

from __future__ import annotations

from typing import Any

from peewee import IntegrityError

from server import audit, changelog
from server.db import write_transaction
from server.errors import Conflict, InvalidInput, NotFound
from server.models import (
    Assignment,
    Checkpoint,
    Group,
    Operation,
    RouteStop,
    StaffUser,
    utcnow,
)


def create_operation(data: dict[str, Any], *, actor: StaffUser | None) -> Operation:
    """Create an operation from validated ``OperationSchema`` data; assign its creator."""
    starts = data["starts_at"]
    with write_transaction():
        if Operation.select().where(Operation.name == data["name"]).exists():
            raise Conflict("An operation with this name exists.", details={"field": "name"})
        op = Operation.create(
            name=data["name"],
            timezone=data["timezone"],
            starts_at=starts.astimezone(tz=None).replace(tzinfo=None)
            if starts.tzinfo is None
            else starts.astimezone(__import__("datetime").UTC).replace(tzinfo=None),
            status=data["status"],
            report_cutoff=data["report_cutoff"],
        )
        if actor is not None:
            Assignment.create(staff=actor, operation=op)
        audit.record(
            audit.actor_of(actor), "operation.create", operation=op.id, target=f"operation:{op.id}"
        )
    return op


def close_operation(op: Operation, *, actor: StaffUser | None, reason: str = "") -> Operation:
    """Mark an operation closed (its data stays until the retention purge)."""
    with write_transaction():
        Operation.update(status="closed", closed_at=utcnow()).where(Operation.id == op.id).execute()
        audit.record(audit.actor_of(actor), "operation.close", operation=op.id, reason=reason)
    return Operation.get_by_id(op.id)


def list_operations(staff: StaffUser | None) -> list[Operation]:
    """Operations visible to ``staff`` (all of them for the CLI, which runs as the host)."""
    query = Operation.select().order_by(Operation.id)
    if staff is not None:
        query = query.join(Assignment).where(Assignment.staff == staff)
    return list(query)


def get_operation(ref: str | int) -> Operation:
    """Find an operation by id or exact name (for the CLI)."""
    op = None
    if isinstance(ref, int) or str(ref).isdigit():
        op = Operation.get_or_none(Operation.id == int(ref))
    if op is None:
        op = Operation.get_or_none(Operation.name == str(ref))
    if op is None:
        raise NotFound("No such operation.")
    return op


def add_checkpoint(op: Operation, data: dict[str, Any], *, actor: StaffUser | None) -> Checkpoint:
    """Add a checkpoint to ``op``; the change reaches devices on their next pull."""
    with write_transaction():
        try:
            cp = Checkpoint.create(operation=op, name=data["name"], kind=data["kind"])
        except IntegrityError as exc:
            raise Conflict(
                "A checkpoint with this name exists.", details={"field": "name"}
            ) from exc
        changelog.record(op.id, "checkpoint", [cp.id])
        audit.record(
            audit.actor_of(actor),
            "checkpoint.create",
            operation=op.id,
            target=f"checkpoint:{cp.id}",
        )
    return cp


def find_checkpoint(op: Operation, ref: str | int) -> Checkpoint:
    cp = None
    if isinstance(ref, int) or str(ref).isdigit():
        cp = Checkpoint.get_or_none((Checkpoint.operation == op) & (Checkpoint.id == int(ref)))
    if cp is None:
        cp = Checkpoint.get_or_none((Checkpoint.operation == op) & (Checkpoint.name == str(ref)))
    if cp is None:
        raise NotFound("No such checkpoint in this operation.")
    return cp


def add_group(op: Operation, data: dict[str, Any], *, actor: StaffUser | None) -> Group:
    """Add a group with its planned route (checkpoint ids of ``op``, in order)."""
    route = list(data.get("route") or [])
    known = {c.id for c in Checkpoint.select(Checkpoint.id).where(Checkpoint.operation == op)}
    unknown = [cid for cid in route if cid not in known]
    if unknown:
        raise InvalidInput(
            "The route names checkpoints that are not in this operation.",
            details={"fields": {"route": [f"unknown checkpoint id {cid}" for cid in unknown]}},
        )
    if len(set(route)) != len(route):
        raise InvalidInput(
            "A route visits each checkpoint once.",
            details={"fields": {"route": ["repeated checkpoint"]}},
        )
    with write_transaction():
        try:
            group = Group.create(
                operation=op,
                name=data["name"],
                leader=data.get("leader", ""),
                expected_size=data.get("expected_size", 0),
                notes=data.get("notes", ""),
            )
        except IntegrityError as exc:
            raise Conflict("A group with this name exists.", details={"field": "name"}) from exc
        for position, cid in enumerate(route, start=1):
            RouteStop.create(group=group, checkpoint=cid, position=position)
        changelog.record(op.id, "group", [group.id])
        audit.record(
            audit.actor_of(actor), "group.create", operation=op.id, target=f"group:{group.id}"
        )
    return group


def find_group(op: Operation, ref: str | int) -> Group:
    group = None
    if isinstance(ref, int) or str(ref).isdigit():
        group = Group.get_or_none((Group.operation == op) & (Group.id == int(ref)))
    if group is None:
        group = Group.get_or_none((Group.operation == op) & (Group.name == str(ref)))
    if group is None:
        raise NotFound("No such group in this operation.")
    return group


def route_of(group: Group) -> list[int]:
    """Checkpoint ids of the group's planned route, in order."""
    stops = RouteStop.select().where(RouteStop.group == group).order_by(RouteStop.position)
    return [s.checkpoint_id for s in stops]


def group_as_dict(group: Group) -> dict[str, Any]:
    return {
        "id": group.id,
        "operation_id": group.operation_id,
        "name": group.name,
        "leader": group.leader,
        "expected_size": group.expected_size,
        "notes": group.notes,
        "route": route_of(group),
    }
