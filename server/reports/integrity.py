"""Report folders' integrity: a SHA-256 manifest of every file and an Ed25519 signature of it.

``MANIFEST.sha256`` uses the ``sha256sum`` format (``<hex>  <name>``, sorted by name), so
``sha256sum -c MANIFEST.sha256`` also works. ``SIGNATURE`` is text: the algorithm, the signing
public key (for information: verification uses the key you trust) and the base64 signature
of the manifest's bytes, with the manifest's digest (to tell which of the two was altered).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MANIFEST = "MANIFEST.sha256"
SIGNATURE = "SIGNATURE"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def content_files(folder: Path) -> list[str]:
    """Names of the report's files (everything but the manifest and signature), sorted."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and p.name not in (MANIFEST, SIGNATURE)
    )


def manifest_bytes(folder: Path) -> bytes:
    return "".join(f"{sha256_file(folder / n)}  {n}\n" for n in content_files(folder)).encode()


def public_key_b64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes_raw()).decode()


def seal(folder: Path, key: Ed25519PrivateKey) -> str:
    """Write MANIFEST.sha256 and SIGNATURE into ``folder``; return the manifest's SHA-256."""
    manifest = manifest_bytes(folder)
    (folder / MANIFEST).write_bytes(manifest)
    signature = base64.b64encode(key.sign(manifest)).decode()
    text = _signature_text(public_key_b64(key.public_key()), manifest, signature)
    (folder / SIGNATURE).write_text(text, encoding="ascii")
    return hashlib.sha256(manifest).hexdigest()


def _signature_text(public_key: str, manifest: bytes, signature: str) -> str:
    return (
        "algorithm: Ed25519\n"
        f"public-key: {public_key}\n"
        f"manifest-sha256: {hashlib.sha256(manifest).hexdigest()}\n"
        f"signature: {signature}\n"
    )


def load_public_key(text: str) -> Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes, or a file holding that (or ``keys show``)."""
    value = text.strip()
    path = Path(value)
    if len(value) != 44 and path.is_file():
        value = path.read_text().strip()
        for line in value.splitlines():  # accept a SIGNATURE-style "public-key: ..." line
            if line.startswith("public-key:"):
                value = line.split(":", 1)[1].strip()
    try:
        raw = base64.b64decode(value, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("The public key is not base64 of a 32-byte Ed25519 key.") from exc


@dataclass
class Verdict:
    """What ``verify`` found: an empty list everywhere and a good signature means intact."""

    changed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    signature: str = "valid"

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.extra) and self.signature == "valid"

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "changed": self.changed,
            "missing": self.missing,
            "extra": self.extra,
            "signature": self.signature,
        }


def _parse_manifest(raw: bytes) -> dict[str, str] | None:
    out = {}
    try:
        for line in raw.decode().splitlines():
            digest, name = line.split("  ", 1)
            if len(digest) != 64:
                return None
            out[name] = digest
    except (UnicodeDecodeError, ValueError):
        return None
    return out


def verify(folder: Path, key: Ed25519PublicKey) -> Verdict:
    """Check every file of ``folder`` against its manifest and the manifest's signature."""
    verdict = Verdict()
    manifest_path, signature_path = folder / MANIFEST, folder / SIGNATURE
    if not manifest_path.is_file():
        verdict.missing.append(MANIFEST)
        verdict.signature = "no manifest"
        verdict.extra = content_files(folder)
        return verdict
    raw = manifest_path.read_bytes()
    listed = _parse_manifest(raw)
    if not signature_path.is_file():
        verdict.missing.append(SIGNATURE)
        verdict.signature = "missing"
    else:
        fields = {}
        for line in signature_path.read_text(errors="replace").splitlines():
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
        trusted = public_key_b64(key)
        try:
            key.verify(base64.b64decode(fields.get("signature", ""), validate=True), raw)
            expected = _signature_text(trusted, raw, fields.get("signature", ""))
            if signature_path.read_bytes() != expected.encode():
                verdict.signature = "altered"
                verdict.changed.append(SIGNATURE)
        except (InvalidSignature, binascii.Error, ValueError):
            verdict.signature = "invalid"
            if (
                fields.get("public-key") not in (None, trusted)
                and fields.get("manifest-sha256") == hashlib.sha256(raw).hexdigest()
            ):
                verdict.signature = "signed by another key"
            # Which of the two was altered: the manifest no longer has the digest recorded
            # at signing, or it has and so the signature file itself was changed.
            if fields.get("manifest-sha256") == hashlib.sha256(raw).hexdigest():
                verdict.changed.append(SIGNATURE)
            else:
                verdict.changed.append(MANIFEST)
    if listed is None:
        if MANIFEST not in verdict.changed:
            verdict.changed.append(MANIFEST)
        verdict.signature = "invalid"
        return verdict
    present = set(content_files(folder))
    for name, digest in sorted(listed.items()):
        if name not in present:
            verdict.missing.append(name)
        elif sha256_file(folder / name) != digest:
            verdict.changed.append(name)
    verdict.extra = sorted(present - set(listed))
    return verdict
