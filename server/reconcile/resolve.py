"""Apply a staff resolution: validate it whole, store it, refresh derived state, audit it.

Everything happens in one write transaction, so a refused resolution changes nothing. A
resolution that names a person may carry ``based_on_version`` (the person's state version the
coordinator looked at); if the state moved on since, it is refused with ``stale_resolution``.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from server import audit, changelog
from server.db import write_transaction
from server.errors import Conflict, InvalidInput, NotFound
from server.models import (
    Event,
    Group,
    Operation,
    Person,
    PersonLink,
    QuarantinedRecord,
    Resolution,
    StaffUser,
    utcnow,
)
from server.reconcile import store
from server.reconcile.derive import PERSON_KINDS
from sync.protocol import ErrorCode


def _person(op: Operation, pid: Any, field: str = "person") -> Person:
    if pid is None:
        raise InvalidInput(
            f"This resolution needs '{field}'.",
            details={"fields": {field: ["Missing data for required field."]}},
        )
    person = Person.get_or_none((Person.operation == op.id) & (Person.id == pid))
    if person is None:
        raise NotFound("No such person in this operation.", details={"field": field})
    return person


def current_version(op: Operation, person_id: str) -> str:
    """The version of a person's derived state as it stands now."""
    derived = store.derive_people(op.id, [person_id])
    return derived[person_id].version


def _check_merge(op: Operation, dup: Person, primary: Person) -> None:
    if dup.id == primary.id:
        raise InvalidInput(
            "A record cannot be merged into itself.",
            details={"fields": {"into": ["same as person"]}},
        )
    direct = store.links(op.id)
    if str(dup.id) in direct:
        raise Conflict("This record is already merged; revert that merge first.")
    node, seen = str(primary.id), set()
    while node in direct and node not in seen:
        seen.add(node)
        node = direct[node]
        if node == str(dup.id):
            raise Conflict("This merge would make a cycle of merged records.")


def _check_key(op: Operation, person: Person | None, key: str) -> None:
    """A ``resolve`` must name an open conflict, duplicate pair or headcount of this operation."""
    kind, _, rest = key.partition(":")
    if kind == "duplicate":
        ids = rest.split(":")
        if len(ids) != 2:
            raise InvalidInput("Unknown discrepancy key.", details={"fields": {"key": ["bad"]}})
        for pid in ids:
            _person(op, _uuid(pid), "key")
        return
    if kind == "headcount":
        found = Event.get_or_none(
            (Event.operation == op.id) & (Event.id == _uuid(rest)) & (Event.kind == "headcount")
        )
        if found is None:
            raise NotFound("No such headcount in this operation.")
        return
    if person is None:
        raise InvalidInput(
            "Resolving a conflict needs 'person'.",
            details={"fields": {"person": ["Missing data for required field."]}},
        )
    derived = store.derive_people(op.id, [str(person.id)])[str(person.id)]
    if key not in {c["key"] for c in derived.conflicts}:
        raise NotFound("This person has no open conflict with that key.")


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise InvalidInput(
            "Unknown discrepancy key.", details={"fields": {"key": ["bad id"]}}
        ) from exc


def apply(op: Operation, staff: StaffUser, data: dict[str, Any]) -> Resolution:
    """Validate and store one resolution from validated ``ResolutionSchema`` data."""
    kind = data["kind"]
    actor = f"staff:{staff.id}"
    payload: dict[str, Any] = {}
    affected: set[str] = set()
    target: Resolution | None = None
    person_id: Any = None
    with write_transaction():
        # Before any read: concurrent resolutions and ingest of this operation take turns,
        # so the stale-version check below sees every committed change.
        store.serialise(op.id)
        person = (
            _person(op, data.get("person"))
            if kind in PERSON_KINDS and (kind != "resolve" or data.get("person"))
            else None
        )
        if person is not None:
            affected.add(str(person.id))
            version = data.get("based_on_version")
            if version is not None and version != current_version(op, str(person.id)):
                raise Conflict(
                    "The person's state changed since you looked; reload and retry.",
                    code=ErrorCode.STALE_RESOLUTION,
                )
        if kind == "merge":
            primary = _person(op, data.get("into"), "into")
            _check_merge(op, person, primary)  # type: ignore[arg-type]
            payload["into"] = str(primary.id)
            affected.add(payload["into"])
        elif kind in ("move", "accept_walkin"):
            gid = data.get("group")
            if (
                gid is None
                or Group.get_or_none((Group.operation == op.id) & (Group.id == gid)) is None
            ):
                raise NotFound("No such group in this operation.", details={"field": "group"})
            if kind == "accept_walkin" and person.source != "walk-in":  # type: ignore[union-attr]
                raise InvalidInput("Only a walk-in can be accepted into a group.")
            payload["group"] = gid
        elif kind == "resolve":
            key = data.get("key") or ""
            _check_key(op, person, key)
            payload["key"] = key
        elif kind == "release_quarantine":
            record = QuarantinedRecord.get_or_none(
                (QuarantinedRecord.operation == op.id)
                & (QuarantinedRecord.id == data.get("record"))
            )
            if record is None:
                raise NotFound("No such quarantined record in this operation.")
            if record.released_at is not None:
                raise Conflict("This record was already released.")
            payload["record"] = record.id
            QuarantinedRecord.update(released_at=utcnow(), released_by=staff).where(
                QuarantinedRecord.id == record.id
            ).execute()
        elif kind == "revert":
            target = Resolution.get_or_none(
                (Resolution.operation == op.id) & (Resolution.id == data.get("resolution"))
            )
            if target is None:
                raise NotFound("No such resolution in this operation.")
            if target.kind in ("revert", "release_quarantine"):
                raise InvalidInput("This kind of resolution cannot be reverted.")
            if target.reverted_by is not None:
                raise Conflict("This resolution was already reverted.")
            payload["resolution"] = str(target.id)
            person_id = target.person
            affected |= {str(target.person), str(json.loads(target.payload).get("into"))}
        row = Resolution.create(
            id=uuid.uuid4(),
            operation=op.id,
            kind=kind,
            person=person.id if person is not None else (person_id if kind == "revert" else None),
            payload=json.dumps(payload, sort_keys=True),
            actor=actor,
            at_ms=int(time.time() * 1000),
            reason=data["reason"],
            based_on_version=data.get("based_on_version"),
        )
        if kind == "merge":
            PersonLink.create(
                operation=op.id,
                duplicate=person.id,  # type: ignore[union-attr]
                primary=payload["into"],
                resolution=row.id,
            )
        if target is not None:
            Resolution.update(reverted_by=row.id).where(Resolution.id == target.id).execute()
            PersonLink.delete().where(PersonLink.resolution == target.id).execute()
        affected.discard("None")
        store.recompute(op.id, affected)
        audit.record(
            actor,
            f"resolution.{kind}",
            operation=op.id,
            target=f"resolution:{row.id}",
            details={
                "resolution": str(row.id),
                "person": str(row.person or ""),
                **{k: v for k, v in payload.items() if k != "key"},
            },
            reason=data["reason"],
        )
        changelog.record(
            op.id, "resolution", [str(row.id), *([str(target.id)] if target is not None else [])]
        )
    return row


def as_dict(r: Resolution) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "kind": r.kind,
        "person": str(r.person) if r.person else None,
        "payload": json.loads(r.payload),
        "actor": r.actor,
        "at": r.at.isoformat() + "Z",
        "at_ms": r.at_ms,
        "reason": r.reason,
        "based_on_version": r.based_on_version,
        "reverted_by": str(r.reverted_by) if r.reverted_by else None,
    }
