"""Figure 4: bytes on the wire per event in a typical push batch, after sealing and gzip.

A typical batch is what ``Device.push`` sends: 500 sealed records (mostly check-ins of roster
people, some headcounts and flags), the capture-session blob they need, JSON, gzip level 6.
Sealed records are AES-GCM ciphertext, so gzip saves little on them; the figure is exact
bytes, not an estimate. The request line and headers (signature, timestamp, device id) are
counted separately as they are sent by httpx.

Usage: python -m bench.wire [--quick|--full]
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from bench.common import (
    DEVICE_BATCH,
    PUSH_PATH,
    Operation,
    RawDevice,
    arguments,
    emit,
    event_bodies,
    median,
    size_of,
)
from sync.crypto import DeviceKeys, ServerKey, sign_request

BATCHES = {"quick": 4, "default": 20, "full": 100}


def _headers_size(device: RawDevice, raw: bytes) -> int:
    """Bytes of the HTTP/1.1 request line and headers httpx sends with one push."""
    now = 1_700_000_000_000
    request = httpx.Request(
        "POST",
        "http://127.0.0.1:8000" + PUSH_PATH,
        content=raw,
        headers={
            "Muster-Protocol": "1",
            "Muster-Device": str(device.device_id),
            "Muster-Timestamp": str(now),
            "Muster-Signature": sign_request(
                device.keys, "POST", PUSH_PATH, device.device_id, now, raw
            ),
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
        },
    )
    head = f"POST {PUSH_PATH} HTTP/1.1\r\n".encode()
    head += b"".join(k + b": " + v + b"\r\n" for k, v in request.headers.raw) + b"\r\n"
    return len(head)


def main(argv: list[str] | None = None) -> int:
    size = size_of(
        arguments(
            "bench.wire",
            __doc__,
            quick=f"{BATCHES['quick']} batches of {DEVICE_BATCH} events",
            full=f"{BATCHES['full']} batches (default: {BATCHES['default']})",
        ).parse_args(argv)
    )
    n_batches = BATCHES[size]
    server_key = ServerKey.generate("k1")
    device = RawDevice(
        "http://127.0.0.1:8000", uuid.uuid4(), DeviceKeys.generate(), "k1", server_key.public_raw, 1
    )
    op = Operation(1, [1, 2, 3], list(range(1, 401)), [str(uuid.uuid4()) for _ in range(20_000)])
    batches = device.seal_batches(event_bodies(op, DEVICE_BATCH * n_batches, "olena"))
    per_event = [len(b) / DEVICE_BATCH for b in batches]
    import gzip

    plain = [len(gzip.decompress(b)) / DEVICE_BATCH for b in batches]
    body: dict[str, Any] = json.loads(gzip.decompress(batches[0]))
    envelope_b64 = median(len(e) for e in body["envelopes"])
    head = median(_headers_size(device, b) for b in batches)
    params = {
        "batch": DEVICE_BATCH,
        "batches": n_batches,
        "median_of": n_batches,
        "mix": "~95% check-ins, 3% headcounts, 2% flags",
        "gzip_level": 6,
        "size": size,
    }
    emit(
        "wire.bytes_per_event",
        median(per_event),
        "bytes",
        **params,
        target="<= 250",
        uncompressed_bytes_per_event=round(median(plain), 1),
        envelope_base64_bytes=envelope_b64,
    )
    emit(
        "wire.bytes_per_event_with_headers",
        median(per_event) + head / DEVICE_BATCH,
        "bytes",
        **params,
        request_headers_bytes=head,
    )
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
