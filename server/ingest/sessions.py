"""Open devices' capture sessions once and remember them, so records cost symmetric crypto only."""

from __future__ import annotations

import threading
from collections import OrderedDict

from server.crypto.keyring import Keyring
from server.models import CaptureSession, Device
from sync.crypto import CryptoError, SessionInfo, open_session, parse_session_header
from sync.protocol import ErrorCode


class SessionCache:
    """A bounded, thread-safe map from session id to its opened :class:`SessionInfo`."""

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._items: OrderedDict[bytes, SessionInfo] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: bytes) -> SessionInfo | None:
        with self._lock:
            info = self._items.get(session_id)
            if info is not None:
                self._items.move_to_end(session_id)
            return info

    def put(self, info: SessionInfo) -> None:
        with self._lock:
            self._items[info.session_id] = info
            self._items.move_to_end(info.session_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)


class SessionResolver:
    """Resolve the sessions one push refers to: from the batch, the cache, or storage."""

    def __init__(self, device: Device, keyring: Keyring, cache: SessionCache) -> None:
        self.device = device
        self.keyring = keyring
        self.cache = cache
        self.blobs: dict[bytes, bytes] = {}
        self.errors: dict[bytes, ErrorCode] = {}
        self.opened: dict[bytes, SessionInfo] = {}

    def offer(self, blob: bytes) -> None:
        """Take a session blob sent with the batch (bad ones are remembered as errors)."""
        try:
            session_id, device_id, _created, _kid = parse_session_header(blob)
        except CryptoError:
            return
        if device_id != self.device.id:
            self.errors[session_id] = ErrorCode.ENVELOPE_UNAUTHENTIC
            return
        self.blobs.setdefault(session_id, blob)

    def resolve(self, session_id: bytes) -> SessionInfo | ErrorCode:
        """The opened session, or the error code that refuses records sealed under it."""
        if session_id in self.opened:
            return self.opened[session_id]
        if session_id in self.errors:
            return self.errors[session_id]
        cached = self.cache.get(session_id)
        if cached is not None and cached.device_id == self.device.id:
            self.opened[session_id] = cached
            return cached
        blob = self.blobs.get(session_id)
        if blob is None:
            stored = CaptureSession.get_or_none(
                (CaptureSession.id == session_id.hex()) & (CaptureSession.device == self.device)
            )
            blob = bytes(stored.blob) if stored is not None else None
        if blob is None:
            self.errors[session_id] = ErrorCode.SESSION_UNKNOWN
            return ErrorCode.SESSION_UNKNOWN
        _sid, _dev, _created, kid = parse_session_header(blob)
        private = self.keyring.hpke.get(kid)
        if private is None:
            self.errors[session_id] = ErrorCode.KEY_UNKNOWN
            return ErrorCode.KEY_UNKNOWN
        try:
            info = open_session(blob, bytes(self.device.signing_key), private)
        except CryptoError:
            self.errors[session_id] = ErrorCode.ENVELOPE_UNAUTHENTIC
            return ErrorCode.ENVELOPE_UNAUTHENTIC
        self.cache.put(info)
        self.opened[session_id] = info
        self.blobs[session_id] = blob
        return info
