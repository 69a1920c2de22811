"""Per-key limits: a token bucket for request rate, and calendar windows for spend. Pure logic."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


@dataclass
class TokenBucket:
    """``rate`` tokens a second up to ``burst``; ``take`` answers how long to wait when empty."""

    rate: float
    burst: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def take(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        self.tokens = self.level(now)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    def level(self, now: float | None = None) -> float:
        """The tokens there now, refilled since the last take; nothing is taken."""
        now = time.monotonic() if now is None else now
        if self.tokens < 0:  # never taken from: full
            return self.burst
        return min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate)


class Limiter(Protocol):
    async def take(self, key: str, rate: float, burst: int) -> float:
        """Take one token from ``key``'s bucket: 0 when taken, else the seconds until one is there."""
        ...

    async def level(self, key: str, rate: float, burst: int) -> float:
        """The tokens in ``key``'s bucket now (a bucket never taken from is full); nothing is taken."""
        ...


class RateLimiter:
    """One bucket per key in this process: for the embedded database, which one process serves
    (on PostgreSQL every API process takes from the same buckets: ``billing/rate_buckets.py``)."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def _current(self, key: str, rate: float, burst: int) -> TokenBucket | None:
        """The key's bucket, unless there is none or its limits changed (the next take starts a full one)."""
        bucket = self._buckets.get(key)
        return bucket if bucket is not None and bucket.rate == rate and bucket.burst == burst else None

    def check(self, key: str, rate: float, burst: int) -> float:
        burst = max(1, burst)
        bucket = self._current(key, rate, burst)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate=rate, burst=burst)
        return bucket.take()

    async def take(self, key: str, rate: float, burst: int) -> float:
        return self.check(key, rate, burst)

    async def level(self, key: str, rate: float, burst: int) -> float:
        burst = max(1, burst)
        bucket = self._current(key, rate, burst)
        return float(burst) if bucket is None else bucket.level()


def day_start(now_ms: int) -> int:
    d = datetime.fromtimestamp(now_ms / 1000, UTC)
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)


def month_start(now_ms: int) -> int:
    d = datetime.fromtimestamp(now_ms / 1000, UTC)
    return int(datetime(d.year, d.month, 1, tzinfo=UTC).timestamp() * 1000)


def next_day(now_ms: int) -> datetime:
    return datetime.fromtimestamp(day_start(now_ms) / 1000, UTC) + timedelta(days=1)


def next_month(now_ms: int) -> datetime:
    d = datetime.fromtimestamp(month_start(now_ms) / 1000, UTC)
    return datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=UTC)
