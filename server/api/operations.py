"""Operations, checkpoints and groups."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from server.api.openapi import api_doc
from server.api.util import load_json
from server.auth.access import current_staff, operation_for, require_staff
from server.models import Checkpoint, Group
from server.operations import service
from server.operations.schemas import CheckpointSchema, GroupSchema, OperationSchema

bp = Blueprint("operations", __name__)
operation_schema = OperationSchema()
checkpoint_schema = CheckpointSchema()
group_schema = GroupSchema()


@bp.get("/operations")
@api_doc("Operations the caller is assigned to")
@require_staff()
def list_operations() -> dict[str, Any]:
    ops = service.list_operations(current_staff())
    return {"items": operation_schema.dump(ops, many=True)}


@bp.post("/operations")
@api_doc("Create an operation (admin)", body=OperationSchema, response=OperationSchema, status=201)
@require_staff("admin")
def create_operation() -> tuple[dict[str, Any], int]:
    data = load_json(operation_schema)
    op = service.create_operation(data, actor=current_staff())
    return operation_schema.dump(op), 201


@bp.get("/operations/<int:op_id>")
@api_doc("One operation", response=OperationSchema)
@require_staff()
def get_operation(op_id: int) -> dict[str, Any]:
    return operation_schema.dump(operation_for(current_staff(), op_id))


@bp.get("/operations/<int:op_id>/checkpoints")
@api_doc("Checkpoints of an operation")
@require_staff()
def list_checkpoints(op_id: int) -> dict[str, Any]:
    op = operation_for(current_staff(), op_id)
    rows = Checkpoint.select().where(Checkpoint.operation == op).order_by(Checkpoint.id)
    return {"items": checkpoint_schema.dump(list(rows), many=True)}


@bp.post("/operations/<int:op_id>/checkpoints")
@api_doc("Add a checkpoint (admin)", body=CheckpointSchema, response=CheckpointSchema, status=201)
@require_staff("admin")
def create_checkpoint(op_id: int) -> tuple[dict[str, Any], int]:
    op = operation_for(current_staff(), op_id, "admin")
    cp = service.add_checkpoint(op, load_json(checkpoint_schema), actor=current_staff())
    return checkpoint_schema.dump(cp), 201


@bp.get("/operations/<int:op_id>/groups")
@api_doc("Groups of an operation with their routes")
@require_staff()
def list_groups(op_id: int) -> dict[str, Any]:
    op = operation_for(current_staff(), op_id)
    rows = Group.select().where(Group.operation == op).order_by(Group.id)
    return {"items": [service.group_as_dict(g) for g in rows]}


@bp.post("/operations/<int:op_id>/groups")
@api_doc("Add a group with its route (admin)", body=GroupSchema, response=GroupSchema, status=201)
@require_staff("admin")
def create_group(op_id: int) -> tuple[dict[str, Any], int]:
    op = operation_for(current_staff(), op_id, "admin")
    group = service.add_group(op, load_json(group_schema), actor=current_staff())
    return service.group_as_dict(group), 201
