"""Muster's device side: offline capture, sealed envelopes, the outbox, push and pull.

The server imports the shared definitions from here (protocol constants, event schemas,
envelope format); this package never imports the server, and needs no Flask.
"""

from __future__ import annotations

from sync.crypto import DeviceKeys, SealingSession, Vault
from sync.device import Device, SyncReport
from sync.errors import (
    DeviceRevoked,
    EnrolmentRefused,
    InvalidEvent,
    NotEnrolled,
    NotFound,
    Offline,
    ProtocolMismatch,
    ServerRefused,
    SyncError,
    WrongPassphrase,
)
from sync.events import EVENT_SCHEMA_VERSION, KINDS
from sync.protocol import PROTOCOL_VERSION, ErrorCode
from sync.transport import Transport

__all__ = [
    "EVENT_SCHEMA_VERSION",
    "KINDS",
    "PROTOCOL_VERSION",
    "Device",
    "DeviceKeys",
    "DeviceRevoked",
    "EnrolmentRefused",
    "ErrorCode",
    "InvalidEvent",
    "NotEnrolled",
    "NotFound",
    "Offline",
    "ProtocolMismatch",
    "SealingSession",
    "ServerRefused",
    "SyncError",
    "SyncReport",
    "Transport",
    "Vault",
    "WrongPassphrase",
]
