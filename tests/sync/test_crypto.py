"""Tests of the cryptographic wire layer (sync/crypto.py) and its committed test vectors.

Besides round trips and tamper tests, this module holds an independent RFC 9180 reference
implementation of HPKE base mode, built from X25519, HMAC-SHA256 and AES-GCM only (what a browser
has in WebCrypto), which opens what the library seals and is itself checked against RFC 9180 A.1.

Regenerate ``vectors.json`` (only when the format deliberately changes) with::

    python -m tests.sync.test_crypto --write-vectors
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import sys
import uuid
from pathlib import Path
from typing import Any, TypedDict, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.crypto import (
    AuthenticityError,
    CryptoError,
    DeviceKeys,
    EnvelopeHeader,
    MalformedError,
    SealingSession,
    ServerKey,
    SessionInfo,
    Vault,
    b64d,
    b64e,
    open_envelope,
    open_from_server,
    open_session,
    parse_envelope_header,
    parse_session_header,
    request_string_to_sign,
    seal_to_device,
    sign_request,
    verify_request,
)

VECTORS_PATH = Path(__file__).with_name("vectors.json")
LIGHT_ARGON2 = {"memory_cost": 1024, "iterations": 1, "lanes": 4}


def _seed(label: str) -> bytes:
    """Derive a fixed 32-byte test seed from a label."""
    return hashlib.sha256(b"muster-test-vector/" + label.encode()).digest()


DEVICE_ID = uuid.UUID("0d6f1a52-3c1e-4b7a-9e55-2f8c4d1b7a01")
OTHER_DEVICE_ID = uuid.UUID("0d6f1a52-3c1e-4b7a-9e55-2f8c4d1b7a02")
DEVICE_KEYS = DeviceKeys.from_bytes(_seed("device/ed25519") + _seed("device/x25519"))
OTHER_DEVICE_KEYS = DeviceKeys.from_bytes(_seed("device2/ed25519") + _seed("device2/x25519"))
SERVER_KEY = ServerKey.from_private_raw("test-2026-01", _seed("server/x25519"))
OTHER_SERVER_KEY = ServerKey.from_private_raw("test-2026-02", _seed("server2/x25519"))
CREATED_MS = 1_767_225_600_000
EVENT_ID = uuid.UUID("7a3e9b10-5d2c-4f8e-8a61-0c9d2e4f6b01")


def _start(
    device_id: uuid.UUID = DEVICE_ID,
    keys: DeviceKeys = DEVICE_KEYS,
    server: ServerKey = SERVER_KEY,
) -> SealingSession:
    """Start a sealing session with the fixed test keys."""
    return SealingSession.start(device_id, keys, server.kid, server.public_raw, CREATED_MS)


def _open(session: SealingSession, server: ServerKey = SERVER_KEY) -> SessionInfo:
    """Open a session's blob on the server side with the fixed device key."""
    return open_session(session.blob, DEVICE_KEYS.signing_public_raw, server.private)


def _flip(data: bytes, index: int) -> bytes:
    """Return data with every bit of one byte inverted."""
    return data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]


