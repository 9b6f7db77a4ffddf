"""Staff accounts: create, assign to operations, change roles and passwords, log in."""

from __future__ import annotations

import functools
from typing import Any

from server import audit
from server.auth import tokens
from server.auth.passwords import generate_password, hash_password, verify_password
from server.db import write_transaction
from server.errors import Conflict, MusterError, NotFound
from server.models import ROLES, ApiToken, Assignment, Operation, StaffUser, utcnow
from sync.protocol import ErrorCode


def create_staff(
    username: str,
    *,
    role: str,
    display_name: str = "",
    password: str | None = None,
    actor: str = "cli",
) -> tuple[StaffUser, str | None]:
    """Create a staff account. Without ``password`` one is generated and returned (show once)."""
    if role not in ROLES:
        raise MusterError("Unknown role.", code=ErrorCode.VALIDATION_FAILED)
    generated = None
    if password is None:
        password = generated = generate_password()
    with write_transaction():
        if StaffUser.select().where(StaffUser.username == username).exists():
            raise Conflict("This username is taken.", details={"field": "username"})
        user = StaffUser.create(
            username=username,
            display_name=display_name,
            password_hash=hash_password(password),
            role=role,
            must_change_password=generated is not None,
        )
        audit.record(actor, "staff.create", target=f"staff:{user.id}", details={"role": role})
    return user, generated


def find_staff(username: str) -> StaffUser:
    user = StaffUser.get_or_none(StaffUser.username == username)
    if user is None:
        raise NotFound("No such staff account.")
    return user


def assign(user: StaffUser, op: Operation, *, actor: str = "cli") -> None:
    """Give ``user`` access to ``op`` (idempotent)."""
    with write_transaction():
        Assignment.insert(staff=user, operation=op).on_conflict_ignore().execute()
        audit.record(actor, "staff.assign", operation=op.id, target=f"staff:{user.id}")


def unassign(user: StaffUser, op: Operation, *, actor: str = "cli") -> None:
    with write_transaction():
        Assignment.delete().where(
            (Assignment.staff == user) & (Assignment.operation == op)
        ).execute()
        audit.record(actor, "staff.unassign", operation=op.id, target=f"staff:{user.id}")


def set_role(user: StaffUser, role: str, *, actor: str = "cli") -> None:
    if role not in ROLES:
        raise MusterError("Unknown role.", code=ErrorCode.VALIDATION_FAILED)
    with write_transaction():
        StaffUser.update(role=role).where(StaffUser.id == user.id).execute()
        audit.record(actor, "staff.role", target=f"staff:{user.id}", details={"role": role})


def set_active(user: StaffUser, active: bool, *, actor: str = "cli") -> None:
    """Enable or disable an account; disabling also revokes its live tokens."""
    with write_transaction():
        StaffUser.update(is_active=active).where(StaffUser.id == user.id).execute()
        if not active:
            ApiToken.update(revoked_at=utcnow()).where(
                (ApiToken.staff == user) & ApiToken.revoked_at.is_null()
            ).execute()
        audit.record(
            actor, "staff.enable" if active else "staff.disable", target=f"staff:{user.id}"
        )


def set_password(user: StaffUser, password: str, *, actor: str = "cli") -> None:
    with write_transaction():
        StaffUser.update(password_hash=hash_password(password), must_change_password=False).where(
            StaffUser.id == user.id
        ).execute()
        audit.record(actor, "staff.password", target=f"staff:{user.id}")


def login(username: str, password: str, *, ttl_hours: float, label: str = "") -> tuple[str, Any]:
    """Check a username and password and issue an API token; one vague error for any failure."""
    user = StaffUser.get_or_none(StaffUser.username == username)
    # Hash even for unknown users so timing does not reveal which usernames exist.
    stored = user.password_hash if user is not None else _dummy_hash()
    ok = verify_password(password, stored)
    if user is None or not ok or not user.is_active:
        raise MusterError("Wrong username or password.", code=ErrorCode.INVALID_CREDENTIALS)
    with write_transaction():
        secret, row = tokens.issue(user, ttl_hours=ttl_hours, label=label)
        audit.record(f"staff:{user.id}", "token.issue", target=f"token:{row.id}")
    return secret, row


def ensure_first_admin() -> tuple[StaffUser, str] | None:
    """Create the first administrator when there is no staff at all; return it with its password."""
    if StaffUser.select().exists():
        return None
    user, password = create_staff(
        "admin", role="admin", display_name="First administrator", actor="init"
    )
    assert password is not None
    return user, password


@functools.cache
def _dummy_hash() -> str:
    return hash_password("not-a-password")
