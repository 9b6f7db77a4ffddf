"""Ingest one push: every record gets its own answer; accepted ones are committed first.

The hot path is symmetric only: one Ed25519 check per request (done by the caller), one
HPKE open per capture session (cached), then per record AES-GCM, JSON, schema validation and
batched inserts. Records are committed in chunks; acknowledgements name only committed ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from marshmallow import ValidationError

from server import changelog, reconcile
from server.crypto.fields import seal
from server.db import (
    backend_name,
    bulk_insert,
    database,
    statistics,
    write_transaction,
)
from server.ingest.sessions import SessionResolver
from server.models import CaptureSession, Device, Event, Person, QuarantinedRecord, utcnow
from server.reconcile import backlog
from server.reconcile.derive import EventRec
from server.reconcile.store import stored_event_rec
from sync.crypto import CryptoError, b64d, open_envelope, parse_envelope_header
from sync.events import decode_body
from sync.messages import ACCEPTED, DUPLICATE, REJECTED, RETRY
from sync.normalize import document_key
from sync.protocol import ErrorCode

CHUNK = 500
_FUTURE_TOLERANCE_MS = 5 * 60 * 1000


@dataclass
class Result:
    """The answer for one record of a push."""

    index: int
    status: str
    id: uuid.UUID | None = None
    seq: int | None = None
    code: str | None = None
    message: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "status": self.status}
        if self.id is not None:
            out["id"] = str(self.id)
        if self.seq is not None:
            out["seq"] = self.seq
        if self.code is not None:
            out["code"] = self.code
            out["message"] = self.message or ""
        return out


@dataclass
class Context:
    """What ingest needs to know besides the records themselves."""

    device: Device
    operation_start: dt.datetime
    server_ms: int
    device_clock_ms: int
    skew_bound_ms: int
    time_budget_s: float = 20.0
    started: float = field(default_factory=time.monotonic)

    @cached_property
    def operation_start_ms(self) -> int:
        return int(self.operation_start.replace(tzinfo=dt.UTC).timestamp() * 1000)


@dataclass
class _Prepared:
    index: int
    row: dict[str, Any] | None = None
    quarantine: dict[str, Any] | None = None
    result: Result | None = None
    trusted_seq: int | None = None
    person: dict[str, Any] | None = None
    rec: EventRec | None = None


def _now_ms() -> int:
    return int(time.time() * 1000)


def ingest(
    ctx: Context,
    resolver: SessionResolver,
    envelopes: list[str],
) -> list[Result]:
    """Open, validate and store ``envelopes``; return one result per record, in order."""
    results: list[Result] = []
    recs = not backlog.behind()  # records for folding inline; the deriver reads them back
    for start in range(0, len(envelopes), CHUNK):
        if start and time.monotonic() - ctx.started > ctx.time_budget_s:
            results.extend(
                Result(
                    i,
                    RETRY,
                    code=str(ErrorCode.SERVICE_UNAVAILABLE),
                    message="Server busy; send again.",
                )
                for i in range(start, len(envelopes))
            )
            break
        prepared = [
            _prepare(ctx, resolver, start + i, item, recs)
            for i, item in enumerate(envelopes[start : start + CHUNK])
        ]
        results.extend(_commit(ctx, resolver, prepared))
    return results


def quarantine_all(
    device: Device | None, envelopes: Iterable[str], reason: ErrorCode, message: str
) -> int:
    """Keep every record of a refused push (a revoked device's, say) in quarantine."""
    rows = []
    for item in envelopes:
        raw = _raw_bytes(item)
        header = _header_or_none(raw)
        rows.append(
            {
                "operation": device.operation_id if device else None,
                "device": device.id if device else None,
                "reason": str(reason),
                "message": message,
                "event_id": header.event_id if header else None,
                "seq": None,
                "envelope": raw,
                "body": None,
            }
        )
    with write_transaction():
        for start in range(0, len(rows), CHUNK):
            bulk_insert(QuarantinedRecord, rows[start : start + CHUNK])
    return len(rows)


def _raw_bytes(item: str) -> bytes:
    try:
        return b64d(item)
    except CryptoError:
        return item.encode("utf-8", "replace")[:65536]


def _header_or_none(raw: bytes) -> Any:
    try:
        return parse_envelope_header(raw)
    except CryptoError:
        return None


def _reject(
    p: _Prepared,
    code: ErrorCode,
    message: str,
    raw: bytes,
    *,
    ctx: Context,
    header: Any = None,
    body: str | None = None,
    seq: int | None = None,
) -> _Prepared:
    p.result = Result(
        p.index,
        REJECTED,
        id=header.event_id if header else None,
        seq=seq,
        code=str(code),
        message=message,
    )
    p.quarantine = {
        "operation": ctx.device.operation_id,
        "device": ctx.device.id,
        "reason": str(code),
        "message": message,
        "event_id": header.event_id if header else None,
        "seq": seq,
        "envelope": raw,
        "body": body,
    }
    p.trusted_seq = seq
    return p


def _prepare(
    ctx: Context, resolver: SessionResolver, index: int, item: str, recs: bool = True
) -> _Prepared:
    p = _Prepared(index)
    raw = _raw_bytes(item)
    header = _header_or_none(raw)
    if header is None:
        return _reject(
            p, ErrorCode.ENVELOPE_MALFORMED, "The envelope does not parse.", raw, ctx=ctx
        )
    session = resolver.resolve(header.session_id)
    if isinstance(session, ErrorCode):
        return _reject(
            p,
            session,
            "The record's capture session cannot be opened.",
            raw,
            ctx=ctx,
            header=header,
        )
    try:
        header, plaintext = open_envelope(raw, session, header)
    except CryptoError:
        return _reject(
            p,
            ErrorCode.ENVELOPE_UNAUTHENTIC,
            "The envelope is not authentic.",
            raw,
            ctx=ctx,
            header=header,
        )
    # From here on the header is authenticated: its id and seq are the device's own.
    try:
        _raw, body = decode_body(plaintext)
    except ValidationError as exc:
        fields = sorted(exc.messages) if isinstance(exc.messages, dict) else []
        return _reject(
            p,
            ErrorCode.EVENT_INVALID,
            "The event does not validate: " + ", ".join(map(str, fields)),
            raw,
            ctx=ctx,
            header=header,
            body=plaintext.decode("utf-8", "replace"),
            seq=header.seq,
        )
    except ValueError:
        return _reject(
            p,
            ErrorCode.EVENT_INVALID,
            "The event is not a JSON object.",
            raw,
            ctx=ctx,
            header=header,
            body=plaintext.decode("utf-8", "replace"),
            seq=header.seq,
        )
    if body["op"] != ctx.device.operation_id:
        return _reject(
            p,
            ErrorCode.WRONG_OPERATION,
            "The event belongs to another operation.",
            raw,
            ctx=ctx,
            header=header,
            body=plaintext.decode(),
            seq=header.seq,
        )
    p.trusted_seq = header.seq
    p.row = {
        "id": header.event_id,
        "operation": ctx.device.operation_id,
        "device": ctx.device.id,
        "seq": header.seq,
        "session": header.session_id.hex(),
        **event_columns(body),
        "time_flag": _time_flag(ctx, body["at"]),
        # Device clock minus server clock: orders this device's events against others'.
        "skew_ms": ctx.device_clock_ms - ctx.server_ms,
        "content_hash": hashlib.sha256(plaintext).hexdigest(),
        # Sealed here, on the request's thread, rather than by the column on the writer's.
        "body": seal(plaintext.decode()),
        "envelope": raw,
    }
    if body["kind"] == "walkin":
        p.person = _walk_in_person(ctx.device.operation_id, body)
    if recs:
        p.rec = stored_event_rec(p.row, body.get("flag"))
    return p


def event_columns(body: dict[str, Any]) -> dict[str, Any]:
    """The ``event`` columns a validated body fills (reconciliation reads these, not the body)."""
    return {
        "kind": body["kind"],
        "person": body.get("person"),
        "checkpoint": body.get("checkpoint"),
        "group": body.get("group") or (body.get("details") or {}).get("group"),
        "status": body.get("status"),
        "method": body.get("method"),
        "author": body["author"],
        "count": body.get("count"),
        "ref": body.get("ref"),
        "captured_ms": body["at"],
    }


def _time_flag(ctx: Context, captured_ms: int) -> str | None:
    """Flag capture times that cannot be right; they are data, never trusted as order."""
    skew = ctx.device_clock_ms - ctx.server_ms
    corrected = captured_ms - skew
    if captured_ms > ctx.device_clock_ms + _FUTURE_TOLERANCE_MS:
        return "future"
    if corrected < ctx.operation_start_ms - 24 * 3600 * 1000:
        return "before_start"
    if abs(skew) > ctx.skew_bound_ms:
        return "skew"
    return None


def _walk_in_person(operation_id: int, body: dict[str, Any]) -> dict[str, Any]:
    d = body["details"]
    return {
        "id": body["person"],
        "operation": operation_id,
        "group": d.get("group"),
        "full_name": d["full_name"],
        "given_name": d.get("given_name", ""),
        "family_name": d.get("family_name", ""),
        "alternate_names": json.dumps(d.get("alternate_names", []), ensure_ascii=False),
        "sex": d.get("sex", "unknown"),
        "birth_date": d.get("birth_date"),
        "age": d.get("age"),
        "nationality": d.get("nationality", ""),
        "document_type": d.get("document_type", ""),
        "document_number": d.get("document_number", ""),
        "document_key": document_key(d.get("document_number", "")),
        "phone": d.get("phone", ""),
        "tags": json.dumps(d.get("tags", []), ensure_ascii=False),
        "source": "walk-in",
    }


@dataclass
class _Chunk:
    """One chunk of one push, waiting for (or done by) a group commit."""

    ctx: Context
    resolver: SessionResolver
    prepared: list[_Prepared]
    accepted: list[dict[str, Any]] = field(default_factory=list)
    recs: dict[str, EventRec] = field(default_factory=dict)
    done: bool = False
    error: BaseException | None = None


class _GroupCommit:
    """Chunks of concurrent pushes share one write transaction, and so one fsync.

    Writers take turns anyway (SQLite has one writer; on PostgreSQL the per-operation lock of
    derived state serialises them), so whoever gets the turn stores every chunk queued by
    then, derives state once for all of them (or, with ``DERIVE = "behind"``, notes them in
    the derive backlog: ``server.reconcile.backlog``) and commits; the others find their
    chunk done.
    Nothing is acknowledged before that commit. An error fails every chunk of the group:
    each push answers it (503 when the database is busy) and its device sends again.
    """

    def __init__(self) -> None:
        self._queues: dict[int, list[_Chunk]] = {}
        self._queue_lock = threading.Lock()
        self._turn = threading.Lock()

    def submit(self, chunk: _Chunk) -> list[Result]:
        key = id(database.obj)
        with self._queue_lock:
            self._queues.setdefault(key, []).append(chunk)
        with self._turn:
            if not chunk.done:
                with self._queue_lock:
                    batch = self._queues.pop(key)
                self._run(batch)
        if chunk.error is not None:
            raise chunk.error
        return [p.result for p in chunk.prepared if p.result is not None]

    @staticmethod
    def _run(batch: list[_Chunk]) -> None:
        later = backlog.behind()  # derive after answering (server.reconcile.backlog)
        try:
            with write_transaction():
                by_operation: dict[int, list[dict[str, Any]]] = {}
                recs: dict[str, EventRec] = {}
                for chunk in batch:
                    _store(chunk)
                    op = chunk.ctx.device.operation_id
                    by_operation.setdefault(op, []).extend(chunk.accepted)
                    recs.update(chunk.recs)
                for op, rows in by_operation.items():
                    if later:
                        backlog.defer(op, rows)
                    else:
                        reconcile.on_events(op, rows, recs)
        except BaseException as exc:
            for chunk in batch:
                chunk.error = exc
        finally:
            for chunk in batch:
                chunk.done = True
        if not any(chunk.error for chunk in batch):
            statistics.grew("event", sum(len(chunk.accepted) for chunk in batch))


_GROUP = _GroupCommit()


def _commit(ctx: Context, resolver: SessionResolver, prepared: list[_Prepared]) -> list[Result]:
    """Store one chunk (with whatever other pushes are committing) and answer its records."""
    return _GROUP.submit(_Chunk(ctx, resolver, prepared))


def _existing(ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, uuid.UUID]]:
    """Stored events among ``ids``: their content hash and device (one plain query)."""
    if not ids:
        return {}
    marks = ", ".join([database.obj.param] * len(ids))
    return {
        uuid.UUID(str(eid)): (digest, uuid.UUID(str(device)))
        for eid, digest, device in database.execute_sql(
            f'SELECT "id", "content_hash", "device_id" FROM "event" WHERE "id" IN ({marks})',
            [eid.hex for eid in ids],
        ).fetchall()
    }


