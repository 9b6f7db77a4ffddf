"""Exports of an operation's people: roster with states as CSV and XLSX, and PFIF 1.4 XML.

One copy of the roster table serves the staff API (``GET .../roster.csv``, columns by role) and
the partner exports (``GET .../exports/roster.csv|xlsx``, never document numbers or phones).
Every export is a generator of chunks, so an HTTP response, a CLI command and a test consume
the same code. PFIF mapping and privacy rules: docs/reports.md, "Exports for partners".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from marshmallow import Schema

from server.models import Checkpoint, Event, Operation, Person, Resolution
from server.people.schemas import restricted_person
from server.reconcile import queues
from server.reconcile.derive import PersonState as DerivedState

#: Person columns of the roster table, in order; those the schema lacks are left out.
PERSON_COLUMNS = (
    "id",
    "external_id",
    "full_name",
    "group_id",
    "birth_date",
    "source",
    "document_number",
    "phone",
)
STATE_COLUMNS = ("state", "reason", "last_checkpoint", "last_seen_ms")
#: What partners see people through: never document numbers or phones.
PARTNER_SCHEMA = restricted_person
FORMATS = ("csv", "xlsx", "pfif")
MEDIA_TYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pfif": "application/pfif+xml",
}
FILE_NAMES = {"csv": "roster.csv", "xlsx": "roster.xlsx", "pfif": "pfif.xml"}
PFIF_NS = "http://zesty.ca/pfif/1.4"
DEFAULT_PFIF_DOMAIN = "muster.example"
SCHEMAS_DIR = Path(__file__).parent / "schemas"
_CHUNK_ROWS = 500
_PAGE = 500

Rows = Sequence[tuple[Person, DerivedState]]


# -- roster table -----------------------------------------------------------------------------


def roster_header(schema: Schema) -> list[str]:
    """Column names of the roster table for people shown through ``schema``."""
    return [c for c in PERSON_COLUMNS if c in schema.fields] + list(STATE_COLUMNS)


def roster_rows(rows: Iterable[tuple[Person, DerivedState]], schema: Schema) -> Iterator[list[Any]]:
    """The roster table's data rows: person fields as ``schema`` dumps them, then the state."""
    columns = [c for c in PERSON_COLUMNS if c in schema.fields]
    for person, state in rows:
        data = schema.dump(person)
        yield [
            *(data.get(c) if data.get(c) is not None else "" for c in columns),
            state.state,
            state.reason,
            state.last_checkpoint or "",
            state.last_seen_ms or "",
        ]


def roster_csv(rows: Iterable[tuple[Person, DerivedState]], schema: Schema) -> Iterator[str]:
    """The roster as CSV text chunks: UTF-8 byte-order mark (for Excel), header, rows."""
    out = io.StringIO()
    writer = csv.writer(out)

    def flush() -> str:
        text = out.getvalue()
        out.seek(0)
        out.truncate()
        return text

    writer.writerow(roster_header(schema))
    yield "\ufeff" + flush()
    for i, row in enumerate(roster_rows(rows, schema), start=1):
        writer.writerow(row)
        if i % _CHUNK_ROWS == 0:
            yield flush()
    tail = flush()
    if tail:
        yield tail


_XLSX_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def write_roster_xlsx(
    rows: Iterable[tuple[Person, DerivedState]], schema: Schema, path: Path
) -> None:
    """Write the roster to an XLSX file row by row (openpyxl write-only: bounded memory)."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("roster")

    def cell(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        c = WriteOnlyCell(sheet, value=_XLSX_ILLEGAL.sub("", value))
        # A name starting with "=" must stay text, not become a formula a partner's Excel runs.
        c.data_type = "s"
        return c

    sheet.append([cell(h) for h in roster_header(schema)])
    for row in roster_rows(rows, schema):
        sheet.append([cell(v) for v in row])
    book.save(path)


def roster_xlsx(
    rows: Iterable[tuple[Person, DerivedState]], schema: Schema, chunk: int = 64 * 1024
) -> Iterator[bytes]:
    """The roster as XLSX bytes: written to a temporary file, then streamed and deleted."""
    fd, name = tempfile.mkstemp(suffix=".xlsx", prefix="muster-export-")
    os.close(fd)
    try:
        write_roster_xlsx(rows, schema, Path(name))
        with open(name, "rb") as f:
            while block := f.read(chunk):
                yield block
    finally:
        os.unlink(name)


def partner_roster(op: Operation) -> list[tuple[Person, DerivedState]]:
    """Every person of the operation with its state, in the roster's order."""
    return queues.states(op.id)


