"""The server's key material, kept as owner-only files in the instance ``keys/`` folder.

- ``hpke-<kid>.key``: X25519 private keys that open devices' capture sessions. The newest,
  named in ``current``, is handed to enrolling devices; older ones stay to open old sessions.
- ``report-signing.key``: the Ed25519 key that signs nightly reports.
- ``flask-secret.key``: the secret for signed cookies.
- ``data.key``: seals document numbers, phones and event bodies in the database
  (``server.crypto.fields``); without it a copy of the database does not give them.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from server.crypto import fields


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` readable by the owner only, refusing to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_kid() -> str:
    return dt.datetime.now(dt.UTC).strftime("k%Y%m%d") + "-" + secrets.token_hex(3)


@dataclass
class Keyring:
    """The server's private keys, loaded once per application."""

    directory: Path
    current_kid: str
    hpke: dict[str, X25519PrivateKey] = field(default_factory=dict)
    report_signing: Ed25519PrivateKey | None = None
    flask_secret: bytes = b""
    data_key: bytes = b""
    #: Modification stamp of ``current`` when loaded, so a rotation is noticed without restart.
    stamp: int = 0

    def is_stale(self) -> bool:
        """True when ``keys rotate`` has run since this keyring was loaded."""
        try:
            return (self.directory / "current").stat().st_mtime_ns != self.stamp
        except OSError:
            return False

    def public_keys(self) -> list[dict[str, str]]:
        """Public halves of the HPKE keys, current first (what devices pin)."""
        from sync.crypto import b64e

        order = [self.current_kid] + sorted(k for k in self.hpke if k != self.current_kid)
        return [
            {
                "kid": kid,
                "alg": "X25519-HKDF-SHA256-AES256GCM",
                "public_key": b64e(self.hpke[kid].public_key().public_bytes_raw()),
            }
            for kid in order
        ]


def ensure(directory: str | os.PathLike[str]) -> tuple[Keyring, bool]:
    """Load the keyring, creating any missing key on first start; say whether anything was made."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    created = False
    if not (path / "current").exists():
        kid = _new_kid()
        _write_private(path / f"hpke-{kid}.key", X25519PrivateKey.generate().private_bytes_raw())
        _write_private(path / "current", kid.encode())
        created = True
    if not (path / "report-signing.key").exists():
        _write_private(
            path / "report-signing.key", Ed25519PrivateKey.generate().private_bytes_raw()
        )
        created = True
    if not (path / "flask-secret.key").exists():
        _write_private(path / "flask-secret.key", secrets.token_bytes(32))
        created = True
    if not (path / "data.key").exists():
        _write_private(path / "data.key", secrets.token_bytes(32))
        created = True
    return load(path), created


def load(directory: str | os.PathLike[str]) -> Keyring:
    """Read every key from ``directory``."""
    path = Path(directory)
    ring = Keyring(
        directory=path,
        current_kid=(path / "current").read_text().strip(),
        stamp=(path / "current").stat().st_mtime_ns,
    )
    for item in sorted(path.glob("hpke-*.key")):
        kid = item.name[len("hpke-") : -len(".key")]
        ring.hpke[kid] = X25519PrivateKey.from_private_bytes(item.read_bytes())
    ring.report_signing = Ed25519PrivateKey.from_private_bytes(
        (path / "report-signing.key").read_bytes()
    )
    ring.flask_secret = (path / "flask-secret.key").read_bytes()
    ring.data_key = (path / "data.key").read_bytes()
    fields.configure(ring.data_key)
    return ring


def rotate(directory: str | os.PathLike[str]) -> str:
    """Make a new current HPKE key; old ones stay so old sessions still open. Return its kid."""
    path = Path(directory)
    kid = _new_kid()
    _write_private(path / f"hpke-{kid}.key", X25519PrivateKey.generate().private_bytes_raw())
    tmp = path / "current.tmp"
    if tmp.exists():
        tmp.unlink()
    _write_private(tmp, kid.encode())
    os.replace(tmp, path / "current")
    return kid