def _checkin(n: int) -> bytes:
    """Return canonical JSON bytes of a check-in-like event body with synthetic data."""
    body = {
        "at_ms": CREATED_MS + n * 1000,
        "kind": "check_in",
        "person_ref": f"P-{n:04d}",
        "point": "assembly-A",
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


# --- independent RFC 9180 reference (X25519 + HMAC-SHA256 + AES-GCM only) --------------------

KEM_X25519, KDF_HKDF_SHA256, AEAD_AES128GCM, AEAD_AES256GCM = 0x0020, 0x0001, 0x0001, 0x0002


def _hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract (RFC 5869) with SHA-256."""
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def _hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand (RFC 5869) with SHA-256."""
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out, counter = out + block, counter + 1
    return out[:length]


def _labeled_extract(suite_id: bytes, salt: bytes, label: bytes, ikm: bytes) -> bytes:
    """RFC 9180 LabeledExtract."""
    return _hkdf_extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def _labeled_expand(suite_id: bytes, prk: bytes, label: bytes, info: bytes, length: int) -> bytes:
    """RFC 9180 LabeledExpand."""
    labeled_info = length.to_bytes(2, "big") + b"HPKE-v1" + suite_id + label + info
    return _hkdf_expand(prk, labeled_info, length)


def ref_dhkem_shared_secret(dh: bytes, enc: bytes, pk_r: bytes) -> bytes:
    """RFC 9180 DHKEM(X25519, HKDF-SHA256) ExtractAndExpand."""
    suite_id = b"KEM" + KEM_X25519.to_bytes(2, "big")
    eae_prk = _labeled_extract(suite_id, b"", b"eae_prk", dh)
    return _labeled_expand(suite_id, eae_prk, b"shared_secret", enc + pk_r, 32)


def ref_key_schedule(shared: bytes, info: bytes, aead_id: int, nk: int) -> tuple[bytes, bytes]:
    """RFC 9180 KeySchedule for mode_base: returns (key, base_nonce)."""
    suite_id = b"HPKE" + b"".join(
        i.to_bytes(2, "big") for i in (KEM_X25519, KDF_HKDF_SHA256, aead_id)
    )
    psk_id_hash = _labeled_extract(suite_id, b"", b"psk_id_hash", b"")
    info_hash = _labeled_extract(suite_id, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = _labeled_extract(suite_id, shared, b"secret", b"")
    key = _labeled_expand(suite_id, secret, b"key", context, nk)
    return key, _labeled_expand(suite_id, secret, b"base_nonce", context, 12)


def ref_hpke_open(
    sk_r: bytes,
    sealed: bytes,
    info: bytes,
    aad: bytes = b"",
    aead_id: int = AEAD_AES256GCM,
    nk: int = 32,
) -> bytes:
    """Open enc || ct (first message, seq 0) with HPKE base mode, RFC 9180 section 6.1."""
    enc, ct = sealed[:32], sealed[32:]
    private = X25519PrivateKey.from_private_bytes(sk_r)
    dh = private.exchange(X25519PublicKey.from_public_bytes(enc))
    shared = ref_dhkem_shared_secret(dh, enc, private.public_key().public_bytes_raw())
    key, nonce = ref_key_schedule(shared, info, aead_id, nk)
    return AESGCM(key).decrypt(nonce, ct, aad)


def ref_hpke_seal(pk_r: bytes, sk_e: bytes, plaintext: bytes, info: bytes) -> bytes:
    """Seal with HPKE base mode (AES-256-GCM) using a given ephemeral key: enc || ct."""
    ephemeral = X25519PrivateKey.from_private_bytes(sk_e)
    enc = ephemeral.public_key().public_bytes_raw()
    dh = ephemeral.exchange(X25519PublicKey.from_public_bytes(pk_r))
    key, nonce = ref_key_schedule(ref_dhkem_shared_secret(dh, enc, pk_r), info, AEAD_AES256GCM, 32)
    return enc + AESGCM(key).encrypt(nonce, plaintext, b"")


def test_the_reference_hpke_reproduces_rfc_9180_appendix_a1() -> None:
    """RFC 9180 A.1 (X25519, HKDF-SHA256, AES-128-GCM), base mode, sequence 0."""
    v = {
        "skRm": "4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
        "pkRm": "3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d",
        "skEm": "52c4a758a802cd8b936eceea314432798d5baf2d7e9235dc084ab1b9cfa2f736",
        "enc": "37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431",
        "shared": "fe0e18c9f024ce43799ae393c7e8fe8fce9d218875e8227b0187c04e7d2ea1fc",
        "info": "4f6465206f6e2061204772656369616e2055726e",
        "key": "4531685d41d65f03dc48f6b8302c05b0",
        "base_nonce": "56d890e5accaaf011cff4b7d",
        "aad": "436f756e742d30",
        "pt": "4265617574792069732074727574682c20747275746820626561757479",
        "ct": "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a9"
        "6d8770ac83d07bea87e13c512a",
    }
    h = {k: bytes.fromhex(x) for k, x in v.items()}
    dh = X25519PrivateKey.from_private_bytes(h["skEm"]).exchange(
        X25519PublicKey.from_public_bytes(h["pkRm"])
    )
    shared = ref_dhkem_shared_secret(dh, h["enc"], h["pkRm"])
    assert shared == h["shared"]
    assert ref_key_schedule(shared, h["info"], AEAD_AES128GCM, 16) == (h["key"], h["base_nonce"])
    opened = ref_hpke_open(h["skRm"], h["enc"] + h["ct"], h["info"], h["aad"], AEAD_AES128GCM, 16)
    assert opened == h["pt"]


def test_a_library_session_blob_opens_with_the_independent_rfc_9180_reference() -> None:
    session = _start()
    kid_len = session.blob[44]
    header = session.blob[: 45 + kid_len]
    wrapped = session.blob[45 + kid_len : 125 + kid_len]
    key = ref_hpke_open(SERVER_KEY.private_raw, wrapped, b"muster/session/v1" + header)
    assert key == _open(session).key


def test_a_blob_wrapped_by_the_reference_hpke_opens_in_the_library() -> None:
    session_id, key = bytes(range(16)), bytes(range(32, 64))
    kid = SERVER_KEY.kid.encode()
    header = (
        b"MSS1"
        + session_id
        + DEVICE_ID.bytes
        + CREATED_MS.to_bytes(8, "big")
        + bytes([len(kid)])
        + kid
    )
    wrapped = ref_hpke_seal(
        SERVER_KEY.public_raw, _seed("ephemeral"), key, b"muster/session/v1" + header
    )
    signed = header + wrapped
    blob = signed + DEVICE_KEYS.signing.sign(signed)
    info = open_session(blob, DEVICE_KEYS.signing_public_raw, SERVER_KEY.private)
    assert (info.session_id, info.key, info.device_id) == (session_id, key, DEVICE_ID)


def test_a_pull_response_opens_with_the_independent_rfc_9180_reference() -> None:
    sealed = seal_to_device(DEVICE_KEYS.encryption_public_raw, DEVICE_ID, b"roster page")
    info = b"muster/pull/v1" + DEVICE_ID.bytes
    assert ref_hpke_open(DEVICE_KEYS.encryption.private_bytes_raw(), sealed, info) == b"roster page"


def test_an_envelope_opens_with_plain_aes_gcm_as_documented() -> None:
    session = _start()
    envelope = session.seal(EVENT_ID, 7, b"body")
    key = _open(session).key
    nonce = bytes(4) + (7).to_bytes(8, "big")
    aad = b"muster/event/v1" + envelope[:41] + DEVICE_ID.bytes
    assert AESGCM(key).decrypt(nonce, envelope[41:], aad) == b"body"


# --- base64url -------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\x00", b"\xfb\xff", b"abc", bytes(range(256))])
def test_base64url_round_trips_without_padding(data: bytes) -> None:
    text = b64e(data)
    assert "=" not in text and "+" not in text and "/" not in text
    assert b64d(text) == data


def test_base64url_accepts_padding() -> None:
    assert b64d("YQ==") == b"a"


@pytest.mark.parametrize("text", ["a+b/", "YQ=", "Y", "YR", "Y Q", "YQ==\n", "é", "=YQ"])
def test_base64url_refuses_foreign_alphabet_bad_padding_and_non_canonical_text(text: str) -> None:
    with pytest.raises(MalformedError):
        b64d(text)


# --- keys ------------------------------------------------------------------------------------


def test_device_keys_round_trip_through_64_raw_bytes() -> None:
    keys = DeviceKeys.generate()
    raw = keys.to_bytes()
    again = DeviceKeys.from_bytes(raw)
    assert len(raw) == 64
    assert again.signing_public_raw == keys.signing_public_raw
    assert again.encryption_public_raw == keys.encryption_public_raw


def test_device_keys_refuse_a_wrong_length() -> None:
    with pytest.raises(MalformedError):
        DeviceKeys.from_bytes(bytes(63))


def test_key_reprs_do_not_show_private_material() -> None:
    assert "signing=" not in repr(DEVICE_KEYS)
    assert "private=" not in repr(SERVER_KEY)


@pytest.mark.parametrize("kid", ["", "a" * 65, "key id", "clé", "k\n"])
def test_a_server_key_id_must_be_1_to_64_printable_ascii(kid: str) -> None:
    with pytest.raises(ValueError):
        ServerKey.generate(kid)


# --- sessions and envelopes ------------------------------------------------------------------


def test_a_session_blob_has_the_documented_layout() -> None:
    session = _start()
    kid = SERVER_KEY.kid.encode()
    blob = session.blob
    assert len(blob) == 189 + len(kid)
    assert blob[:4] == b"MSS1"
    assert blob[4:20] == session.session_id
    assert blob[20:36] == DEVICE_ID.bytes
    assert int.from_bytes(blob[36:44], "big") == CREATED_MS
    assert blob[44] == len(kid) and blob[45 : 45 + len(kid)] == kid
    assert parse_session_header(blob) == (session.session_id, DEVICE_ID, CREATED_MS, SERVER_KEY.kid)


def test_events_round_trip_through_a_session() -> None:
    session = _start()
    info = _open(session)
    assert (info.session_id, info.device_id, info.created_ms) == (
        session.session_id,
        DEVICE_ID,
        CREATED_MS,
    )
    assert info.server_kid == SERVER_KEY.kid
    for seq in (1, 2, 3):
        envelope = session.seal(EVENT_ID, seq, _checkin(seq))
        assert len(envelope) == 41 + len(_checkin(seq)) + 16
        header, plaintext = open_envelope(envelope, info)
        assert header == EnvelopeHeader(1, EVENT_ID, session.session_id, seq)
        assert plaintext == _checkin(seq)


def test_an_empty_plaintext_round_trips() -> None:
    session = _start()
    assert open_envelope(session.seal(EVENT_ID, 1, b""), _open(session))[1] == b""


def test_the_session_key_appears_nowhere_in_the_sealing_sessions_attributes() -> None:
    session = _start()
    key = _open(session).key
    visible = [getattr(session, name) for name in ("blob", "session_id", "device_id")]
    assert all(key not in bytes(str(v), "utf-8") and key != v for v in visible)
    assert key not in session.blob


@pytest.mark.parametrize("seq", [0, -1, 2**64])
def test_sealing_refuses_a_seq_outside_1_to_2_pow_64(seq: int) -> None:
    with pytest.raises(ValueError):
        _start().seal(EVENT_ID, seq, b"x")


def test_sealing_refuses_to_reuse_a_seq_within_a_session() -> None:
    session = _start()
    session.seal(EVENT_ID, 5, b"first")
    with pytest.raises(ValueError):
        session.seal(uuid.uuid4(), 5, b"second")


def test_a_discarded_session_seals_nothing() -> None:
    session = _start()
    session.discard()
    assert session.discarded
    with pytest.raises(ValueError):
        session.seal(EVENT_ID, 1, b"x")


def test_every_flipped_byte_of_an_envelope_is_refused() -> None:
    session = _start()
    info = _open(session)
    envelope = session.seal(EVENT_ID, 1, _checkin(1))
    for index in range(len(envelope)):
        with pytest.raises(CryptoError):
            open_envelope(_flip(envelope, index), info)


def test_every_flipped_byte_of_a_session_blob_is_refused() -> None:
    blob = _start().blob
    for index in range(len(blob)):
        with pytest.raises(CryptoError):
            open_session(_flip(blob, index), DEVICE_KEYS.signing_public_raw, SERVER_KEY.private)


def test_every_truncation_of_an_envelope_is_refused() -> None:
    session = _start()
    info = _open(session)
    envelope = session.seal(EVENT_ID, 1, b"payload")
    for length in range(len(envelope)):
        with pytest.raises(CryptoError):
            open_envelope(envelope[:length], info)


def test_every_truncation_or_extension_of_a_session_blob_is_malformed() -> None:
    blob = _start().blob
    for candidate in [blob[:n] for n in range(len(blob))] + [blob + b"\x00"]:
        with pytest.raises(MalformedError):
            parse_session_header(candidate)


def test_short_envelope_headers_are_malformed() -> None:
    with pytest.raises(MalformedError):
        parse_envelope_header(bytes(56))


def test_an_envelope_with_seq_zero_or_an_unknown_version_is_malformed() -> None:
    envelope = _start().seal(EVENT_ID, 1, b"x")
    with pytest.raises(MalformedError):
        parse_envelope_header(envelope[:33] + bytes(8) + envelope[41:])
    with pytest.raises(MalformedError):
        parse_envelope_header(b"\x02" + envelope[1:])


def test_an_envelope_opened_with_a_different_sessions_key_is_refused() -> None:
    session, other = _start(), _start()
    envelope = session.seal(EVENT_ID, 1, b"x")
    with pytest.raises(MalformedError):
        open_envelope(envelope, _open(other))
    with pytest.raises(AuthenticityError):
        open_envelope(envelope, dataclasses.replace(_open(session), key=_open(other).key))


def test_an_envelope_relabelled_with_another_session_id_is_refused() -> None:
    session, other = _start(), _start()
    envelope = session.seal(EVENT_ID, 1, b"x")
    moved = envelope[:17] + other.session_id + envelope[33:]
    with pytest.raises(AuthenticityError):
        open_envelope(moved, _open(other))


def test_an_envelope_whose_seq_is_changed_is_refused() -> None:
    session = _start()
    envelope = session.seal(EVENT_ID, 1, b"x")
    swapped = envelope[:33] + (2).to_bytes(8, "big") + envelope[41:]
    with pytest.raises(AuthenticityError):
        open_envelope(swapped, _open(session))


def test_an_envelope_whose_event_id_is_changed_is_refused() -> None:
    session = _start()
    envelope = session.seal(EVENT_ID, 1, b"x")
    swapped = envelope[:1] + uuid.uuid4().bytes + envelope[17:]
    with pytest.raises(AuthenticityError):
        open_envelope(swapped, _open(session))


def test_an_envelope_moved_to_another_device_is_refused() -> None:
    session = _start()
    envelope = session.seal(EVENT_ID, 1, b"x")
    elsewhere = dataclasses.replace(_open(session), device_id=OTHER_DEVICE_ID)
    with pytest.raises(AuthenticityError):
        open_envelope(envelope, elsewhere)


def test_bodies_swapped_between_two_envelopes_are_refused() -> None:
    session = _start()
    first = session.seal(EVENT_ID, 1, b"aaaa")
    second = session.seal(EVENT_ID, 2, b"bbbb")
    with pytest.raises(AuthenticityError):
        open_envelope(first[:41] + second[41:], _open(session))


def test_a_session_opened_with_the_wrong_server_key_is_refused() -> None:
    session = _start()
    with pytest.raises(AuthenticityError):
        _open(session, server=OTHER_SERVER_KEY)


def test_a_session_opened_with_another_devices_signing_key_is_refused() -> None:
    blob = _start().blob
    with pytest.raises(AuthenticityError):
        open_session(blob, OTHER_DEVICE_KEYS.signing_public_raw, SERVER_KEY.private)


def test_a_wrapped_key_copied_into_another_devices_resigned_blob_is_refused() -> None:
    victim = _start()
    kid_len = victim.blob[44]
    header = b"MSS1" + victim.session_id + OTHER_DEVICE_ID.bytes + victim.blob[36 : 45 + kid_len]
    signed = header + victim.blob[45 + kid_len : 125 + kid_len]
    forged = signed + OTHER_DEVICE_KEYS.signing.sign(signed)
    with pytest.raises(AuthenticityError):
        open_session(forged, OTHER_DEVICE_KEYS.signing_public_raw, SERVER_KEY.private)


def test_an_old_server_key_still_opens_old_sessions_after_rotation() -> None:
    old = _start(server=SERVER_KEY)
    new = _start(server=OTHER_SERVER_KEY)
    keys_by_kid = {k.kid: k.private for k in (SERVER_KEY, OTHER_SERVER_KEY)}
    for session in (old, new):
        kid = parse_session_header(session.blob)[3]
        open_session(session.blob, DEVICE_KEYS.signing_public_raw, keys_by_kid[kid])


@settings(max_examples=60, deadline=None)
@given(
    plaintext=st.binary(max_size=2048),
    seqs=st.lists(
        st.integers(min_value=1, max_value=2**64 - 1), min_size=1, max_size=5, unique=True
    ),
)
def test_random_plaintexts_and_seqs_round_trip(plaintext: bytes, seqs: list[int]) -> None:
    session = _start()
    info = _open(session)
    for seq in seqs:
        event_id = uuid.uuid4()
        header, opened = open_envelope(session.seal(event_id, seq, plaintext), info)
        assert (header.seq, header.event_id, opened) == (seq, event_id, plaintext)


# --- request signing -------------------------------------------------------------------------


class _Request(TypedDict):
    """Keyword arguments of the request-signing functions."""

    method: str
    path: str
    device_id: uuid.UUID
    timestamp_ms: int
    body: bytes


REQUEST: _Request = {
    "method": "POST",
    "path": "/api/sync/v1/push?batch=1",
    "device_id": DEVICE_ID,
    "timestamp_ms": CREATED_MS,
    "body": b'{"envelopes":[]}',
}


def test_the_request_string_to_sign_has_the_documented_form() -> None:
    expected = (
        b"MUSTER-REQ-1\nPOST\n/api/sync/v1/push?batch=1\n"
        + str(DEVICE_ID).encode()
        + b"\n1767225600000\n"
        + hashlib.sha256(b'{"envelopes":[]}').hexdigest().encode()
    )
    assert request_string_to_sign(**REQUEST) == expected


def test_a_signed_request_verifies() -> None:
    signature = sign_request(DEVICE_KEYS, **REQUEST)
    verify_request(DEVICE_KEYS.signing_public_raw, signature, **REQUEST)


@pytest.mark.parametrize(
    ("component", "value"),
    [
        ("method", "PUT"),
        ("path", "/api/sync/v1/push?batch=2"),
        ("device_id", OTHER_DEVICE_ID),
        ("timestamp_ms", CREATED_MS + 1),
        ("body", b'{"envelopes":[] }'),
    ],
)
def test_a_request_signature_fails_when_any_component_changes(component: str, value: Any) -> None:
    signature = sign_request(DEVICE_KEYS, **REQUEST)
    changed = cast(_Request, {**REQUEST, component: value})
    with pytest.raises(AuthenticityError):
        verify_request(DEVICE_KEYS.signing_public_raw, signature, **changed)


def test_a_request_signature_fails_under_another_devices_key_or_when_altered() -> None:
    signature = sign_request(DEVICE_KEYS, **REQUEST)
    raw = b64d(signature)
    for bad_key, bad_sig in [
        (OTHER_DEVICE_KEYS.signing_public_raw, signature),
        (DEVICE_KEYS.signing_public_raw, b64e(_flip(raw, 10))),
        (DEVICE_KEYS.signing_public_raw, b64e(raw[:-1])),
        (DEVICE_KEYS.signing_public_raw, "not*base64"),
        (b"short", signature),
    ]:
        with pytest.raises(AuthenticityError):
            verify_request(bad_key, bad_sig, **REQUEST)


@pytest.mark.parametrize(("method", "path"), [("PO ST", "/x"), ("POST", "/x\n"), ("POST", "/é")])
def test_request_components_with_spaces_newlines_or_non_ascii_are_refused(
    method: str, path: str
) -> None:
    with pytest.raises(ValueError):
        request_string_to_sign(method, path, DEVICE_ID, 1, b"")


# --- sealing to a device ---------------------------------------------------------------------


def test_data_sealed_to_a_device_opens_only_on_that_device() -> None:
    sealed = seal_to_device(DEVICE_KEYS.encryption_public_raw, DEVICE_ID, b"roster")
    assert open_from_server(DEVICE_KEYS, DEVICE_ID, sealed) == b"roster"
    with pytest.raises(AuthenticityError):
        open_from_server(OTHER_DEVICE_KEYS, DEVICE_ID, sealed)
    with pytest.raises(AuthenticityError):
        open_from_server(DEVICE_KEYS, OTHER_DEVICE_ID, sealed)
    with pytest.raises(AuthenticityError):
        open_from_server(DEVICE_KEYS, DEVICE_ID, _flip(sealed, len(sealed) - 1))
    with pytest.raises(MalformedError):
        open_from_server(DEVICE_KEYS, DEVICE_ID, sealed[:47])


# --- vault -----------------------------------------------------------------------------------


def test_a_vault_round_trips_and_reopens_from_its_params() -> None:
    vault, params = Vault.create("correct horse", **LIGHT_ARGON2)
    params = json.loads(json.dumps(params))
    data = vault.encrypt(b"personal data", b"row-1")
    assert Vault.unlock("correct horse", params).decrypt(data, b"row-1") == b"personal data"


def test_a_vault_refuses_a_wrong_passphrase() -> None:
    _, params = Vault.create("correct horse", **LIGHT_ARGON2)
    with pytest.raises(AuthenticityError):
        Vault.unlock("correct horse!", params)


def test_a_vault_ciphertext_is_bound_to_its_aad_and_refuses_tampering() -> None:
    vault, _ = Vault.create("pw", **LIGHT_ARGON2)
    data = vault.encrypt(b"secret", b"row-1")
    with pytest.raises(AuthenticityError):
        vault.decrypt(data, b"row-2")
    with pytest.raises(AuthenticityError):
        vault.decrypt(_flip(data, 20), b"row-1")
    with pytest.raises(MalformedError):
        vault.decrypt(data[:27], b"row-1")


def test_a_vault_defaults_to_the_rfc_9106_second_recommended_parameters() -> None:
    vault, params = Vault.create("pw")
    assert (params["memory_cost"], params["iterations"], params["lanes"]) == (65536, 3, 4)
    assert len(b64d(params["salt"])) == 16


@pytest.mark.parametrize(
    "change",
    [{"v": 2}, {"kdf": "scrypt"}, {"salt": 5}, {"memory_cost": 2**40}, {"iterations": True}],
)
def test_vault_params_that_do_not_parse_are_malformed(change: dict[str, Any]) -> None:
    _, params = Vault.create("pw", **LIGHT_ARGON2)
    with pytest.raises(MalformedError):
        Vault.unlock("pw", {**params, **change})


# --- committed test vectors ------------------------------------------------------------------


def build_vectors() -> dict[str, Any]:
    """Produce a fresh vectors document from the fixed test keys (HPKE parts are random)."""
    session = _start()
    info = _open(session)
    envelopes = []
    for seq in (1, 2, 3):
        event_id = uuid.UUID(int=EVENT_ID.int + seq)
        envelope = session.seal(event_id, seq, _checkin(seq))
        envelopes.append(
            {
                "event_id": str(event_id),
                "seq": seq,
                "envelope_hex": envelope.hex(),
                "plaintext": _checkin(seq).decode(),
            }
        )
    method, path, body = "POST", "/api/sync/v1/push?batch=1", b'{"envelopes":["..."]}'
    request = {
        "method": method,
        "path": path,
        "device_id": str(DEVICE_ID),
        "timestamp_ms": CREATED_MS,
        "body": body.decode(),
    }
    args = (method, path, DEVICE_ID, CREATED_MS, body)
    vault, vault_params = Vault.create("test vector passphrase", **LIGHT_ARGON2)
    return {
        "description": "Muster crypto wire format v1 test vectors; see docs/protocol.md (Part B). "
        "Synthetic data only. Keys are sha256('muster-test-vector/' + label).",
        "device": {
            "device_id": str(DEVICE_ID),
            "keys_hex": DEVICE_KEYS.to_bytes().hex(),
            "signing_public_hex": DEVICE_KEYS.signing_public_raw.hex(),
            "encryption_public_hex": DEVICE_KEYS.encryption_public_raw.hex(),
        },
        "server": {
            "kid": SERVER_KEY.kid,
            "private_hex": SERVER_KEY.private_raw.hex(),
            "public_hex": SERVER_KEY.public_raw.hex(),
        },
        "session": {
            "blob_hex": session.blob.hex(),
            "session_id_hex": info.session_id.hex(),
            "created_ms": info.created_ms,
            "key_hex": info.key.hex(),
        },
        "envelopes": envelopes,
        "request": {
            **request,
            "string_to_sign": request_string_to_sign(*args).decode(),
            "signature_b64": sign_request(DEVICE_KEYS, *args),
        },
        "pull": {
            "sealed_hex": seal_to_device(
                DEVICE_KEYS.encryption_public_raw, DEVICE_ID, b'{"roster":[]}'
            ).hex(),
            "plaintext": '{"roster":[]}',
        },
        "vault": {
            "passphrase": "test vector passphrase",
            "params": vault_params,
            "aad": "row-1",
            "ciphertext_b64": b64e(vault.encrypt(b"synthetic personal data", b"row-1")),
            "plaintext": "synthetic personal data",
        },
    }


def write_vectors(path: Path = VECTORS_PATH) -> None:
    """Write a fresh vectors.json; committed vectors must then be re-reviewed."""
    path.write_text(json.dumps(build_vectors(), indent=2) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    """Load the committed test vectors."""
    result: dict[str, Any] = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    return result


def test_the_committed_vectors_use_the_fixed_keys(vectors: dict[str, Any]) -> None:
    keys = DeviceKeys.from_bytes(bytes.fromhex(vectors["device"]["keys_hex"]))
    assert keys.to_bytes() == DEVICE_KEYS.to_bytes()
    assert keys.signing_public_raw.hex() == vectors["device"]["signing_public_hex"]
    assert keys.encryption_public_raw.hex() == vectors["device"]["encryption_public_hex"]
    server = ServerKey.from_private_raw(
        vectors["server"]["kid"], bytes.fromhex(vectors["server"]["private_hex"])
    )
    assert server.public_raw.hex() == vectors["server"]["public_hex"]


def _vector_session(vectors: dict[str, Any]) -> SessionInfo:
    """Open the committed session blob with the committed keys."""
    blob = bytes.fromhex(vectors["session"]["blob_hex"])
    server = bytes.fromhex(vectors["server"]["private_hex"])
    signing_public = bytes.fromhex(vectors["device"]["signing_public_hex"])
    return open_session(blob, signing_public, X25519PrivateKey.from_private_bytes(server))


def test_the_committed_session_blob_still_opens(vectors: dict[str, Any]) -> None:
    info = _vector_session(vectors)
    assert info.session_id.hex() == vectors["session"]["session_id_hex"]
    assert info.device_id == uuid.UUID(vectors["device"]["device_id"])
    assert info.created_ms == vectors["session"]["created_ms"]
    assert info.server_kid == vectors["server"]["kid"]
    assert info.key.hex() == vectors["session"]["key_hex"]


def test_the_committed_session_blob_opens_with_the_reference_hpke(vectors: dict[str, Any]) -> None:
    blob = bytes.fromhex(vectors["session"]["blob_hex"])
    end = 45 + blob[44]
    key = ref_hpke_open(
        bytes.fromhex(vectors["server"]["private_hex"]),
        blob[end : end + 80],
        b"muster/session/v1" + blob[:end],
    )
    assert key.hex() == vectors["session"]["key_hex"]


def test_the_committed_envelopes_still_open(vectors: dict[str, Any]) -> None:
    info = _vector_session(vectors)
    for item in vectors["envelopes"]:
        header, plaintext = open_envelope(bytes.fromhex(item["envelope_hex"]), info)
        assert (str(header.event_id), header.seq) == (item["event_id"], item["seq"])
        assert plaintext.decode() == item["plaintext"]


def test_the_committed_request_signature_is_reproduced_and_verifies(
    vectors: dict[str, Any],
) -> None:
    r = vectors["request"]
    args = (
        r["method"],
        r["path"],
        uuid.UUID(r["device_id"]),
        r["timestamp_ms"],
        r["body"].encode(),
    )
    assert request_string_to_sign(*args).decode() == r["string_to_sign"]
    assert sign_request(DEVICE_KEYS, *args) == r["signature_b64"]  # Ed25519 is deterministic
    verify_request(
        bytes.fromhex(vectors["device"]["signing_public_hex"]), r["signature_b64"], *args
    )


def test_the_committed_pull_response_and_vault_still_open(vectors: dict[str, Any]) -> None:
    keys = DeviceKeys.from_bytes(bytes.fromhex(vectors["device"]["keys_hex"]))
    device_id = uuid.UUID(vectors["device"]["device_id"])
    opened = open_from_server(keys, device_id, bytes.fromhex(vectors["pull"]["sealed_hex"]))
    assert opened.decode() == vectors["pull"]["plaintext"]
    v = vectors["vault"]
    vault = Vault.unlock(v["passphrase"], v["params"])
    assert vault.decrypt(b64d(v["ciphertext_b64"]), v["aad"].encode()).decode() == v["plaintext"]


if __name__ == "__main__":
    if sys.argv[1:] != ["--write-vectors"]:
        sys.exit("usage: python -m tests.sync.test_crypto --write-vectors")
    write_vectors()
    print(f"wrote {VECTORS_PATH}")


def test_an_envelope_opens_the_same_with_its_header_parsed_by_the_caller() -> None:
    session = _start()
    info = _open(session)
    envelope = session.seal(EVENT_ID, 7, b'{"k": 1}')
    header = parse_envelope_header(envelope)
    assert open_envelope(envelope, info, header) == open_envelope(envelope, info)
    assert info.aead is info.aead  # made once per session
    with pytest.raises(AuthenticityError):  # the tag still covers the bytes themselves
        open_envelope(_flip(envelope, 20), info, header)