# -- PFIF 1.4 ---------------------------------------------------------------------------------

#: PFIF note status for a check-in status. "absent" means staff looked for the person at the
#: checkpoint and did not find them; every other status means a staff member saw them there.
CHECKIN_STATUS = {
    "present": "believed_alive",
    "boarded": "believed_alive",
    "crossed": "believed_alive",
    "arrived": "believed_alive",
    "left": "believed_alive",
    "absent": "believed_missing",
}
#: PFIF note status for a staff resolution (others carry no status).
RESOLUTION_STATUS = {"confirm": "believed_alive", "declare_missing": "believed_missing"}
_XML_ILLEGAL = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_XML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _text(value: str) -> str:
    clean = _XML_ILLEGAL.sub("", value)
    return re.sub(r"[&<>]", lambda m: _XML_ESCAPES[m.group(0)], clean)


def _time(when: dt.datetime) -> str:
    """PFIF time: UTC, ``YYYY-MM-DDTHH:MM:SSZ`` (stored datetimes are naive UTC)."""
    if when.tzinfo is not None:
        when = when.astimezone(dt.UTC).replace(tzinfo=None)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ms_time(ms: int) -> str:
    return _time(dt.datetime.fromtimestamp(ms / 1000, dt.UTC))


def _fields(tag: str, pairs: list[tuple[str, str | None]], indent: str) -> str:
    inner = "".join(
        f"{indent}  <pfif:{name}>{_text(value)}</pfif:{name}>\n"
        for name, value in pairs
        if value is not None and value != ""
    )
    return f"{indent}<pfif:{tag}>\n{inner}"


def person_record_id(domain: str, person_id: uuid.UUID | str) -> str:
    return f"{domain}/person.{person_id}"


def _person_fields(p: Person, domain: str, source_name: str) -> list[tuple[str, str | None]]:
    entry = _time(p.entry_date)
    source = _time(dt.datetime.combine(p.source_date, dt.time())) if p.source_date else entry
    alternates = [n for n in json.loads(p.alternate_names or "[]") if n]
    return [
        ("person_record_id", person_record_id(domain, p.id)),
        ("entry_date", entry),
        (
            "expiry_date",
            _time(dt.datetime.combine(p.expiry_date, dt.time())) if p.expiry_date else None,
        ),
        ("source_name", source_name),
        ("source_date", source),
        ("full_name", p.full_name),
        ("given_name", p.given_name),
        ("family_name", p.family_name),
        ("alternate_names", "\n".join(alternates)),
        ("sex", p.sex if p.sex in ("female", "male", "other") else None),
        ("date_of_birth", p.birth_date.isoformat() if p.birth_date else None),
        # PFIF's age is as of source_date; only given when there is no date of birth.
        ("age", str(p.age) if p.age is not None and not p.birth_date else None),
    ]


def _event_note(e: Event, flag: str | None, checkpoints: dict[int, str]) -> dict[str, Any]:
    place = checkpoints.get(e.checkpoint) if e.checkpoint else None
    status = contact = None
    if e.kind == "checkin":
        status = CHECKIN_STATUS.get(e.status or "")
        contact = "false" if e.status == "absent" else "true"
        text = f"Check-in at {place or 'a checkpoint'}: {e.status} ({e.method})."
    elif e.kind == "walkin":
        status, contact = "believed_alive", "true"
        text = f"Registered as a walk-in at {place or 'a checkpoint'}."
    else:  # flag: a request for help, not by itself news of where the person is
        text = f"Flagged as needing assistance: {flag or 'other'}."
    return {
        "id": e.id,
        "entry": e.received_at,
        "at": _ms_time(e.captured_ms - (e.skew_ms or 0)),
        "sort": (e.captured_ms - (e.skew_ms or 0), str(e.id)),
        "contact": contact,
        "status": status,
        "place": place,
        "text": text,
    }


def _resolution_note(r: Resolution, domain: str) -> dict[str, Any]:
    payload = json.loads(r.payload or "{}")
    linked = person_record_id(domain, payload["into"]) if r.kind == "merge" else None
    text = {
        "confirm": "Confirmed accounted for by staff.",
        "declare_missing": "Declared missing by staff.",
        "merge": "Staff linked this record to a duplicate record of the same person.",
    }.get(r.kind, f"Staff resolution: {r.kind.replace('_', ' ')}.")
    return {
        "id": r.id,
        "entry": r.at,
        "at": _ms_time(r.at_ms),
        "sort": (r.at_ms, str(r.id)),
        "contact": None,
        "status": RESOLUTION_STATUS.get(r.kind),
        "place": None,
        "text": text,
        "linked": linked,
    }


