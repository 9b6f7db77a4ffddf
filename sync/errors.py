"""The device package's exceptions: one root, a small tree.

SyncError
├── NotEnrolled          the store has no enrolment yet
├── WrongPassphrase      the passphrase does not open the store
├── NotFound             no such person, checkpoint, group or event locally
├── InvalidEvent         the event would not validate (nothing was recorded)
└── ServerRefused        the server answered with an error body
    ├── ProtocolMismatch  app and server speak different protocol versions
    ├── DeviceRevoked     this device was revoked by an administrator
    └── EnrolmentRefused  the enrolment code is unknown, used or expired
Offline                  no connection (or only errors worth retrying) right now
"""

from __future__ import annotations

from typing import Any


class SyncError(Exception):
    """Root of every error the device package raises on purpose."""


class NotEnrolled(SyncError):
    pass


class WrongPassphrase(SyncError):
    pass


class NotFound(SyncError):
    pass


class InvalidEvent(SyncError):
    def __init__(self, message: str, fields: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}


class Offline(SyncError):
    """No usable connection; everything recorded stays queued."""


class ServerRefused(SyncError):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


class ProtocolMismatch(ServerRefused):
    pass


class DeviceRevoked(ServerRefused):
    pass


class EnrolmentRefused(ServerRefused):
    pass