def _store(chunk: _Chunk) -> None:
    """Store one chunk inside the group's transaction and work out each record's answer."""
    ctx, resolver, prepared = chunk.ctx, chunk.resolver, chunk.prepared
    candidates = [p for p in prepared if p.row is not None]
    ids = list({p.row["id"] for p in candidates if p.row})
    existing = _existing(ids)
    fresh: dict[uuid.UUID, _Prepared] = {}
    for p in candidates:
        assert p.row is not None
        eid, digest = p.row["id"], p.row["content_hash"]
        if eid in existing:
            same = existing[eid] == (digest, ctx.device.id)
            _answer_known(p, ctx, same)
        elif eid in fresh:
            _answer_known(p, ctx, fresh[eid].row["content_hash"] == digest)  # type: ignore[index]
        else:
            fresh[eid] = p
    _store_sessions(ctx, resolver, fresh.values())
    rows = [p.row for p in fresh.values() if p.row is not None]
    received = utcnow()  # one time for the chunk: it is received in one transaction
    for row in rows:
        row["received_at"] = received
    inserted = bulk_insert(Event, rows, ignore_conflicts=True)
    if inserted == len(rows):
        stored = {eid: p.row["content_hash"] for eid, p in fresh.items()}  # type: ignore[index]
    else:
        # Some rows lost a race or reuse a sequence number: look at what is stored.
        stored = {eid: digest for eid, (digest, _device) in _existing(list(fresh)).items()}
    for eid, p in fresh.items():
        if stored.get(eid) == p.row["content_hash"]:  # type: ignore[index]
            p.result = Result(p.index, ACCEPTED, id=eid, seq=p.row["seq"])  # type: ignore[index]
        else:
            # Another event already holds this device's sequence number.
            _equivocation(p, ctx)
    people = [
        p.person for p in fresh.values() if p.person and p.result and p.result.status == ACCEPTED
    ]
    if people:
        for start in range(0, len(people), CHUNK):
            bulk_insert(Person, people[start : start + CHUNK], ignore_conflicts=True)
        changelog.record(ctx.device.operation_id, "person", [p["id"] for p in people])
    quarantined = [p.quarantine for p in prepared if p.quarantine]
    for start in range(0, len(quarantined), CHUNK):
        bulk_insert(QuarantinedRecord, quarantined[start : start + CHUNK])
    _advance_sequence(ctx, [p.trusted_seq for p in prepared if p.trusted_seq])
    accepted = [p for p in fresh.values() if p.row and p.result and p.result.status == ACCEPTED]
    chunk.accepted = [p.row for p in accepted if p.row]
    chunk.recs = {p.rec.id: p.rec for p in accepted if p.rec}