def _notes_of(
    op: Operation, ids: list[uuid.UUID], checkpoints: dict[int, str], domain: str
) -> dict[str, list[dict[str, Any]]]:
    """Notes per person id for one page of people, oldest first."""
    events = list(
        Event.select()
        .where(
            (Event.operation == op.id)
            & Event.person.in_(ids)
            & Event.kind.in_(("checkin", "walkin", "flag"))
        )
        .order_by(Event.id)
    )
    retracted: set[str] = set()
    if events:
        devices = {str(e.id): str(e.device_id) for e in events}
        voids = Event.select(Event.ref, Event.device).where(
            (Event.operation == op.id)
            & (Event.kind == "void")
            & Event.ref.in_([e.id for e in events])
        )
        # Only a void from the same device retracts (docs/reconciliation.md); others are conflicts.
        retracted = {str(v.ref) for v in voids if devices.get(str(v.ref)) == str(v.device_id)}
    notes: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if str(e.id) in retracted:
            continue
        flag = json.loads(e.body).get("flag") if e.kind == "flag" else None
        notes.setdefault(str(e.person), []).append(_event_note(e, flag, checkpoints))
    resolutions = Resolution.select().where(
        (Resolution.operation == op.id)
        & Resolution.person.in_(ids)
        & Resolution.reverted_by.is_null()
        & (Resolution.kind != "revert")
    )
    for r in resolutions:
        notes.setdefault(str(r.person), []).append(_resolution_note(r, domain))
    for items in notes.values():
        items.sort(key=lambda n: n["sort"])
    return notes


def _note_xml(note: dict[str, Any], pid: str, domain: str, author: str) -> str:
    pairs: list[tuple[str, str | None]] = [
        ("note_record_id", f"{domain}/note.{note['id']}"),
        ("person_record_id", pid),
        ("linked_person_record_id", note.get("linked")),
        ("entry_date", _time(note["entry"])),
        ("author_name", author),
        ("source_date", note["at"]),
        ("author_made_contact", note["contact"]),
        ("status", note["status"]),
        ("last_known_location", note["place"]),
        ("text", note["text"]),
    ]
    return _fields("note", pairs, "    ") + "    </pfif:note>\n"


def pfif(op: Operation, domain: str = DEFAULT_PFIF_DOMAIN, source_name: str = "") -> Iterator[str]:
    """The operation's people, each with its notes, as a PFIF 1.4 document in text chunks.

    People are read a page at a time in id order, so memory stays bounded and the output is
    the same for the same data. What is left out, and why: docs/reports.md.
    """
    source_name = source_name or f"Muster: {op.name}"
    author = source_name
    checkpoints = {c.id: c.name for c in Checkpoint.select().where(Checkpoint.operation == op.id)}
    yield f'<?xml version="1.0" encoding="UTF-8"?>\n<pfif:pfif xmlns:pfif="{PFIF_NS}">\n'
    after: uuid.UUID | None = None
    while True:
        query = Person.select().where(Person.operation == op.id)
        if after is not None:
            query = query.where(Person.id > after)
        page = list(query.order_by(Person.id).limit(_PAGE))
        if not page:
            break
        after = page[-1].id
        notes = _notes_of(op, [p.id for p in page], checkpoints, domain)
        parts = []
        for p in page:
            pid = person_record_id(domain, p.id)
            parts.append(_fields("person", _person_fields(p, domain, source_name), "  "))
            parts += [_note_xml(n, pid, domain, author) for n in notes.get(str(p.id), [])]
            parts.append("  </pfif:person>\n")
        yield "".join(parts)
    yield "</pfif:pfif>\n"


# -- one entry point for API and CLI ----------------------------------------------------------


def export(op: Operation, fmt: str, pfif_domain: str = DEFAULT_PFIF_DOMAIN) -> Iterator[bytes]:
    """The partner export ``fmt`` (csv, xlsx or pfif) of ``op`` as byte chunks."""
    if fmt == "csv":
        return (s.encode("utf-8") for s in roster_csv(partner_roster(op), PARTNER_SCHEMA))
    if fmt == "xlsx":
        return roster_xlsx(partner_roster(op), PARTNER_SCHEMA)
    if fmt == "pfif":
        return (s.encode("utf-8") for s in pfif(op, pfif_domain))
    raise ValueError(f"Unknown export format: {fmt}")
