"""Who may do what: role ranks, operation assignments, and the request's staff identity."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request

from server.auth import tokens
from server.errors import Forbidden, NotFound, Unauthorized
from server.models import ROLES, Assignment, Operation, StaffUser, utcnow

F = TypeVar("F", bound=Callable[..., Any])


def rank(role: str) -> int:
    """Position of ``role`` in ``ROLES`` (viewer < coordinator < admin)."""
    return ROLES.index(role)


def has_role(staff: StaffUser, minimum: str) -> bool:
    return rank(staff.role) >= rank(minimum)


def can_access(staff: StaffUser, operation_id: int) -> bool:
    """True when ``staff`` is assigned to the operation (every role needs an assignment)."""
    return (
        Assignment.select()
        .where((Assignment.staff == staff) & (Assignment.operation == operation_id))
        .exists()
    )


def operation_for(staff: StaffUser, operation_id: int, minimum: str = "viewer") -> Operation:
    """Load an operation ``staff`` may use with at least ``minimum`` role, else refuse.

    An operation the staff member is not assigned to answers 404, not 403, so that ids of
    other operations cannot be probed.
    """
    op = Operation.get_or_none(Operation.id == operation_id)
    if op is None or not can_access(staff, operation_id):
        raise NotFound("No such operation.")
    if not has_role(staff, minimum):
        raise Forbidden(f"This needs the {minimum} role.")
    return op


def current_staff() -> StaffUser:
    """The staff member authenticated by the request's bearer token."""
    staff = getattr(g, "staff", None)
    if staff is None:
        raise Unauthorized("Authentication required.")
    return staff


def require_staff(minimum: str = "viewer") -> Callable[[F], F]:
    """View decorator: authenticate the bearer token and demand at least ``minimum`` role."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            header = request.headers.get("Authorization", "")
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret:
                raise Unauthorized("Send 'Authorization: Bearer <token>'.")
            row = tokens.lookup(secret.strip())
            if row is None:
                raise Unauthorized("The token is unknown, expired or revoked.")
            row.last_used_at = utcnow()
            row.save(only=[type(row).last_used_at])
            g.staff = row.staff
            g.token = row
            if not has_role(row.staff, minimum):
                raise Forbidden(f"This needs the {minimum} role.")
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
