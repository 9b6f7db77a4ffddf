"""API bearer tokens: random, shown once, stored as SHA-256, expiring and revocable."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from server.models import ApiToken, StaffUser, utcnow

PREFIX = "mst_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(staff: StaffUser, *, ttl_hours: float, label: str = "") -> tuple[str, ApiToken]:
    """Create a token for ``staff``; return the secret (shown once) and its row."""
    secret = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.create(
        staff=staff,
        token_hash=_digest(secret),
        label=label[:100],
        expires_at=utcnow() + dt.timedelta(hours=ttl_hours),
    )
    return secret, row


def lookup(secret: str) -> ApiToken | None:
    """The live token row for ``secret``, or None if unknown, revoked, expired or disabled."""
    if not secret.startswith(PREFIX):
        return None
    row = ApiToken.get_or_none(ApiToken.token_hash == _digest(secret))
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    if not row.staff.is_active:
        return None
    return row


def revoke(row: ApiToken) -> None:
    """Revoke one token; the next request with it is refused."""
    ApiToken.update(revoked_at=utcnow()).where(ApiToken.id == row.id).execute()
