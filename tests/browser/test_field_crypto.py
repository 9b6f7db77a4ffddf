"""The browser's WebCrypto implementation against docs/protocol.md Part B and its vectors."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from sync.crypto import (
    DeviceKeys,
    ServerKey,
    open_envelope,
    open_session,
    seal_to_device,
)
from sync.events import canonical_bytes
from tests.conftest import REPO, LiveServer

pytestmark = pytest.mark.sqlite_only

VECTORS = json.loads((REPO / "tests" / "sync" / "vectors.json").read_text())

OPEN_VECTORS = """async (v) => {
  const c = await import("/field/js/crypto.js");
  const keys = c.unhex(v.device.keys_hex);
  const out = {
    signing_public: c.hex(await c.publicOf("Ed25519", keys.slice(0, 32))),
    encryption_public: c.hex(await c.publicOf("X25519", keys.slice(32))),
    server_public: c.hex(await c.publicOf("X25519", c.unhex(v.server.private_hex))),
  };
  const serverPrivate = await c.importPrivate("X25519", c.unhex(v.server.private_hex));
  const session = await c.openSession(c.unhex(v.session.blob_hex), c.unhex(v.device.signing_public_hex),
    serverPrivate, c.unhex(v.server.public_hex));
  Object.assign(out, { session_id: c.hex(session.sessionId), device_id: session.deviceId,
    created_ms: session.createdMs, kid: session.kid, key: c.hex(session.key) });
  out.envelopes = [];
  for (const e of v.envelopes) {
    const opened = await c.openEnvelope(c.unhex(e.envelope_hex), session);
    out.envelopes.push([opened.eventId, opened.seq, c.fromUtf8(opened.plaintext)]);
  }
  const tampered = c.unhex(v.envelopes[0].envelope_hex);
  tampered[45] ^= 1;
  out.tampered = await c.openEnvelope(tampered, session).then(() => "opened", (err) => err.message);
  const r = v.request;
  const signing = await c.importPrivate("Ed25519", keys.slice(0, 32));
  out.string_to_sign = c.fromUtf8(await c.stringToSign(r.method, r.path, r.device_id, r.timestamp_ms, c.utf8(r.body)));
  out.signature = await c.signRequest(signing, r.method, r.path, r.device_id, r.timestamp_ms, c.utf8(r.body));
  out.verifies = await c.verify(c.unhex(v.device.signing_public_hex), c.b64d(r.signature_b64),
    c.utf8(r.string_to_sign));
  const device = { encryption: await c.importPrivate("X25519", keys.slice(32)),
    encryptionPublic: c.unhex(v.device.encryption_public_hex) };
  out.pull = c.fromUtf8(await c.openFromServer(device, v.device.device_id, c.unhex(v.pull.sealed_hex)));
  return out;
}"""

SEAL_IN_BROWSER = """async ([v, pulled]) => {
  const c = await import("/field/js/crypto.js");
  const keys = c.unhex(v.device.keys_hex);
  const signing = await c.importPrivate("Ed25519", keys.slice(0, 32));
  const s = await c.SealingSession.start(v.device.device_id, signing, v.server.kid,
    c.unhex(v.server.public_hex), 1767225600000);
  const body = c.canonicalBytes({ v: 1, kind: "checkin", note: "Ганна \\"张\\"\\n\\u0001 é ✓ 😀", op: 1, at: 5 });
  const envelope = await s.seal("7a3e9b10-5d2c-4f8e-8a61-0c9d2e4f6b09", 7, body);
  const again = await s.seal("7a3e9b10-5d2c-4f8e-8a61-0c9d2e4f6b0a", 7, body).then(() => "sealed", (e) => e.message);
  const device = { encryption: await c.importPrivate("X25519", keys.slice(32)),
    encryptionPublic: c.unhex(v.device.encryption_public_hex) };
  const opened = c.fromUtf8(await c.openFromServer(device, v.device.device_id, c.unhex(pulled)));
  return { blob: c.hex(s.blob), envelope: c.hex(envelope), body: c.hex(body), again, opened };
}"""


def _page(phone: Any, server: LiveServer) -> Any:
    page = phone.new_page()
    page.goto(server.url + "/field/")
    page.wait_for_selector("#enrol:not([hidden])")
    return page


def test_the_browser_opens_every_vector_and_reproduces_the_request_signature(
    field_server: LiveServer, phone: Any
) -> None:
    out = _page(phone, field_server).evaluate(OPEN_VECTORS, VECTORS)
    v = VECTORS
    assert out["signing_public"] == v["device"]["signing_public_hex"]
    assert out["encryption_public"] == v["device"]["encryption_public_hex"]
    assert out["server_public"] == v["server"]["public_hex"]
    assert (out["session_id"], out["device_id"], out["created_ms"], out["kid"], out["key"]) == (
        v["session"]["session_id_hex"],
        v["device"]["device_id"],
        v["session"]["created_ms"],
        v["server"]["kid"],
        v["session"]["key_hex"],
    )
    assert out["envelopes"] == [[e["event_id"], e["seq"], e["plaintext"]] for e in v["envelopes"]]
    assert out["tampered"] == "does not authenticate"
    assert out["string_to_sign"] == v["request"]["string_to_sign"]
    assert out["signature"] == v["request"]["signature_b64"]
    assert out["verifies"] is True
    assert out["pull"] == v["pull"]["plaintext"]


def test_sessions_and_envelopes_sealed_in_the_browser_open_with_the_python_reference(
    field_server: LiveServer, phone: Any
) -> None:
    v = VECTORS
    keys = DeviceKeys.from_bytes(bytes.fromhex(v["device"]["keys_hex"]))
    device_id = uuid.UUID(v["device"]["device_id"])
    pulled = seal_to_device(keys.encryption_public_raw, device_id, '{"people":["Олена"]}'.encode())
    out = _page(phone, field_server).evaluate(SEAL_IN_BROWSER, [v, pulled.hex()])
    server = ServerKey.from_private_raw(
        v["server"]["kid"], bytes.fromhex(v["server"]["private_hex"])
    )
    session = open_session(bytes.fromhex(out["blob"]), keys.signing_public_raw, server.private)
    assert (session.device_id, session.created_ms, session.server_kid) == (
        device_id,
        1767225600000,
        "test-2026-01",
    )
    header, plaintext = open_envelope(bytes.fromhex(out["envelope"]), session)
    assert (str(header.event_id), header.seq) == ("7a3e9b10-5d2c-4f8e-8a61-0c9d2e4f6b09", 7)
    body = {"v": 1, "kind": "checkin", "note": 'Ганна "张"\n\x01 é ✓ 😀', "op": 1, "at": 5}
    assert plaintext == bytes.fromhex(out["body"]) == canonical_bytes(body)
    assert out["again"] == "seq already sealed or below 1"
    assert out["opened"] == '{"people":["Олена"]}'