def _answer_known(p: _Prepared, ctx: Context, same: bool) -> None:
    assert p.row is not None
    if same:
        p.result = Result(p.index, DUPLICATE, id=p.row["id"], seq=p.row["seq"])
    else:
        _equivocation(p, ctx)


def _equivocation(p: _Prepared, ctx: Context) -> None:
    """Same id (or sequence) with different content: refuse, keep, and flag for staff."""
    assert p.row is not None
    row = p.row
    p.result = Result(
        p.index,
        REJECTED,
        id=row["id"],
        seq=row["seq"],
        code=str(ErrorCode.EQUIVOCATION),
        message="Another record already holds this id or sequence number.",
    )
    p.quarantine = {
        "operation": ctx.device.operation_id,
        "device": ctx.device.id,
        "reason": str(ErrorCode.EQUIVOCATION),
        "message": p.result.message,
        "event_id": row["id"],
        "seq": row["seq"],
        "envelope": row["envelope"],
        "body": row["body"],
    }


def _store_sessions(ctx: Context, resolver: SessionResolver, fresh: Iterable[_Prepared]) -> None:
    used = {p.row["session"] for p in fresh if p.row}
    rows = []
    for sid_hex in used:
        sid = bytes.fromhex(sid_hex)
        info = resolver.opened.get(sid)
        blob = resolver.blobs.get(sid)
        if info is None or blob is None:
            continue
        rows.append(
            {
                "id": sid_hex,
                "device": ctx.device.id,
                "server_kid": info.server_kid,
                "created_ms": info.created_ms,
                "blob": blob,
            }
        )
    if rows:
        CaptureSession.insert_many(rows).on_conflict_ignore().execute()


