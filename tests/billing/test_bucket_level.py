"""Reading a token bucket's level takes nothing from it (pure, on a given clock)."""

from __future__ import annotations

import time

import pytest

from vidgate.gateway.billing.limits import RateLimiter, TokenBucket


def test_the_level_refills_and_takes_nothing() -> None:
    bucket = TokenBucket(rate=2, burst=5, stamp=100.0)
    assert bucket.level(100.0) == 5  # never taken from: full
    for _ in range(4):
        assert bucket.take(100.0) == 0
    assert bucket.level(100.0) == pytest.approx(1)
    assert bucket.level(100.0) == pytest.approx(1)  # reading twice took nothing
    assert bucket.level(101.0) == pytest.approx(3)
    assert bucket.level(110.0) == 5  # never past the burst
    assert bucket.take(100.0) == 0 and bucket.take(100.0) > 0


async def test_the_limiter_reads_the_bucket_it_takes_from() -> None:
    limiter = RateLimiter()
    assert await limiter.level("key", 1, 10) == 10
    started = time.monotonic()
    for _ in range(3):
        assert await limiter.take("key", 1, 10) == 0
    level = await limiter.level("key", 1, 10)
    assert 7 <= level <= 7 + (time.monotonic() - started)  # refilled at one a second since, at most
    assert await limiter.level("key", 1, 20) == 20  # new limits start a full bucket, as the next take does
