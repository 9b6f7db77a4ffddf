"""Rate limiting: in-memory token buckets that answer floods with 429 and a Retry-After header.

Three limits, each a ``"N/unit"`` string in the config (empty disables it):

- ``RATE_LIMIT_LOGIN``  POST /api/v1/tokens, per client address and username
- ``RATE_LIMIT_ENROL``  POST /api/v1/sync/enrol, per client address
- ``RATE_LIMIT_SYNC``   every other /api/v1/sync/ request, per device id

The buckets live in the process, so a restart refills them and several server processes each
count on their own; that bounds a flood per process, which is what this is for. The device id
is read before the signature is checked (a refused request must cost little), so a client that
spoofs another device's id spends that device's budget; the sync default is generous enough
that a real device is not slowed, and a signed request is still required for anything else.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, current_app, request

from server.errors import error_response
from sync.protocol import HEADER_DEVICE, ErrorCode

UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
#: Keys kept per limit before full (idle) buckets are dropped; bounds memory under floods.
MAX_KEYS = 10_000


@dataclass(frozen=True)
class Rate:
    """``capacity`` requests at once, refilled at ``capacity / period`` per second."""

    capacity: int
    period: float

    @property
    def per_second(self) -> float:
        return self.capacity / self.period


def parse_rate(spec: str | None) -> Rate | None:
    """Parse ``"10/minute"`` (or ``second``, ``hour``, ``day``); empty or None means no limit."""
    if spec is None or str(spec).strip() == "":
        return None
    count, _, unit = str(spec).strip().partition("/")
    unit = unit.strip().lower().rstrip("s") or "second"
    if unit not in UNITS or not count.strip().isdigit() or int(count) < 1:
        raise ValueError(f"A rate limit looks like '10/minute'; got {spec!r}.")
    return Rate(int(count), UNITS[unit])


class TokenBucketLimiter:
    """One bucket per key; thread-safe; ``take`` answers 0 when allowed, else seconds to wait."""

    def __init__(self, rate: Rate, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> float:
        """Spend one token for ``key``; return 0.0 if allowed, else the wait until one refills."""
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (float(self.rate.capacity), now))
            tokens = min(self.rate.capacity, tokens + (now - stamp) * self.rate.per_second)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > MAX_KEYS:
                    self._evict(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate.per_second

    def _evict(self, now: float) -> None:
        """Drop buckets that have refilled (they hold no state a new bucket would not)."""
        full = [
            k
            for k, (tokens, stamp) in self._buckets.items()
            if tokens + (now - stamp) * self.rate.per_second >= self.rate.capacity
        ]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) > MAX_KEYS:
            # Still flooded by distinct keys: forget the oldest half rather than grow.
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k][1])
            for k in oldest[: len(oldest) // 2]:
                del self._buckets[k]


def _limiters(app: Flask) -> dict[str, TokenBucketLimiter | None]:
    return {
        name: (TokenBucketLimiter(rate) if (rate := parse_rate(app.config.get(key))) else None)
        for name, key in (
            ("login", "RATE_LIMIT_LOGIN"),
            ("enrol", "RATE_LIMIT_ENROL"),
            ("sync", "RATE_LIMIT_SYNC"),
        )
    }


def _key_for_request() -> tuple[str, str] | None:
    """Which limit applies to this request, and the bucket key; None when none applies."""
    path, addr = request.path, request.remote_addr or "-"
    if request.method == "POST" and path == "/api/v1/tokens":
        body = request.get_json(silent=True)
        username = body.get("username") if isinstance(body, dict) else None
        return "login", f"{addr}|{str(username)[:200].lower()}"
    if request.method == "POST" and path == "/api/v1/sync/enrol":
        return "enrol", addr
    if path.startswith("/api/v1/sync/"):
        return "sync", request.headers.get(HEADER_DEVICE, "")[:64] or f"addr:{addr}"
    return None


def check() -> Response | None:
    """The before-request hook: None to go on, or the 429 answer."""
    which = _key_for_request()
    if which is None:
        return None
    limiter = current_app.extensions["muster.ratelimit"].get(which[0])
    if limiter is None:
        return None
    wait = limiter.take(which[1])
    if wait <= 0.0:
        return None
    retry_after = max(1, math.ceil(wait))
    resp = error_response(
        ErrorCode.RATE_LIMITED,
        "Too many requests; wait and try again.",
        {"retry_after": retry_after},
    )
    resp.headers["Retry-After"] = str(retry_after)
    return resp


def init_app(app: Flask) -> None:
    """Build the limiters from the config and check each request before any view runs."""
    app.extensions["muster.ratelimit"] = _limiters(app)
    app.before_request(check)
