"""HTTP to the server: signed, versioned, compressed requests and typed error answers."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from typing import Any

import httpx

from sync.crypto import DeviceKeys, sign_request
from sync.errors import (
    DeviceRevoked,
    EnrolmentRefused,
    Offline,
    ProtocolMismatch,
    ServerRefused,
)
from sync.protocol import (
    HEADER_DEVICE,
    HEADER_PROTOCOL,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    PROTOCOL_VERSION,
    ErrorCode,
)

API = "/api/v1"
#: Statuses after which the same request may succeed later.
RETRYABLE_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class Retryable(Offline):
    """The server could not take the request now (busy, restarting); try again later."""


class Transport:
    """Sends requests for one device. ``keys`` and ``device_id`` are None before enrolment."""

    def __init__(
        self,
        base_url: str,
        *,
        device_id: uuid.UUID | None = None,
        keys: DeviceKeys | None = None,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.device_id = device_id
        self.keys = keys
        self.client = client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def call(
        self, method: str, path: str, body: Any = None, *, compress: bool = True
    ) -> dict[str, Any]:
        """Send one request; return the JSON answer or raise a typed error."""
        raw = b""
        headers = {HEADER_PROTOCOL: str(PROTOCOL_VERSION)}
        if body is not None:
            raw = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
            if compress:
                raw = gzip.compress(raw, compresslevel=6, mtime=0)
                headers["Content-Encoding"] = "gzip"
        full_path = API + path
        if self.keys is not None and self.device_id is not None:
            now = int(time.time() * 1000)
            headers[HEADER_DEVICE] = str(self.device_id)
            headers[HEADER_TIMESTAMP] = str(now)
            headers[HEADER_SIGNATURE] = sign_request(
                self.keys, method, full_path, self.device_id, now, raw
            )
        try:
            resp = self.client.request(
                method, self.base_url + full_path, content=raw, headers=headers
            )
        except httpx.HTTPError as exc:
            raise Offline(f"No connection to the server ({type(exc).__name__}).") from exc
        return self._answer(resp)

    def _answer(self, resp: httpx.Response) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError:
            data = None
        if 200 <= resp.status_code < 300 and isinstance(data, dict):
            return data
        if resp.status_code in RETRYABLE_STATUSES:
            raise Retryable(f"The server is busy (HTTP {resp.status_code}); will retry.")
        error = (data or {}).get("error") if isinstance(data, dict) else None
        if not isinstance(error, dict):
            raise Retryable(f"Unexpected answer from the server (HTTP {resp.status_code}).")
        code = str(error.get("code", ""))
        args = (resp.status_code, code, str(error.get("message", "")), error.get("details"))
        if code == ErrorCode.PROTOCOL_VERSION_UNSUPPORTED:
            raise ProtocolMismatch(*args)
        if code == ErrorCode.DEVICE_REVOKED:
            raise DeviceRevoked(*args)
        if code == ErrorCode.ENROLMENT_CODE_INVALID:
            raise EnrolmentRefused(*args)
        raise ServerRefused(*args)