def _advance_sequence(ctx: Context, seqs: list[int]) -> None:
    """Move the device's high and contiguous sequence in the same transaction as its events."""
    query = Device.select().where(Device.id == ctx.device.id)
    if backend_name(database) == "postgresql":
        # Processes may commit batches of one device at once: lock the row first, so each reads
        # the marks and events the other committed, and marks never move back (SQLite's
        # IMMEDIATE transactions are already serialised).
        query = query.for_update()
    device = query.get()
    high = max([device.high_seq, *seqs])
    contiguous = device.contiguous_seq
    seen = set(seqs)
    while contiguous + 1 in seen:
        contiguous += 1
    if high > contiguous:
        # A gap remains after this batch: the missing numbers may have arrived earlier.
        later = (
            Event.select(Event.seq)
            .where((Event.device == device.id) & (Event.seq > contiguous))
            .union(
                QuarantinedRecord.select(QuarantinedRecord.seq).where(
                    (QuarantinedRecord.device == device.id) & (QuarantinedRecord.seq > contiguous)
                )
            )
        )
        seen.update(row.seq for row in later if row.seq is not None)
        while contiguous + 1 in seen:
            contiguous += 1
    Device.update(
        high_seq=high,
        contiguous_seq=contiguous,
        last_seen_at=utcnow(),
        skew_ms=ctx.device_clock_ms - ctx.server_ms,
    ).where(Device.id == device.id).execute()
    ctx.device.high_seq, ctx.device.contiguous_seq = high, contiguous


def gaps(device: Device, limit: int = 100) -> list[list[int]]:
    """Ranges of sequence numbers the device made that never arrived, as [first, last] pairs."""
    if device.high_seq <= device.contiguous_seq:
        return []
    later = sorted(
        {
            row.seq
            for row in Event.select(Event.seq)
            .where((Event.device == device.id) & (Event.seq > device.contiguous_seq))
            .union(
                QuarantinedRecord.select(QuarantinedRecord.seq).where(
                    (QuarantinedRecord.device == device.id)
                    & (QuarantinedRecord.seq > device.contiguous_seq)
                )
            )
            if row.seq is not None
        }
    )
    out: list[list[int]] = []
    expected = device.contiguous_seq + 1
    for seq in later:
        if seq > expected:
            out.append([expected, seq - 1])
            if len(out) >= limit:
                break
        expected = seq + 1
    return out
