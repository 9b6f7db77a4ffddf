"""Data lifecycle: once a closed operation is past its retention period, expire personal data.

Like a PFIF record reaching its expiry date, a person becomes a placeholder: the record and its
id stay, so events, counts and reports still add up, but names, documents, phones and birth
dates are gone. What is removed and what is kept:

- people: names, alternate names, birth date, age, document type/number/key, phone and the
  roster's external id are blanked; the id, group, sex, nationality, tags and source stay.
- events: the sealed envelope (which holds the same data, encrypted) is emptied and the decoded
  body keeps only its non-personal fields (kind, op, at, author, person, checkpoint, group,
  status, method, count, ref, flag); walk-in ``details`` and free-text ``note`` go. The
  event columns used for counting (kind, person, checkpoint, group, times) are untouched.
- quarantined records: envelope and body are emptied (the reason and ids stay).
- derived state: name keys are emptied; resolutions keep kind and person, lose their reason.

The purge runs as ``muster-server purge`` (for cron or a systemd timer) or from
:func:`purge_due`, which a scheduler in ``serve`` can call; it is idempotent and audited.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from server import audit
from server.db import write_transaction
from server.models import (
    AuditEntry,
    Event,
    Operation,
    Person,
    PersonState,
    QuarantinedRecord,
    Resolution,
    utcnow,
)

PLACEHOLDER = "[expired]"
PURGE_ACTION = "operation.purge"
#: Event body fields kept after expiry: enough to count and report, nothing personal.
KEPT_BODY_FIELDS = (
    "v",
    "kind",
    "op",
    "at",
    "author",
    "person",
    "checkpoint",
    "group",
    "status",
    "method",
    "count",
    "ref",
    "flag",
)
_BATCH = 500


@dataclass
class PurgeResult:
    """What one operation's purge did (counts only)."""

    operation: int
    people: int
    events: int
    quarantined: int

    def as_dict(self) -> dict[str, int]:
        return {
            "operation": self.operation,
            "people": self.people,
            "events": self.events,
            "quarantined": self.quarantined,
        }


def due_at(op: Operation, retention_days: int) -> dt.datetime | None:
    """When the operation's personal data expires: ``retention_days`` after it closed."""
    if op.status != "closed" or op.closed_at is None:
        return None
    return op.closed_at + dt.timedelta(days=retention_days)


def is_purged(op_id: int) -> bool:
    """Whether the operation's personal data has already been expired."""
    return (
        AuditEntry.select()
        .where((AuditEntry.operation == op_id) & (AuditEntry.action == PURGE_ACTION))
        .exists()
    )


def schedule(retention_days: int) -> list[dict[str, Any]]:
    """Every closed operation with the date its personal data expires and whether it has."""
    out = []
    for op in Operation.select().where(Operation.status == "closed").order_by(Operation.id):
        when = due_at(op, retention_days)
        out.append(
            {
                "operation": op.id,
                "closed_at": op.closed_at,
                "purge_due_at": when,
                "purged": is_purged(op.id),
            }
        )
    return out


def purge_due(
    retention_days: int, *, now: dt.datetime | None = None, actor: str = "purge"
) -> list[PurgeResult]:
    """Expire personal data of every closed operation past retention and not yet purged."""
    now = now or utcnow()
    results = []
    for item in schedule(retention_days):
        if not item["purged"] and item["purge_due_at"] and item["purge_due_at"] <= now:
            results.append(purge_operation(item["operation"], actor=actor))
    return results


def purge_operation(op_id: int, *, actor: str = "purge") -> PurgeResult:
    """Expire one operation's personal data now (callers check it is closed and due)."""
    today = utcnow().date()
    with write_transaction():
        people = (
            Person.update(
                full_name=PLACEHOLDER,
                given_name="",
                family_name="",
                alternate_names="[]",
                birth_date=None,
                age=None,
                document_type="",
                document_number="",
                document_key="",
                phone="",
                external_id=None,
                expiry_date=today,
                updated_at=utcnow(),
            )
            .where(Person.operation == op_id)
            .execute()
        )
        events = _expire_events(op_id)
        quarantined = (
            QuarantinedRecord.update(envelope=b"", body=None)
            .where(QuarantinedRecord.operation == op_id)
            .execute()
        )
        PersonState.update(name_keys="[]").where(PersonState.operation == op_id).execute()
        Resolution.update(reason="").where(Resolution.operation == op_id).execute()
        result = PurgeResult(op_id, people, events, quarantined)
        audit.record(actor, PURGE_ACTION, operation=op_id, details=result.as_dict())
    return result


def _expire_events(op_id: int) -> int:
    """Strip envelopes and personal body fields, in batches by id."""
    done = 0
    last = None
    while True:
        query = Event.select(Event.id, Event.body).where(Event.operation == op_id)
        if last is not None:
            query = query.where(Event.id > last)
        batch = list(
            cast(Iterable[tuple[Any, str]], query.order_by(Event.id).limit(_BATCH).tuples())
        )
        if not batch:
            return done
        for event_id, body in batch:
            Event.update(envelope=b"", body=expired_body(body)).where(
                Event.id == event_id
            ).execute()
        done += len(batch)
        last = batch[-1][0]


def expired_body(body: str) -> str:
    """The event's JSON body without personal fields (walk-in details, free-text notes)."""
    try:
        data = json.loads(body)
    except ValueError:
        return "{}"
    if not isinstance(data, dict):
        return "{}"
    kept = {k: data[k] for k in KEPT_BODY_FIELDS if k in data}
    if isinstance(data.get("details"), dict) and "group" in data["details"]:
        kept["details"] = {"group": data["details"]["group"]}
    return json.dumps(kept, separators=(",", ":"), sort_keys=True)
