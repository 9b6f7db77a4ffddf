"""Authenticate a device's request: protocol version, device id, Ed25519 request signature."""

from __future__ import annotations

import uuid

from flask import Request

from server.errors import MusterError
from server.models import Device
from sync.crypto import CryptoError, verify_request
from sync.protocol import (
    HEADER_DEVICE,
    HEADER_PROTOCOL,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    ErrorCode,
)


def check_protocol(request: Request) -> int:
    """Demand a protocol version this server speaks; answer 426 with what to do otherwise."""
    raw = request.headers.get(HEADER_PROTOCOL, "")
    try:
        version = int(raw)
    except ValueError:
        version = -1
    if MIN_PROTOCOL_VERSION <= version <= PROTOCOL_VERSION:
        return version
    if version > PROTOCOL_VERSION:
        action = "This server is older than the app: ask the administrator to upgrade the server."
    else:
        action = "This app is too old for the server: update the Muster app, then sync again."
    raise MusterError(
        f"Protocol version {raw or 'missing'} is not supported. {action}",
        code=ErrorCode.PROTOCOL_VERSION_UNSUPPORTED,
        details={
            "supported": {"min": MIN_PROTOCOL_VERSION, "max": PROTOCOL_VERSION},
            "header": HEADER_PROTOCOL,
        },
    )


def signed_path(request: Request) -> str:
    """The path and query exactly as the device signed them."""
    query = request.query_string.decode("latin-1")
    return request.path + ("?" + query if query else "")


def authenticate(request: Request, body: bytes) -> Device:
    """Return the enrolled device whose key signed this request (revoked or not)."""
    try:
        device_id = uuid.UUID(request.headers.get(HEADER_DEVICE, ""))
        timestamp = int(request.headers.get(HEADER_TIMESTAMP, ""))
    except ValueError as exc:
        raise MusterError(
            f"Send {HEADER_DEVICE} and {HEADER_TIMESTAMP} headers.",
            code=ErrorCode.DEVICE_UNKNOWN,
        ) from exc
    device = Device.get_or_none(Device.id == device_id)
    if device is None:
        raise MusterError("This device is not enrolled.", code=ErrorCode.DEVICE_UNKNOWN)
    try:
        verify_request(
            bytes(device.signing_key),
            request.headers.get(HEADER_SIGNATURE, ""),
            request.method,
            signed_path(request),
            device_id,
            timestamp,
            body,
        )
    except CryptoError as exc:
        raise MusterError(
            "The request signature does not verify.", code=ErrorCode.SIGNATURE_INVALID
        ) from exc
    return device


def device_clock(request: Request) -> int:
    """The device clock (ms) the request was signed at."""
    return int(request.headers.get(HEADER_TIMESTAMP, "0"))
