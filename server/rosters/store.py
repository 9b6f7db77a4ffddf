"""Apply a batch of validated rows to an operation's people: match, diff, insert, update.

A row matches a person of the operation by external id, else by document key (only a person
without an external id or with the same one). Matching rows whose values already hold are
``unchanged``; others update only the fields the roster fills (an empty cell erases nothing).
A person whose group or names change, and who has a derived state, is derived again in the
same transaction: the state holds the group (counted in its summary) and the name keys
(duplicates are found by them), as a rebuild would derive them.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from server import changelog
from server.crypto.fields import blind_index
from server.models import Operation, Person, PersonState, utcnow
from server.reconcile import store as reconcile_store
from server.rosters.report import ImportReport
from server.rosters.rows import Row, RowError
from sync.normalize import document_key

#: Rows per batch: one SELECT to match them, one INSERT for the new ones.
BATCH_SIZE = 500
_LIST_FIELDS = ("alternate_names", "tags")
#: Person fields a derived state is made from (``reconcile.store.derive_people``).
_DERIVED_FROM = frozenset({"group", "full_name", "given_name", "family_name", "alternate_names"})


@dataclass
class Batch:
    """Rows waiting to be matched and written, plus who already claimed which person."""

    operation: Operation
    write: bool
    claimed: dict[uuid.UUID, int] = field(default_factory=dict)
    rows: list[tuple[Row, dict[str, Any]]] = field(default_factory=list)


def model_values(row: Row, group_id: int | None) -> dict[str, Any]:
    """Person column values a row sets (only the fields it fills)."""
    values: dict[str, Any] = {}
    for name, value in row.data.items():
        if name == "group":
            continue
        values[name] = json.dumps(value, ensure_ascii=False) if name in _LIST_FIELDS else value
    if "document_number" in values:
        # Matching keys are compared in their stored form: a keyed hash (server.crypto.fields).
        key = document_key(values["document_number"])
        values["document_key"] = blind_index(key) if key else ""
    if group_id is not None:
        values["group"] = group_id
    return values


def flush(batch: Batch, report: ImportReport, on_reject: Callable[[Row], None]) -> None:
    """Match, count and (when writing) store the batch's rows; then empty the batch."""
    if not batch.rows:
        return
    existing = _existing(batch)
    by_ext = {p.external_id: p for p in existing if p.external_id}
    by_doc: dict[str, Person] = {}
    for known in existing:
        if known.document_key:
            by_doc.setdefault(known.document_key, known)
    creates: list[dict[str, Any]] = []
    changed_ids: list[str] = []
    derive_again: list[uuid.UUID] = []
    now = utcnow()
    for row, values in batch.rows:
        person = _match(values, by_ext, by_doc, row)
        if row.errors:
            on_reject(row)
            continue
        if person is None:
            creates.append(_new_person(batch.operation, values, now))
            continue
        if person.id in batch.claimed:
            row.errors.append(
                RowError(
                    row.line, "", f"Matches the same person as line {batch.claimed[person.id]}."
                )
            )
            on_reject(row)
            continue
        batch.claimed[person.id] = row.line
        changes = {k: v for k, v in values.items() if _differs(person, k, v)}
        if not changes:
            report.unchanged += 1
            continue
        report.updated += 1
        report.changes.append({"line": row.line, "fields": sorted(changes)})
        if batch.write:
            Person.update(**changes, updated_at=now).where(Person.id == person.id).execute()
            changed_ids.append(str(person.id))
            if not _DERIVED_FROM.isdisjoint(changes):
                derive_again.append(person.id)
    report.created += len(creates)
    if batch.write and creates:
        Person.insert_many(creates).as_rowcount().execute()
        changed_ids.extend(str(c["id"]) for c in creates)
    if batch.write and changed_ids:
        changelog.record(batch.operation.id, "person", changed_ids)
    if batch.write and derive_again:
        _derive_again(batch.operation.id, derive_again)
    batch.rows.clear()


def _derive_again(operation_id: int, people: list[uuid.UUID]) -> None:
    """Derive again the stored states of these people (those never derived have none)."""
    derived = [
        str(state.person)
        for state in PersonState.select(PersonState.person).where(
            (PersonState.operation == operation_id) & PersonState.person.in_(people)
        )
    ]
    if derived:
        # A derivation takes the name keys of a stored state over the names (they are the
        # same but for changes like this one): forget them first.
        PersonState.update(name_keys="[]").where(PersonState.person.in_(derived)).execute()
        reconcile_store.recompute(operation_id, derived)


def _existing(batch: Batch) -> list[Person]:
    ext_ids = [v["external_id"] for _, v in batch.rows if v.get("external_id")]
    doc_keys = [v["document_key"] for _, v in batch.rows if v.get("document_key")]
    if not ext_ids and not doc_keys:
        return []
    where = Person.id.is_null(True)  # a false start to OR onto
    if ext_ids:
        where |= Person.external_id.in_(ext_ids)
    if doc_keys:
        where |= Person.document_key.in_(doc_keys)
    query = (
        Person.select()
        .where((Person.operation == batch.operation) & where)
        .order_by(Person.entry_date, Person.id)
    )
    return list(query)


def _match(
    values: dict[str, Any], by_ext: dict[str, Person], by_doc: dict[str, Person], row: Row
) -> Person | None:
    ext = values.get("external_id")
    if ext and ext in by_ext:
        return by_ext[ext]
    key = values.get("document_key")
    person = by_doc.get(key) if key else None
    if person is not None and person.external_id and ext and person.external_id != ext:
        row.errors.append(
            RowError(
                row.line, "", "The document number belongs to a person with another external id."
            )
        )
        return None
    return person


def _differs(person: Person, name: str, value: Any) -> bool:
    if name == "group":
        return bool(person.group_id != value)  # type: ignore[attr-defined]
    current = getattr(person, name)
    if name in _LIST_FIELDS:
        return bool(json.loads(current or "[]") != json.loads(value))
    if isinstance(value, dt.date) and isinstance(current, str):
        return current != value.isoformat()
    return bool(current != value)


def _new_person(op: Operation, values: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    row = {
        "id": uuid.uuid4(),
        "operation": op.id,
        "group": None,
        "external_id": None,
        "given_name": "",
        "family_name": "",
        "alternate_names": "[]",
        "sex": "unknown",
        "birth_date": None,
        "age": None,
        "nationality": "",
        "document_type": "",
        "document_number": "",
        "document_key": "",
        "phone": "",
        "tags": "[]",
        "source": "roster",
        "source_date": now.date(),
        "entry_date": now,
        "expiry_date": None,
        "updated_at": now,
    }
    row.update(values)
    return row
