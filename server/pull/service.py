"""Build one pull page for a device: the changes after its cursor, sealed to that device.

The cursor is the id of the last change-log row the page covers. It is assigned by the
server, grows monotonically, and never derives from a clock. Entities are sent in their
current state, so a page may already include later edits; they will be sent again, and
applying a page twice changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from peewee import fn

from server.errors import MusterError
from server.models import Change, Checkpoint, Device, Group, Operation, Person
from server.operations.service import group_as_dict
from sync.protocol import ErrorCode

#: Person fields a field device receives (no phone numbers: it does not need them).
DEVICE_PERSON_FIELDS = (
    "full_name",
    "given_name",
    "family_name",
    "sex",
    "birth_date",
    "age",
    "nationality",
    "document_type",
    "document_number",
    "source",
)


def person_for_device(p: Person) -> dict[str, Any]:
    data: dict[str, Any] = {"id": str(p.id), "group": p.group_id}
    for name in DEVICE_PERSON_FIELDS:
        value = getattr(p, name)
        data[name] = value.isoformat() if hasattr(value, "isoformat") else value
    data["alternate_names"] = json.loads(p.alternate_names or "[]")
    data["tags"] = json.loads(p.tags or "[]")
    return data


def build_page(device: Device, cursor: int, limit: int) -> dict[str, Any]:
    """The changes after ``cursor`` for the device's operation, at most ``limit`` change rows."""
    op: Operation = device.operation
    newest = Change.select(fn.MAX(Change.id)).where(Change.operation == op.id).scalar() or 0
    if cursor < 0 or (cursor > 0 and cursor > newest):
        raise MusterError(
            "This cursor is not usable here; clear the local copy and pull from 0.",
            code=ErrorCode.CURSOR_RESET,
            details={"cursor": 0},
        )
    changes = list(
        Change.select(Change.id, Change.entity, Change.entity_id)
        .where((Change.operation == op.id) & (Change.id > cursor))
        .order_by(Change.id)
        .limit(limit)
    )
    wanted: dict[str, set[str]] = {"checkpoint": set(), "group": set(), "person": set()}
    for change in changes:
        wanted.setdefault(change.entity, set()).add(change.entity_id)
    page: dict[str, Any] = {
        "operation": {
            "id": op.id,
            "name": op.name,
            "timezone": op.timezone,
            "status": op.status,
            "starts_at": op.starts_at.isoformat() + "Z",
        },
        "checkpoints": [
            {"id": c.id, "name": c.name, "kind": c.kind}
            for c in Checkpoint.select().where(
                (Checkpoint.operation == op.id)
                & Checkpoint.id.in_([int(i) for i in wanted["checkpoint"]])
            )
        ]
        if wanted["checkpoint"]
        else [],
        "groups": [
            group_as_dict(g)
            for g in Group.select().where(
                (Group.operation == op.id) & Group.id.in_([int(i) for i in wanted["group"]])
            )
        ]
        if wanted["group"]
        else [],
        "people": [
            person_for_device(p)
            for p in Person.select().where(
                (Person.operation == op.id) & Person.id.in_(list(wanted["person"]))
            )
        ]
        if wanted["person"]
        else [],
    }
    page["resolutions"] = _resolutions(op.id, wanted.get("resolution", set()))
    next_cursor = changes[-1].id if changes else cursor
    return {"page": page, "cursor": next_cursor, "more": next_cursor < newest}


def _resolutions(operation_id: int, ids: set[str]) -> list[dict[str, Any]]:
    """Changed resolutions, minimal: id, kind, the people named and their current state."""
    if not ids:
        return []
    from server.models import PersonState, Resolution

    rows = list(
        Resolution.select().where(
            (Resolution.operation == operation_id) & Resolution.id.in_(list(ids))
        )
    )
    people = {str(r.person) for r in rows if r.person}
    people |= {str(json.loads(r.payload).get("into")) for r in rows if r.kind == "merge"}
    states = {
        str(s.person): s.state
        for s in PersonState.select(PersonState.person, PersonState.state).where(
            PersonState.person.in_(list(people))
        )
    }
    out = []
    for r in rows:
        payload = json.loads(r.payload)
        named = [str(r.person)] if r.person else []
        if r.kind == "merge":
            named.append(payload["into"])
        out.append(
            {
                "id": str(r.id),
                "kind": r.kind,
                "people": named,
                "group": payload.get("group"),
                "reverted": r.reverted_by is not None,
                "state": states.get(str(r.person)) if r.person else None,
            }
        )
    return out
