"""Staff accounts and API tokens."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app
from marshmallow import fields, validate

from server.api.openapi import api_doc
from server.api.util import load_json
from server.auth import tokens
from server.auth.access import current_staff, operation_for, require_staff
from server.models import ROLES, StaffUser
from server.operations.schemas import ID_RANGE, StrictSchema, UtcDateTime
from server.staff import service

bp = Blueprint("staff", __name__)


class LoginSchema(StrictSchema):
    username = fields.Str(required=True, validate=validate.Length(min=1, max=64))
    password = fields.Str(required=True, load_only=True, validate=validate.Length(min=1, max=1024))
    label = fields.Str(load_default="", validate=validate.Length(max=100))


class StaffCreateSchema(StrictSchema):
    username = fields.Str(required=True, validate=validate.Regexp(r"^[a-z0-9][a-z0-9._-]{1,63}$"))
    display_name = fields.Str(load_default="", validate=validate.Length(max=200))
    role = fields.Str(required=True, validate=validate.OneOf(ROLES))
    password = fields.Str(load_only=True, validate=validate.Length(min=12, max=1024))
    operations = fields.List(fields.Int(validate=ID_RANGE), load_default=list)


class StaffSchema(StrictSchema):
    id = fields.Int(dump_only=True)
    username = fields.Str(dump_only=True)
    display_name = fields.Str(dump_only=True)
    role = fields.Str(dump_only=True)
    is_active = fields.Bool(dump_only=True)
    created_at = UtcDateTime(dump_only=True)


class MeSchema(StaffSchema):
    operations = fields.List(fields.Int(), dump_only=True)


class StaffCreatedSchema(StaffSchema):
    one_time_password = fields.Str(dump_only=True)


staff_schema = StaffSchema()


@bp.post("/tokens")
@api_doc("Log in: exchange username and password for a bearer token", body=LoginSchema, status=201)
def create_token() -> tuple[dict[str, Any], int]:
    """Exchange a username and password for a bearer token."""
    data = load_json(LoginSchema())
    secret, row = service.login(
        data["username"],
        data["password"],
        ttl_hours=float(current_app.config["TOKEN_TTL_HOURS"]),
        label=data["label"],
    )
    return {
        "token": secret,
        "expires_at": row.expires_at.isoformat() + "Z",
        "staff": staff_schema.dump(row.staff),
    }, 201


@bp.delete("/tokens/current")
@api_doc("Log out: revoke the token of this request", status=204)
@require_staff()
def revoke_current_token() -> tuple[str, int]:
    from flask import g

    tokens.revoke(g.token)
    return "", 204


@bp.get("/me")
@api_doc("The caller and the operations assigned to them", response=MeSchema)
@require_staff()
def me() -> dict[str, Any]:
    staff = current_staff()
    return {**staff_schema.dump(staff), "operations": [a.operation_id for a in staff.assignments]}


@bp.get("/staff")
@api_doc("Staff accounts (admin)")
@require_staff("admin")
def list_staff() -> dict[str, Any]:
    return {"items": staff_schema.dump(list(StaffUser.select().order_by(StaffUser.id)), many=True)}


@bp.post("/staff")
@api_doc(
    "Create a staff account (admin)",
    body=StaffCreateSchema,
    response=StaffCreatedSchema,
    status=201,
)
@require_staff("admin")
def create_staff() -> tuple[dict[str, Any], int]:
    admin = current_staff()
    data = load_json(StaffCreateSchema())
    ops = [operation_for(admin, op_id, "admin") for op_id in data["operations"]]
    user, generated = service.create_staff(
        data["username"],
        role=data["role"],
        display_name=data["display_name"],
        password=data.get("password"),
        actor=f"staff:{admin.id}",
    )
    for op in ops:
        service.assign(user, op, actor=f"staff:{admin.id}")
    body = staff_schema.dump(user)
    if generated:
        body["one_time_password"] = generated
    return body, 201
