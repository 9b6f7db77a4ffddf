"""A field device: capture events offline, keep them durable and sealed, sync when possible.

device = Device.enrol("field.db", "https://muster.example", "ABCD-EFGH-JK",
                      passphrase="...", author="olena")
device.checkin(person_id, checkpoint=3, status="boarded", method="search")
device.sync()            # push what is queued, pull roster changes
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from marshmallow import ValidationError

from sync.crypto import (
    AuthenticityError,
    DeviceKeys,
    SealingSession,
    Vault,
    b64d,
    b64e,
    open_from_server,
)
from sync.errors import (
    DeviceRevoked,
    InvalidEvent,
    NotEnrolled,
    NotFound,
    Offline,
    ServerRefused,
    WrongPassphrase,
)
from sync.events import EVENT_SCHEMA_VERSION, canonical_bytes, validate_body
from sync.messages import ACCEPTED, DUPLICATE, REJECTED
from sync.protocol import ErrorCode
from sync.search import RosterIndex
from sync.store import QUEUED, SENT, Store
from sync.store import REJECTED as STATE_REJECTED
from sync.transport import Transport

#: Rotate the in-memory capture session after this many records or seconds.
SESSION_MAX_RECORDS = 1000
SESSION_MAX_SECONDS = 3600

Progress = Callable[[int, int], None]


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class SyncReport:
    """What one sync did."""

    pushed: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    still_queued: int = 0
    pulled_people: int = 0
    attempts: int = 0
    offline: bool = False
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Device:
    """One enrolled device over its local store. Not thread-safe: one per process or thread."""

    def __init__(self, store: Store, vault: Vault, *, transport: Transport | None = None) -> None:
        self.store = store
        self.vault = vault
        device_id = store.get("device_id")
        if device_id is None:
            raise NotEnrolled("This store is not enrolled.")
        self.device_id = uuid.UUID(device_id)
        sealed_keys = store.get_bytes("device_keys")
        assert sealed_keys is not None
        self.keys = DeviceKeys.from_bytes(vault.decrypt(sealed_keys, b"muster/device-keys"))
        self.operation: dict[str, Any] = store.get("operation")
        self.settings: dict[str, Any] = store.get("settings", {})
        self.author: str = store.get("author", "")
        if transport is not None and transport.keys is None:
            transport.device_id, transport.keys = self.device_id, self.keys
        self.transport = transport or Transport(
            store.get("server_url"), device_id=self.device_id, keys=self.keys
        )
        self._session: SealingSession | None = None
        self._session_count = 0
        self._session_started = 0.0
        self._index: RosterIndex | None = None

    # Opening ---------------------------------------------------------------------------
    @classmethod
    def enrol(
        cls,
        path: str | Path,
        server_url: str,
        code: str,
        *,
        passphrase: str,
        author: str,
        label: str = "",
        vault_params: dict[str, Any] | None = None,
        transport: Transport | None = None,
    ) -> Device:
        """Make this device's keys, enrol with a one-time code, and pin the server's keys."""
        store = Store(path)
        if store.get("device_id") is not None:
            raise ServerRefused(0, "already_enrolled", "This store is already enrolled.")
        keys = DeviceKeys.generate()
        vault, params = Vault.create(passphrase, **(vault_params or {}))
        anonymous = transport or Transport(server_url)
        answer = anonymous.call(
            "POST",
            "/sync/enrol",
            {
                "code": code,
                "signing_key": b64e(keys.signing_public_raw),
                "encryption_key": b64e(keys.encryption_public_raw),
                "label": label,
                "clock": now_ms(),
            },
            compress=False,
        )
        with store.atomic():
            store.put("vault", params)
            store.put_bytes("device_keys", vault.encrypt(keys.to_bytes(), b"muster/device-keys"))
            store.put("device_id", answer["device_id"])
            store.put("server_url", server_url)
            store.put("operation", answer["operation"])
            store.put("server_keys", answer["server_keys"])
            store.put("current_kid", answer["current_kid"])
            store.put("settings", answer["settings"])
            store.put("author", author)
            store.put("next_seq", 1)
            store.put("cursor", 0)
        device_transport = None
        if transport is not None:
            transport.device_id, transport.keys = uuid.UUID(answer["device_id"]), keys
            device_transport = transport
        return cls(store, vault, transport=device_transport)

    @classmethod
    def open(
        cls, path: str | Path, passphrase: str, *, transport: Transport | None = None
    ) -> Device:
        """Unlock an enrolled store with its passphrase."""
        if not Path(path).exists():
            raise NotEnrolled("No device store here; enrol first.")
        store = Store(path)
        params = store.get("vault")
        if params is None:
            raise NotEnrolled("This store is not enrolled.")
        try:
            vault = Vault.unlock(passphrase, params)
        except AuthenticityError as exc:
            store.close()
            raise WrongPassphrase("The passphrase does not open this device store.") from exc
        return cls(store, vault, transport=transport)

    def close(self) -> None:
        self._end_session()
        self.store.close()
        self.transport.close()

    # Capture ---------------------------------------------------------------------------
    def checkin(
        self,
        person: str | uuid.UUID,
        *,
        checkpoint: int,
        status: str = "present",
        method: str = "search",
        note: str | None = None,
    ) -> uuid.UUID:
        """Record that a person was seen at a checkpoint; durable before it returns."""
        return self._capture(
            "checkin",
            person=str(person),
            checkpoint=checkpoint,
            status=status,
            method=method,
            note=note,
        )

    def walkin(
        self,
        details: dict[str, Any],
        *,
        checkpoint: int,
        note: str | None = None,
        method: str = "walk-in",
    ) -> uuid.UUID:
        """Register a person on no roster; returns the new person's id."""
        person_id = uuid.uuid4()
        self._capture(
            "walkin",
            person=str(person_id),
            checkpoint=checkpoint,
            details=details,
            note=note,
            method=method,
            _local_person={**details, "id": str(person_id), "source": "walk-in"},
        )
        return person_id

    def headcount(
        self, *, checkpoint: int, group: int, count: int, note: str | None = None
    ) -> uuid.UUID:
        """Record a counted number of people of a group at a checkpoint (no names)."""
        return self._capture(
            "headcount", checkpoint=checkpoint, group=group, count=count, note=note
        )

    def flag(
        self,
        person: str | uuid.UUID,
        *,
        flag: str,
        checkpoint: int | None = None,
        note: str | None = None,
    ) -> uuid.UUID:
        """Flag a person (needs medical help, injured, ...)."""
        return self._capture(
            "flag", person=str(person), flag=flag, checkpoint=checkpoint, note=note
        )

    def void(self, event_id: str | uuid.UUID, *, note: str | None = None) -> uuid.UUID:
        """Retract one of this device's earlier events (a new event; nothing is edited)."""
        ref = str(event_id)
        if self.store.m.Outbox.get_or_none(self.store.m.Outbox.event_id == ref) is None:
            raise NotFound("This device recorded no event with that id.")
        return self._capture("void", ref=ref, note=note)

    def _capture(
        self, kind: str, _local_person: dict[str, Any] | None = None, **fields: Any
    ) -> uuid.UUID:
        body = {k: v for k, v in fields.items() if v is not None}
        body.update(
            v=EVENT_SCHEMA_VERSION,
            kind=kind,
            op=self.operation["id"],
            at=now_ms(),
            author=self.author,
        )
        try:
            validate_body(body)
        except ValidationError as exc:
            raise InvalidEvent(
                "The event does not validate; nothing was recorded.",
                exc.messages if isinstance(exc.messages, dict) else {},
            ) from exc
        event_id = uuid.uuid4()
        session = self._current_session()
        m = self.store.m
        try:
            with self.store.atomic():
                seq = int(self.store.get("next_seq", 1))
                envelope = session.seal(event_id, seq, canonical_bytes(body))
                m.Session.insert(
                    id=session.session_id.hex(), blob=session.blob
                ).on_conflict_ignore().execute()
                m.Outbox.insert(
                    seq=seq,
                    event_id=str(event_id),
                    session_id=session.session_id.hex(),
                    kind=kind,
                    captured_ms=body["at"],
                    envelope=envelope,
                ).execute()
                self.store.put("next_seq", seq + 1)
                if _local_person is not None:
                    self._cache_entities("person", [_local_person])
        except BaseException:
            # A sealed record that did not commit must never share a nonce with another.
            self._end_session()
            raise
        self._session_count += 1
        return event_id

    def _current_session(self) -> SealingSession:
        expired = (
            self._session_count >= SESSION_MAX_RECORDS
            or time.monotonic() - self._session_started > SESSION_MAX_SECONDS
        )
        if self._session is None or self._session.discarded or expired:
            self._end_session()
            kid = self.store.get("current_kid")
            key = next(k for k in self.store.get("server_keys") if k["kid"] == kid)
            self._session = SealingSession.start(
                self.device_id, self.keys, kid, b64d(key["public_key"]), now_ms()
            )
            self._session_count = 0
            self._session_started = time.monotonic()
        return self._session

    def _end_session(self) -> None:
        if self._session is not None and not self._session.discarded:
            self._session.discard()
        self._session = None

    # Roster ----------------------------------------------------------------------------
    def _cache_entities(self, entity: str, items: list[dict[str, Any]]) -> None:
        rows = [
            {
                "id": f"{entity}:{item['id']}",
                "entity": entity,
                "data": self.vault.encrypt(
                    json.dumps(item, ensure_ascii=False).encode(),
                    f"muster/roster/{entity}:{item['id']}".encode(),
                ),
            }
            for item in items
        ]
        for start in range(0, len(rows), 500):
            self.store.m.Roster.replace_many(rows[start : start + 500]).execute()
        if self._index is not None and entity == "person":
            for item in items:
                self._index.add(item)

    def entities(self, entity: str) -> list[dict[str, Any]]:
        """Decrypt every cached item of one kind (checkpoint, group or person)."""
        m = self.store.m
        return [
            json.loads(self.vault.decrypt(bytes(r.data), f"muster/roster/{r.id}".encode()))
            for r in m.Roster.select().where(m.Roster.entity == entity)
        ]

    def index(self) -> RosterIndex:
        if self._index is None:
            index = RosterIndex()
            for person in self.entities("person"):
                index.add(person)
            self._index = index
        return self._index

    def find(self, query: str, limit: int = 10) -> list[dict[str, Any]]:
        """Find people by name in any script or order, document number, or scanned code."""
        return self.index().find(query, limit)

    def person(self, person_id: str) -> dict[str, Any]:
        found = self.index().people.get(str(person_id))
        if found is None:
            raise NotFound("No such person in the local roster.")
        return found

    # Sync ------------------------------------------------------------------------------
    def sync(
        self,
        *,
        progress: Progress | None = None,
        max_attempts: int = 6,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
    ) -> SyncReport:
        """Push everything queued, then pull roster changes; survive cuts and retry with backoff."""
        report = SyncReport()
        try:
            self.push(
                report,
                progress=progress,
                max_attempts=max_attempts,
                base_delay=base_delay,
                max_delay=max_delay,
            )
            self.pull(report, max_attempts=max_attempts, base_delay=base_delay, max_delay=max_delay)
        except Offline as exc:
            report.offline, report.error = True, str(exc)
        finally:
            report.still_queued = self.queued_count()
            self.store.put(
                "last_sync", {"at": now_ms(), "offline": report.offline, "error": report.error}
            )
        return report

    def queued_count(self) -> int:
        m = self.store.m
        return int(m.Outbox.select().where(m.Outbox.state == QUEUED).count())

    def push(
        self,
        report: SyncReport | None = None,
        *,
        progress: Progress | None = None,
        max_attempts: int = 6,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
    ) -> SyncReport:
        """Send queued envelopes in bounded batches; mark each only on an answer naming it."""
        report = report or SyncReport()
        m = self.store.m
        limit_records = int(self.settings.get("push_max_records", 500))
        limit_bytes = int(self.settings.get("push_max_bytes", 1 << 20)) // 2
        batch_size = min(500, limit_records)
        total = self.queued_count()
        done = failures = passes = 0
        after_seq = 0
        while True:
            entries = list(
                m.Outbox.select()
                .where((m.Outbox.state == QUEUED) & (m.Outbox.seq > after_seq))
                .order_by(m.Outbox.seq)
                .limit(batch_size)
            )
            if not entries:
                # One pass over the queue is done; records told to retry get more passes.
                if self.queued_count() == 0 or passes >= max_attempts:
                    break
                passes += 1
                _backoff(passes, base_delay, max_delay)
                after_seq = 0
                continue
            entries = _fit(entries, limit_bytes)
            sessions = {e.session_id for e in entries}
            blobs = [
                b64e(bytes(s.blob))
                for s in m.Session.select().where(m.Session.id.in_(list(sessions)))
            ]
            body = {
                "clock": now_ms(),
                "sessions": blobs,
                "envelopes": [b64e(bytes(e.envelope)) for e in entries],
            }
            report.attempts += 1
            try:
                answer = self.transport.call("POST", "/sync/push", body)
            except ServerRefused as exc:
                if exc.code == ErrorCode.PAYLOAD_TOO_LARGE and batch_size > 1:
                    batch_size = max(1, min(batch_size, len(entries)) // 2)
                    continue
                if isinstance(exc, DeviceRevoked):
                    self.store.put("revoked", True)
                raise
            except Offline:
                failures += 1
                if failures >= max_attempts:
                    raise
                _backoff(failures, base_delay, max_delay)
                continue
            failures = 0
            counts = self._apply_answers(entries, answer.get("results", []))
            report.pushed += len(entries)
            report.accepted += counts[ACCEPTED]
            report.duplicate += counts[DUPLICATE]
            report.rejected += counts[REJECTED]
            done += counts[ACCEPTED] + counts[DUPLICATE] + counts[REJECTED]
            if progress is not None:
                progress(done, total)
            after_seq = entries[-1].seq
        return report

    def _apply_answers(self, entries: list[Any], results: list[dict[str, Any]]) -> dict[str, int]:
        """Record the server's answers in one transaction; ignore any not naming the record."""
        m = self.store.m
        counts = {ACCEPTED: 0, DUPLICATE: 0, REJECTED: 0, "retry": 0, "unanswered": 0}
        by_index = {r.get("index"): r for r in results if isinstance(r, dict)}
        stamp = now_ms()
        with self.store.atomic():
            for i, entry in enumerate(entries):
                answer = by_index.get(i)
                if (
                    answer is None
                    or answer.get("id") not in (None, entry.event_id)
                    or (answer.get("id") is None and answer.get("status") != REJECTED)
                ):
                    counts["unanswered"] += 1
                    continue
                status = answer.get("status")
                if status in (ACCEPTED, DUPLICATE):
                    m.Outbox.update(state=SENT, answered_ms=stamp, code=None, message=None).where(
                        m.Outbox.seq == entry.seq
                    ).execute()
                    counts[status] += 1
                elif status == REJECTED:
                    m.Outbox.update(
                        state=STATE_REJECTED,
                        answered_ms=stamp,
                        code=str(answer.get("code", ""))[:40],
                        message=str(answer.get("message", ""))[:500],
                    ).where(m.Outbox.seq == entry.seq).execute()
                    counts[REJECTED] += 1
                else:
                    m.Outbox.update(attempts=m.Outbox.attempts + 1).where(
                        m.Outbox.seq == entry.seq
                    ).execute()
                    counts["retry"] += 1
        return counts

    def pull(
        self,
        report: SyncReport | None = None,
        *,
        max_attempts: int = 6,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
    ) -> SyncReport:
        """Download roster changes page by page; the cursor moves with the data it covers."""
        report = report or SyncReport()
        failures = 0
        while True:
            cursor = int(self.store.get("cursor", 0))
            try:
                answer = self.transport.call("GET", f"/sync/pull?cursor={cursor}", None)
            except ServerRefused as exc:
                if exc.code == ErrorCode.CURSOR_RESET:
                    with self.store.atomic():
                        self.store.m.Roster.delete().execute()
                        self.store.put("cursor", 0)
                    self._index = None
                    continue
                raise
            except Offline:
                failures += 1
                if failures >= max_attempts:
                    raise
                _backoff(failures, base_delay, max_delay)
                continue
            page = json.loads(open_from_server(self.keys, self.device_id, b64d(answer["sealed"])))
            with self.store.atomic():
                self._cache_entities("checkpoint", page["checkpoints"])
                self._cache_entities("group", page["groups"])
                self._cache_entities("person", page["people"])
                self.store.put("operation", page["operation"])
                self.store.put("server_keys", page["server_keys"])
                self.store.put("current_kid", page["current_kid"])
                self.store.put("cursor", int(answer["cursor"]))
            report.pulled_people += len(page["people"])
            if not answer.get("more"):
                return report

    # Status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Queued, sent and rejected counts, rejected records with reasons, last sync, cursor."""
        m = self.store.m
        counts = {
            s: int(m.Outbox.select().where(m.Outbox.state == s).count())
            for s in (QUEUED, SENT, STATE_REJECTED)
        }
        rejected = [
            {
                "event_id": r.event_id,
                "seq": r.seq,
                "kind": r.kind,
                "code": r.code,
                "message": r.message,
            }
            for r in m.Outbox.select()
            .where(m.Outbox.state == STATE_REJECTED)
            .order_by(m.Outbox.seq)
        ]
        return {
            "device_id": str(self.device_id),
            "operation": self.operation,
            "counts": counts,
            "rejected": rejected,
            "next_seq": self.store.get("next_seq"),
            "cursor": self.store.get("cursor"),
            "last_sync": self.store.get("last_sync"),
            "revoked": bool(self.store.get("revoked", False)),
        }

    def outbox(self, state: str | None = None) -> list[dict[str, Any]]:
        """Each record with its state (queued, sent, rejected) and reason."""
        m = self.store.m
        query = m.Outbox.select().order_by(m.Outbox.seq)
        if state:
            query = query.where(m.Outbox.state == state)
        return [
            {
                "seq": r.seq,
                "event_id": r.event_id,
                "kind": r.kind,
                "captured_ms": r.captured_ms,
                "state": r.state,
                "code": r.code,
                "message": r.message,
            }
            for r in query
        ]


def _fit(entries: list[Any], limit_bytes: int) -> list[Any]:
    """Keep a prefix of ``entries`` whose encoded size stays under ``limit_bytes``."""
    out: list[Any] = []
    size = 0
    for e in entries:
        size += len(e.envelope) * 4 // 3 + 4
        if out and size > limit_bytes:
            break
        out.append(e)
    return out


def _backoff(failures: int, base: float, cap: float) -> None:
    """Exponential backoff with full jitter."""
    time.sleep(random.uniform(0, min(cap, base * (2 ** (failures - 1)))))
