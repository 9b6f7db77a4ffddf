"""The audit log: every administrative act and resolution, with who, when and why."""

from __future__ import annotations

import json
from typing import Any

from server.models import AuditEntry


def actor_of(staff: Any | None) -> str:
    """How the audit log names who acted: ``staff:<id>``, or ``cli`` for the host's CLI."""
    return f"staff:{staff.id}" if staff is not None else "cli"


def record(
    actor: str,
    action: str,
    *,
    operation: int | None = None,
    target: str = "",
    details: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEntry:
    """Append one audit entry. ``details`` must hold ids and counts, never personal data."""
    return AuditEntry.create(
        actor=actor[:100],
        action=action,
        operation=operation,
        target=target[:200],
        details=json.dumps(details or {}, sort_keys=True, default=str),
        reason=reason,
    )
