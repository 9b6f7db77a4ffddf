"""Password hashing with scrypt (memory-hard) from ``cryptography``.

Stored form: ``scrypt$<log2 n>$<r>$<p>$<salt b64>$<hash b64>``, so parameters can grow
without invalidating old hashes.
"""

from __future__ import annotations

import base64
import hmac
import os
import secrets

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

# 2**15 * 8 * 128 bytes = 32 MiB per hash, ~0.1 s on this class of machine.
LOG_N, R, P = 15, 8, 1
_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, *, log_n: int = LOG_N) -> str:
    """Return the storable scrypt hash of ``password`` with a fresh salt."""
    salt = os.urandom(16)
    key = Scrypt(salt=salt, length=32, n=2**log_n, r=R, p=P).derive(password.encode())
    return f"scrypt${log_n}${R}${P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches ``stored``; never raises on a malformed hash."""
    try:
        scheme, log_n, r, p, salt, expected = stored.split("$")
        if scheme != "scrypt":
            return False
        kdf = Scrypt(salt=_unb64(salt), length=32, n=2 ** int(log_n), r=int(r), p=int(p))
        kdf.verify(password.encode(), _unb64(expected))
        return True
    except (ValueError, InvalidKey):
        return False


def generate_password(length: int = 20) -> str:
    """A random password without look-alike characters, for one-time display."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
