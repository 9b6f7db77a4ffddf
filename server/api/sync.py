"""The device side of the API: enrol, push, pull. Every request carries the protocol version."""

from __future__ import annotations

import gzip
import json
import time
import zlib
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from server.api.openapi import api_doc
from server.devices import enrolment, requests
from server.errors import MusterError
from server.ingest import service as ingest
from server.ingest.sessions import SessionCache, SessionResolver
from server.models import Device
from server.pull.service import build_page
from server.setup import get_keyring
from sync.crypto import b64d, b64e, seal_to_device
from sync.fastload import compile_loader
from sync.messages import EnrolRequestSchema, PushRequestSchema
from sync.protocol import HEADER_PROTOCOL, PROTOCOL_VERSION, ErrorCode

bp = Blueprint("sync", __name__)
enrol_schema = EnrolRequestSchema()
#: A push's outer JSON (500 envelopes a batch): marshmallow's verdict, compiled (sync.fastload).
load_push = compile_loader(PushRequestSchema())


def _now_ms() -> int:
    return int(time.time() * 1000)


@bp.before_request
def _protocol() -> None:
    requests.check_protocol(request)


@bp.after_request
def _protocol_header(resp: Response) -> Response:
    resp.headers[HEADER_PROTOCOL] = str(PROTOCOL_VERSION)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _session_cache() -> SessionCache:
    cache = current_app.extensions.get("muster.sessions")
    if cache is None:
        cache = current_app.extensions["muster.sessions"] = SessionCache()
    return cache


def _body() -> bytes:
    """The request body as sent (signed bytes) and its decoded JSON source."""
    return request.get_data(cache=True)


def _json_of(raw: bytes) -> Any:
    """Decode a possibly gzip-compressed JSON body, refusing bombs past PUSH_MAX_BYTES."""
    limit = int(current_app.config["PUSH_MAX_BYTES"])
    if request.headers.get("Content-Encoding", "").lower() == "gzip":
        try:
            decoder = zlib.decompressobj(wbits=31)
            data = decoder.decompress(raw, limit + 1)
            if len(data) > limit or decoder.unconsumed_tail:
                raise MusterError(
                    "The batch is too large; send fewer records.",
                    code=ErrorCode.PAYLOAD_TOO_LARGE,
                    details={"max_bytes": limit},
                )
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise MusterError("The body is not valid gzip.", code=ErrorCode.BAD_REQUEST) from exc
    else:
        data = raw
    if len(data) > limit:
        raise MusterError(
            "The batch is too large; send fewer records.",
            code=ErrorCode.PAYLOAD_TOO_LARGE,
            details={"max_bytes": limit},
        )
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MusterError("The body is not valid JSON.", code=ErrorCode.BAD_REQUEST) from exc


@bp.post("/sync/enrol")
@api_doc("Device enrolment with a one-time code", body=EnrolRequestSchema, status=201)
def enrol() -> tuple[Response, int]:
    """Spend a one-time code; register the device's public keys; return what it must pin."""
    data = enrol_schema.load(_json_of(_body()))
    b64d(data["signing_key"]), b64d(data["encryption_key"])
    device = enrolment.enrol(data, server_time_ms=_now_ms())
    ring = get_keyring()
    op = device.operation
    return jsonify(
        {
            "device_id": str(device.id),
            "operation": {
                "id": op.id,
                "name": op.name,
                "timezone": op.timezone,
                "starts_at": op.starts_at.isoformat() + "Z",
                "status": op.status,
            },
            "server_keys": ring.public_keys(),
            "current_kid": ring.current_kid,
            "settings": {
                "push_max_records": current_app.config["PUSH_MAX_RECORDS"],
                "push_max_bytes": current_app.config["PUSH_MAX_BYTES"],
                "pull_page_size": current_app.config["PULL_PAGE_SIZE"],
            },
            "server_time": _now_ms(),
        }
    ), 201


def _device(raw: bytes) -> Device:
    device = requests.authenticate(request, raw)
    return device


@bp.post("/sync/push")
@api_doc("Push sealed records; one answer per record", body=PushRequestSchema)
def push() -> Response:
    """Take a batch of sealed records; answer each one; acknowledge only what is committed."""
    raw = _body()
    device = _device(raw)
    body = _json_of(raw)
    if device.revoked_at is not None:
        envelopes = body.get("envelopes") if isinstance(body, dict) else None
        if isinstance(envelopes, list):
            kept = ingest.quarantine_all(
                device,
                [e for e in envelopes if isinstance(e, str)][:10000],
                ErrorCode.DEVICE_REVOKED,
                "Sent by a revoked device.",
            )
        else:
            kept = 0
        raise MusterError(
            "This device has been revoked; its records are kept for staff.",
            code=ErrorCode.DEVICE_REVOKED,
            details={"quarantined": kept},
        )
    data = load_push(body)
    max_records = int(current_app.config["PUSH_MAX_RECORDS"])
    if len(data["envelopes"]) > max_records:
        raise MusterError(
            "Too many records in one batch; halve it.",
            code=ErrorCode.PAYLOAD_TOO_LARGE,
            details={"max_records": max_records},
        )
    server_ms = _now_ms()
    ring = get_keyring()
    resolver = SessionResolver(device, ring, _session_cache())
    for item in data["sessions"]:
        resolver.offer(b64d(item))
    ctx = ingest.Context(
        device=device,
        operation_start=device.operation.starts_at,
        server_ms=server_ms,
        device_clock_ms=requests.device_clock(request),
        skew_bound_ms=int(current_app.config["CLOCK_SKEW_BOUND_SECONDS"]) * 1000,
    )
    results = ingest.ingest(ctx, resolver, data["envelopes"])
    return jsonify(
        {
            "results": [r.as_dict() for r in results],
            "server_time": _now_ms(),
            "high_seq": device.high_seq,
            "contiguous_seq": device.contiguous_seq,
            "current_kid": ring.current_kid,
        }
    )


@bp.get("/sync/pull")
@api_doc(
    "Pull the next sealed page of changes after a cursor",
    query={"cursor": "server-assigned cursor", "limit": "page size"},
)
def pull() -> Response:
    """The next page of roster changes after ``cursor``, sealed to the requesting device."""
    device = _device(_body())
    if device.revoked_at is not None:
        raise MusterError("This device has been revoked.", code=ErrorCode.DEVICE_REVOKED)
    try:
        cursor = int(request.args.get("cursor", "0"))
        limit = int(request.args.get("limit", current_app.config["PULL_PAGE_SIZE"]))
    except ValueError as exc:
        raise MusterError("cursor and limit are integers.", code=ErrorCode.BAD_REQUEST) from exc
    limit = max(1, min(limit, int(current_app.config["PULL_PAGE_SIZE"])))
    result = build_page(device, cursor, limit)
    ring = get_keyring()
    result["page"]["server_keys"] = ring.public_keys()
    result["page"]["current_kid"] = ring.current_kid
    plaintext = json.dumps(result["page"], ensure_ascii=False, separators=(",", ":")).encode()
    sealed = seal_to_device(bytes(device.encryption_key), device.id, plaintext)
    Device.update(
        last_seen_at=ingest.utcnow(), skew_ms=requests.device_clock(request) - _now_ms()
    ).where(Device.id == device.id).execute()
    return jsonify(
        {
            "cursor": result["cursor"],
            "more": result["more"],
            "sealed": b64e(sealed),
            "server_time": _now_ms(),
        }
    )
