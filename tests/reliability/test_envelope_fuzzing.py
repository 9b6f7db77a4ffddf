"""Fuzz the sync endpoints: mutated envelopes are never accepted, nothing answers 5xx."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.db import database
from server.models import Event
from sync import Device
from sync.crypto import b64e, sign_request
from sync.protocol import HEADER_DEVICE, HEADER_PROTOCOL, HEADER_SIGNATURE, HEADER_TIMESTAMP
from tests.reliability.helpers import SOAK
from tests.sync.helpers import enrol_device

EXAMPLES = 5000 if SOAK else 300
pytestmark = pytest.mark.soak
PUSH = "/api/v1/sync/push"
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
WRONG_TYPES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.lists(st.integers())
)


def _events(app: Flask) -> int:
    with app.app_context(), database.connection_context():
        return int(Event.select().count())


def _signed_post(device: Device, client: FlaskClient, raw: bytes, gzipped: bool = False) -> Any:
    """POST ``raw`` to push with a valid signature, so it reaches the body and envelope checks."""
    if gzipped:
        raw = gzip.compress(raw, mtime=0)
    now = int(time.time() * 1000)
    headers = {
        HEADER_PROTOCOL: "1",
        HEADER_DEVICE: str(device.device_id),
        HEADER_TIMESTAMP: str(now),
        HEADER_SIGNATURE: sign_request(device.keys, "POST", PUSH, device.device_id, now, raw),
        "Content-Type": "application/json",
    }
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    return client.post(PUSH, data=raw, headers=headers)


def _unthrottled(app: Flask) -> None:
    # Hundreds of requests from one device in seconds are the point here, not a flood.
    app.extensions["muster.ratelimit"]["sync"] = None
    app.extensions["muster.ratelimit"]["enrol"] = None


def _mutate(data: st.DataObject, original: bytes, others: list[bytes]) -> bytes:
    """One byte-level mutation of an envelope."""
    kind = data.draw(st.sampled_from(["flip", "truncate", "extend", "swap", "overwrite", "splice"]))
    out = bytearray(original)
    if kind == "flip":
        i = data.draw(st.integers(0, len(out) - 1))
        out[i] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "truncate":
        out = out[: data.draw(st.integers(0, len(out) - 1))]
    elif kind == "extend":
        out += data.draw(st.binary(min_size=1, max_size=64))
    elif kind == "swap":
        i, j = data.draw(st.integers(0, len(out) - 1)), data.draw(st.integers(0, len(out) - 1))
        out[i], out[j] = out[j], out[i]
    elif kind == "overwrite":
        i = data.draw(st.integers(0, len(out) - 1))
        chunk = data.draw(st.binary(min_size=1, max_size=32))
        out[i : i + len(chunk)] = chunk
    else:
        other = data.draw(st.sampled_from(others))
        cut = data.draw(st.integers(1, min(len(out), len(other)) - 1))
        out = out[:cut] + bytearray(other[cut:])
    return bytes(out)


def test_mutated_envelopes_and_push_bodies_are_never_accepted_and_never_5xx(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    _unthrottled(app)
    device = enrol_device(app, client, admin_headers, operation["id"], tmp_path / "d.db")
    cp, group = operation["checkpoints"][0]["id"], operation["group"]["id"]
    for n in range(4):
        device.headcount(checkpoint=cp, group=group, count=n)
    device.walkin({"full_name": "Walk In"}, checkpoint=cp)
    m = device.store.m
    envelopes = [bytes(e.envelope) for e in m.Outbox.select().order_by(m.Outbox.seq)]
    sessions = [bytes(s.blob) for s in m.Session.select()]
    # The originals are stored first, so any "accepted" below can only be a mutant's.
    assert device.push().accepted == 5
    stored = _events(app)
    statuses: dict[int, int] = {}

    @FUZZ_SETTINGS
    @given(data=st.data())
    def mutate(data: st.DataObject) -> None:
        original = data.draw(st.sampled_from(envelopes))
        encoding = data.draw(st.sampled_from(["base64"] * 6 + ["text", "wrong_type"]))
        item: Any
        if encoding == "base64":
            item = b64e(_mutate(data, original, envelopes))
        elif encoding == "text":
            item = data.draw(st.text(max_size=200))
        else:
            item = data.draw(WRONG_TYPES)
        batch = data.draw(st.lists(st.sampled_from([b64e(e) for e in envelopes]), max_size=3))
        batch.insert(data.draw(st.integers(0, len(batch))), item)
        body: dict[str, Any] = {"clock": int(time.time() * 1000), "envelopes": batch}
        session_kind = data.draw(st.sampled_from(["ok"] * 5 + ["none", "mutated", "wrong_type"]))
        if session_kind == "ok":
            body["sessions"] = [b64e(s) for s in sessions]
        elif session_kind == "mutated":
            body["sessions"] = [b64e(_mutate(data, sessions[0], sessions))]
        elif session_kind == "wrong_type":
            body["sessions"] = data.draw(WRONG_TYPES)
        if data.draw(st.integers(0, 5)) == 0:
            body[data.draw(st.sampled_from(["clock", "envelopes", "extra"]))] = data.draw(
                WRONG_TYPES
            )
        resp = _signed_post(device, client, json.dumps(body).encode(), data.draw(st.booleans()))
        statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        assert resp.status_code < 500
        if resp.status_code == 200:
            results = resp.get_json()["results"]
            assert "accepted" not in {r["status"] for r in results}
        else:
            assert set(resp.get_json()["error"]) == {"code", "message", "details"}

    mutate()
    assert _events(app) == stored
    assert statuses.get(429, 0) == 0
    print(f"\nenvelope fuzzing: {sum(statuses.values())} mutants, answers {statuses}")


def test_random_garbage_to_every_sync_endpoint_never_gets_a_5xx(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    _unthrottled(app)
    device = enrol_device(app, client, admin_headers, operation["id"], tmp_path / "d.db")
    stored = _events(app)
    statuses: dict[int, int] = {}
    # Header values travel without line breaks or other control characters (HTTP forbids them).
    text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)

    @FUZZ_SETTINGS
    @given(
        method_path=st.sampled_from(
            [
                ("POST", "/api/v1/sync/enrol"),
                ("POST", PUSH),
                ("POST", PUSH),
                ("GET", "/api/v1/sync/pull"),
                ("GET", "/api/v1/sync/pull"),
                ("PUT", PUSH),
                ("DELETE", "/api/v1/sync/pull"),
            ]
        ),
        body=st.one_of(st.binary(max_size=400), text.map(str.encode)),
        protocol=st.one_of(st.just("1"), st.sampled_from(["0", "2", "", "1.0", "-1"]), text),
        who=st.one_of(st.just(str(device.device_id)), text),
        stamp=st.one_of(st.just(str(int(time.time() * 1000))), text),
        signature=text,
        gzipped=st.booleans(),
        sign=st.booleans(),
        query=st.one_of(st.just(""), text.map(lambda q: "cursor=" + quote(q, safe=""))),
    )
    def garbage(
        method_path: tuple[str, str],
        body: bytes,
        protocol: str,
        who: str,
        stamp: str,
        signature: str,
        gzipped: bool,
        sign: bool,
        query: str,
    ) -> None:
        method, path = method_path
        headers = {HEADER_PROTOCOL: protocol, HEADER_DEVICE: who, HEADER_TIMESTAMP: stamp}
        headers = {k: v.encode("utf-8", "replace").decode("latin-1") for k, v in headers.items()}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        full = path + ("?" + query if query else "")
        if sign and stamp.isascii() and stamp.isdigit():
            headers[HEADER_SIGNATURE] = sign_request(
                device.keys, method, full, device.device_id, int(stamp), body
            )
        else:
            headers[HEADER_SIGNATURE] = signature.encode("utf-8", "replace").decode("latin-1")
        resp = client.open(full, method=method, data=body, headers=headers)
        statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
        assert resp.status_code < 500
        if resp.status_code >= 400:
            assert set(resp.get_json()["error"]) == {"code", "message", "details"}

    garbage()
    assert _events(app) == stored
    print(f"\nsync garbage: {sum(statuses.values())} requests, answers {statuses}")
