"""Push and pull over the real application: per-record answers, bad input, versions, cursors."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.db import database
from server.models import Device as DeviceRow
from server.models import Event, QuarantinedRecord
from sync import Device, ProtocolMismatch, ServerRefused
from sync.crypto import SealingSession, b64d, b64e, sign_request
from sync.events import canonical_bytes
from sync.protocol import HEADER_DEVICE, HEADER_PROTOCOL, HEADER_SIGNATURE, HEADER_TIMESTAMP
from tests.sync.helpers import enrol_device


@pytest.fixture
def device(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> Device:
    d = enrol_device(app, client, admin_headers, operation["id"], tmp_path / "d.db")
    d.pull()
    return d


def _cp(operation: dict[str, Any]) -> int:
    return int(operation["checkpoints"][0]["id"])


def _push_raw(device: Device, sessions: list[bytes], envelopes: list[bytes]) -> dict[str, Any]:
    body = {
        "clock": int(time.time() * 1000),
        "sessions": [b64e(s) for s in sessions],
        "envelopes": [b64e(e) for e in envelopes],
    }
    return device.transport.call("POST", "/sync/push", body)


def _session(device: Device) -> SealingSession:
    kid = device.store.get("current_kid")
    key = next(k for k in device.store.get("server_keys") if k["kid"] == kid)
    return SealingSession.start(
        device.device_id, device.keys, kid, b64d(key["public_key"]), int(time.time() * 1000)
    )


def _body(device: Device, operation: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {
        "v": 1,
        "kind": "headcount",
        "op": operation["id"],
        "at": int(time.time() * 1000),
        "author": "test",
        "checkpoint": _cp(operation),
        "group": operation["group"]["id"],
        "count": 50,
    }
    body.update(extra)
    return body


def _events(app: Flask) -> int:
    with app.app_context(), database.connection_context():
        return int(Event.select().count())


def _quarantine(app: Flask) -> list[str]:
    with app.app_context(), database.connection_context():
        return [q.reason for q in QuarantinedRecord.select().order_by(QuarantinedRecord.id)]


def test_every_flipped_byte_of_an_envelope_is_refused_and_kept(
    app: Flask, device: Device, operation: dict[str, Any]
) -> None:
    session = _session(device)
    envelope = session.seal(uuid.uuid4(), 1, canonical_bytes(_body(device, operation)))
    mutants = []
    for pos in range(len(envelope)):
        flipped = bytearray(envelope)
        flipped[pos] ^= 0x01
        mutants.append(bytes(flipped))
    answer = _push_raw(device, [session.blob], mutants)
    statuses = {r["status"] for r in answer["results"]}
    assert statuses == {"rejected"}
    assert len(answer["results"]) == len(envelope)
    assert _events(app) == 0
    assert len(_quarantine(app)) == len(envelope)
    # The genuine one still goes in, once.
    assert _push_raw(device, [session.blob], [envelope])["results"][0]["status"] == "accepted"
    assert _events(app) == 1


def test_the_same_id_with_different_content_is_an_equivocation(
    app: Flask, device: Device, operation: dict[str, Any]
) -> None:
    session = _session(device)
    eid = uuid.uuid4()
    first = session.seal(eid, 1, canonical_bytes(_body(device, operation, count=50)))
    second = session.seal(eid, 2, canonical_bytes(_body(device, operation, count=49)))
    answer = _push_raw(device, [session.blob], [first, second])
    assert [r["status"] for r in answer["results"]] == ["accepted", "rejected"]
    assert answer["results"][1]["code"] == "equivocation"
    # A different event reusing an accepted sequence number is one as well.
    third = _session(device).seal(uuid.uuid4(), 1, canonical_bytes(_body(device, operation)))
    answer = _push_raw(device, [], [third])
    assert answer["results"][0]["code"] == "session_unknown"
    s2 = _session(device)
    answer = _push_raw(
        device, [s2.blob], [s2.seal(uuid.uuid4(), 1, canonical_bytes(_body(device, operation)))]
    )
    assert answer["results"][0]["code"] == "equivocation"
    assert _events(app) == 1
    assert _quarantine(app) == ["equivocation", "session_unknown", "equivocation"]


def test_invalid_bodies_wrong_operations_and_unknown_schema_versions_are_rejected(
    app: Flask, device: Device, operation: dict[str, Any]
) -> None:
    session = _session(device)
    bodies = [
        _body(device, operation, op=operation["id"] + 1000),
        _body(device, operation, v=99),
        _body(device, operation, kind="teleport"),
        {**_body(device, operation), "count": -1},
        {"not": "an event"},
    ]
    envelopes = [
        session.seal(uuid.uuid4(), i + 1, canonical_bytes(b)) for i, b in enumerate(bodies)
    ]
    envelopes.append(session.seal(uuid.uuid4(), 6, b"[1, 2, 3]"))
    answer = _push_raw(device, [session.blob], envelopes)
    assert [r["code"] for r in answer["results"]] == [
        "wrong_operation",
        "event_invalid",
        "event_invalid",
        "event_invalid",
        "event_invalid",
        "event_invalid",
    ]
    assert _events(app) == 0
    # Rejections are final but the sequence numbers arrived: no gap.
    with app.app_context(), database.connection_context():
        row = DeviceRow.get_by_id(device.device_id)
        assert (row.high_seq, row.contiguous_seq) == (6, 6)


def test_text_no_store_can_keep_is_refused_per_record_and_the_rest_of_the_push_is_stored(
    app: Flask, device: Device, operation: dict[str, Any]
) -> None:
    """A NUL (PostgreSQL text cannot hold one) or a lone surrogate (not UTF-8) in free text,
    which JSON can carry, is an invalid record kept in quarantine: before, on PostgreSQL, it
    failed the whole group commit, so every push in it was answered 500 and retried forever."""
    session = _session(device)
    walkin = {
        **_body(device, operation),
        "kind": "walkin",
        "person": str(uuid.uuid4()),
        "details": {"full_name": "Olena\u0000K"},
    }
    del walkin["group"], walkin["count"]
    bodies = [
        _body(device, operation, author="night\u0000shift"),
        _body(device, operation, note="bus \ud800 3"),
        walkin,
        _body(device, operation, note="tab\tand newline\n are fine"),
    ]
    # ASCII JSON (\\u0000, \\ud800 escapes): a lone surrogate has no UTF-8 canonical bytes.
    raw = [json.dumps(b, sort_keys=True, separators=(",", ":")).encode() for b in bodies]
    envelopes = [session.seal(uuid.uuid4(), i + 1, r) for i, r in enumerate(raw)]
    answer = _push_raw(device, [session.blob], envelopes)
    assert [r.get("code", r["status"]) for r in answer["results"]] == [
        "event_invalid",
        "event_invalid",
        "event_invalid",
        "accepted",
    ]
    assert _events(app) == 1
    assert _quarantine(app) == ["event_invalid"] * 3


def test_sequence_gaps_are_visible_to_staff(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    device: Device,
    operation: dict[str, Any],
) -> None:
    for _ in range(5):
        device.headcount(checkpoint=_cp(operation), group=operation["group"]["id"], count=50)
    m = device.store.m
    m.Outbox.delete().where(m.Outbox.seq.in_([2, 3])).execute()
    assert device.sync().accepted == 3
    listed = client.get(
        f"/api/v1/operations/{operation['id']}/devices", headers=admin_headers
    ).get_json()["items"]
    assert [(d["high_seq"], d["contiguous_seq"], d["gaps"]) for d in listed] == [(5, 1, [[2, 3]])]


def test_implausible_capture_times_are_flagged_not_trusted(
    app: Flask, device: Device, operation: dict[str, Any]
) -> None:
    session = _session(device)
    now = int(time.time() * 1000)
    bodies = [
        _body(device, operation, at=now),
        _body(device, operation, at=now + 86_400_000),
        _body(device, operation, at=0),
    ]
    envelopes = [
        session.seal(uuid.uuid4(), i + 1, canonical_bytes(b)) for i, b in enumerate(bodies)
    ]
    answer = _push_raw(device, [session.blob], envelopes)
    assert [r["status"] for r in answer["results"]] == ["accepted"] * 3
    with app.app_context(), database.connection_context():
        flags = [e.time_flag for e in Event.select().order_by(Event.seq)]
        skew = DeviceRow.get_by_id(device.device_id).skew_ms
    assert flags == [None, "future", "before_start"]
    assert abs(skew) < 60_000


def test_too_many_records_get_413_and_the_device_halves_its_batch(
    app: Flask, device: Device, operation: dict[str, Any]
) -> None:
    app.config["PUSH_MAX_RECORDS"] = 7
    for _ in range(40):
        device.headcount(checkpoint=_cp(operation), group=operation["group"]["id"], count=50)
    report = device.sync()
    assert (report.accepted, report.still_queued) == (40, 0)
    assert report.attempts > 40 // 7
    assert _events(app) == 40


def test_protocol_versions_too_old_or_too_new_get_an_actionable_426(client: FlaskClient) -> None:
    for version, hint in (("0", "update the Muster app"), ("99", "upgrade the server"), ("", "")):
        resp = client.post(
            "/api/v1/sync/push",
            data=b"{}",
            headers={HEADER_PROTOCOL: version, "Content-Type": "application/json"},
        )
        assert resp.status_code == 426
        err = resp.get_json()["error"]
        assert err["code"] == "protocol_version_unsupported"
        assert err["details"]["supported"] == {"min": 1, "max": 1}
        assert hint in err["message"]


def test_a_device_speaking_an_unsupported_version_raises_protocol_mismatch(
    device: Device, operation: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sync.transport

    device.headcount(checkpoint=_cp(operation), group=operation["group"]["id"], count=50)
    monkeypatch.setattr(sync.transport, "PROTOCOL_VERSION", 2)
    with pytest.raises(ProtocolMismatch) as info:
        device.push()
    assert info.value.status == 426
    assert device.queued_count() == 1


def _signed(device: Device, client: FlaskClient, path: str, raw: bytes, **headers: str) -> Any:
    now = int(time.time() * 1000)
    sig = sign_request(device.keys, "POST", path, device.device_id, now, raw)
    base = {
        HEADER_PROTOCOL: "1",
        HEADER_DEVICE: str(device.device_id),
        HEADER_TIMESTAMP: str(now),
        HEADER_SIGNATURE: sig,
        "Content-Type": "application/json",
    }
    base.update(headers)
    return client.post(path, data=raw, headers=base)


def test_garbage_truncated_and_bomb_bodies_get_clear_4xx_answers(
    app: Flask, client: FlaskClient, device: Device
) -> None:
    path = "/api/v1/sync/push"
    assert _signed(device, client, path, b"\x00\xffgarbage").status_code == 400
    assert _signed(device, client, path, b'{"clock": 1, "envel').status_code == 400
    bad_gzip = _signed(device, client, path, b"not gzip", **{"Content-Encoding": "gzip"})
    assert bad_gzip.status_code == 400
    bomb = gzip.compress(b'{"clock":1,"envelopes":["' + b"A" * (8 << 20) + b'"]}')
    resp = _signed(device, client, path, bomb, **{"Content-Encoding": "gzip"})
    assert resp.status_code == 413
    assert resp.get_json()["error"]["code"] == "payload_too_large"
    unknown = _signed(
        device, client, path, json.dumps({"clock": 1, "envelopes": [], "extra": 1}).encode()
    )
    assert unknown.status_code == 422
    assert _events(app) == 0


def test_forged_signatures_and_unknown_devices_are_refused(
    app: Flask, client: FlaskClient, device: Device
) -> None:
    raw = json.dumps({"clock": 1, "envelopes": []}).encode()
    resp = _signed(
        device, client, "/api/v1/sync/push", raw, **{HEADER_SIGNATURE: b64e(b"\x00" * 64)}
    )
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (401, "signature_invalid")
    resp = _signed(device, client, "/api/v1/sync/push", raw, **{HEADER_DEVICE: str(uuid.uuid4())})
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (401, "device_unknown")


def test_an_envelope_replayed_by_another_device_is_refused(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    device: Device,
    tmp_path: Path,
) -> None:
    other = enrol_device(app, client, admin_headers, operation["id"], tmp_path / "o.db")
    session = _session(device)
    envelope = session.seal(uuid.uuid4(), 1, canonical_bytes(_body(device, operation)))
    answer = _push_raw(other, [session.blob], [envelope])
    assert answer["results"][0]["status"] == "rejected"
    assert answer["results"][0]["code"] == "envelope_unauthentic"
    assert _events(app) == 0


def test_pull_pages_with_a_monotonic_cursor_and_resets_an_unusable_one(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    from server import changelog
    from server.models import Person

    with app.app_context(), database.connection_context():
        ids = [uuid.uuid4() for _ in range(25)]
        Person.insert_many(
            [
                {"id": i, "operation": operation["id"], "full_name": f"P {n}"}
                for n, i in enumerate(ids)
            ]
        ).execute()
        changelog.record(operation["id"], "person", ids)
    app.config["PULL_PAGE_SIZE"] = 10
    d = enrol_device(app, client, admin_headers, operation["id"], tmp_path / "p.db")
    cursors = []
    while True:
        answer = d.transport.call("GET", f"/sync/pull?cursor={d.store.get('cursor')}")
        cursors.append(answer["cursor"])
        d.store.put("cursor", answer["cursor"])
        if not answer["more"]:
            break
    assert cursors == sorted(cursors) and len(cursors) == 3
    d.store.put("cursor", 0)
    report = d.pull()
    assert report.pulled_people == 25
    assert len(d.index().people) == 25
    d.store.put("cursor", 10_000)
    with pytest.raises(ServerRefused) as info:
        d.transport.call("GET", "/sync/pull?cursor=10000")
    assert info.value.code == "cursor_reset"
    assert d.pull().pulled_people == 25
    assert d.store.get("cursor") == cursors[-1]
