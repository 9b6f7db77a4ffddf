"""One-time enrolment codes, enrolling a device with its own keys, and revoking it."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from typing import Any

from peewee import IntegrityError

from server import audit
from server.db import write_transaction
from server.errors import MusterError, NotFound
from server.models import Device, EnrolmentCode, Operation, StaffUser, utcnow
from sync.crypto import b64d
from sync.protocol import ErrorCode

# Crockford base32 without I, L, O, U: easy to read aloud and type on a phone.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 10  # 50 bits: out of reach of guessing within a code's lifetime and rate limits


def normalise_code(code: str) -> str:
    """Upper-case, drop separators and map look-alikes, so 'abcd-efgh-jk' equals 'ABCDEFGHJK'."""
    text = code.upper().replace("-", "").replace(" ", "")
    return text.translate(str.maketrans("OIL", "011"))


def _hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def format_code(raw: str) -> str:
    """Group a code as XXXX-XXXX-XX for display."""
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def create_code(
    op: Operation, *, ttl_minutes: float, actor: StaffUser | None, label: str = ""
) -> tuple[str, EnrolmentCode]:
    """Make a one-time enrolment code for ``op``; return it (shown once) and its row."""
    if op.status == "closed":
        raise MusterError("This operation is closed.", code=ErrorCode.CONFLICT)
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(CODE_LENGTH))
    with write_transaction():
        row = EnrolmentCode.create(
            operation=op,
            code_hash=_hash(raw),
            label=label[:100],
            created_by=actor,
            expires_at=utcnow() + dt.timedelta(minutes=ttl_minutes),
        )
        audit.record(
            audit.actor_of(actor), "enrolment.create", operation=op.id, target=f"enrolment:{row.id}"
        )
    return format_code(raw), row


def enrol(data: dict[str, Any], *, server_time_ms: int) -> Device:
    """Spend a one-time code and register the device's public keys; return the device.

    The code is marked used in the same transaction with a conditional update, so two
    devices racing with one code cannot both enrol.
    """
    signing = b64d(data["signing_key"])
    encryption = b64d(data["encryption_key"])
    now = utcnow()
    with write_transaction():
        row = EnrolmentCode.get_or_none(EnrolmentCode.code_hash == _hash(data["code"]))
        if row is None or row.used_at is not None or row.expires_at <= now:
            raise MusterError(
                "This enrolment code is unknown, used or expired; ask for a new one.",
                code=ErrorCode.ENROLMENT_CODE_INVALID,
            )
        if row.operation.status == "closed":
            raise MusterError("This operation is closed.", code=ErrorCode.ENROLMENT_CODE_INVALID)
        try:
            device = Device.create(
                id=uuid.uuid4(),
                operation=row.operation_id,
                label=(data.get("label") or row.label)[:100],
                signing_key=signing,
                encryption_key=encryption,
                enrolled_by=row.created_by_id,
                last_seen_at=now,
                skew_ms=data["clock"] - server_time_ms,
            )
        except IntegrityError as exc:  # pragma: no cover - uuid4 collision
            raise MusterError("Enrolment failed; try again.", code=ErrorCode.CONFLICT) from exc
        spent = (
            EnrolmentCode.update(used_at=now, device=device)
            .where((EnrolmentCode.id == row.id) & EnrolmentCode.used_at.is_null())
            .execute()
        )
        if spent != 1:
            raise MusterError(
                "This enrolment code was just used.", code=ErrorCode.ENROLMENT_CODE_INVALID
            )
        audit.record(
            "device",
            "device.enrol",
            operation=row.operation_id,
            target=f"device:{device.id}",
            details={"enrolment": row.id},
        )
    return device


def revoke(device: Device, *, actor: StaffUser | None, reason: str = "") -> Device:
    """Revoke a device: its very next request is refused, and what it sends is quarantined."""
    with write_transaction():
        Device.update(revoked_at=utcnow()).where(
            (Device.id == device.id) & Device.revoked_at.is_null()
        ).execute()
        audit.record(
            audit.actor_of(actor),
            "device.revoke",
            operation=device.operation_id,
            target=f"device:{device.id}",
            reason=reason,
        )
    return Device.get_by_id(device.id)


def find_device(op: Operation, device_id: uuid.UUID) -> Device:
    device = Device.get_or_none((Device.id == device_id) & (Device.operation == op))
    if device is None:
        raise NotFound("No such device in this operation.")
    return device
