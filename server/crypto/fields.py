"""Column types that keep personal data unreadable in a copy of the database file alone.

- :class:`SealedTextField` stores AES-256-GCM ciphertext (``s1:`` + base64url of nonce and
  ciphertext) and gives back the plaintext on read. Used for document numbers, phone numbers
  and decoded event bodies (walk-in details, free-text notes).
- :class:`BlindIndexField` stores a keyed hash (HMAC-SHA256, ``b1:`` + 32 hex) of an already
  normalised value, so equality matching (re-imports, duplicate detection) still works in SQL
  while the value itself is not stored. peewee applies ``db_value`` to the right-hand side of
  comparisons, so ``Person.document_key == document_key(raw)`` compares hashes.

The key is ``keys/data.key`` in the instance folder, never in the database; two subkeys are
derived from it with HKDF. Names stay in clear so staff can search and sort them: a leaked
database gives names, but not with the documents or phone numbers that endanger people.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from peewee import CharField, TextField

_SEALED, _BLIND = "s1:", "b1:"
_AAD = b"muster/field/v1"


class _Keys:
    seal: AESGCM | None = None
    blind: bytes | None = None


def configure(data_key: bytes) -> None:
    """Install the instance's data key for this process (called when an app is created)."""

    def sub(label: bytes) -> bytes:
        return HKDF(hashes.SHA256(), 32, salt=None, info=label).derive(data_key)

    _Keys.seal = AESGCM(sub(b"muster/field-seal/v1"))
    _Keys.blind = sub(b"muster/field-blind/v1")


def _need(value: Any) -> Any:
    if value is None:
        raise RuntimeError("Personal-data keys are not loaded: run 'muster-server init' first.")
    return value


def seal(text: str) -> str:
    nonce = os.urandom(12)
    sealed = _need(_Keys.seal).encrypt(nonce, text.encode(), _AAD)
    return _SEALED + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def unseal(stored: str) -> str:
    raw = base64.urlsafe_b64decode(stored[len(_SEALED) :] + "=" * (-len(stored) % 4))
    return str(_need(_Keys.seal).decrypt(raw[:12], raw[12:], _AAD).decode())


def blind_index(normalised: str) -> str:
    """The stored form of a matching key: an HMAC, the same for the same value."""
    digest = hmac.new(_need(_Keys.blind), normalised.encode(), hashlib.sha256).hexdigest()
    return _BLIND + digest[:32]


class SealedTextField(TextField):
    """Text encrypted at rest; empty strings and None are stored as they are."""

    def db_value(self, value: Any) -> Any:
        if value is None or value == "" or not isinstance(value, str):
            return value
        if value.startswith(_SEALED):
            return value
        return seal(value)

    def python_value(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(_SEALED):
            return unseal(value)
        return value


class BlindIndexField(CharField):
    """A keyed hash of a normalised value, for equality matching without storing the value."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 40)
        super().__init__(**kwargs)

    def db_value(self, value: Any) -> Any:
        if value is None or value == "" or not isinstance(value, str):
            return value
        if value.startswith(_BLIND):
            return value
        return blind_index(value)
