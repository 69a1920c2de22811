"""Provider health and request buckets shared through the database, process by process.

Each "process" here is its own ``SharedHealth`` or ``SharedRateLimiter`` on its own connection (pool)
to one real database, PostgreSQL or SQLite: what one writes, another reads; what one takes from a
bucket, the other cannot take again.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from infra.postgres import PostgresUnavailable, find_pg_bindir
from vidgate.gateway.billing.rate_buckets import SharedRateLimiter
from vidgate.gateway.providers.base import PollFailed, Rejected, UnknownOutcome
from vidgate.gateway.providers.health import HealthRecord, Outcomes, counts_against, error_class, merge
from vidgate.gateway.providers.health_store import SharedHealth
from vidgate.gateway.storage.db import Database, Q, open_database
from vidgate.gateway.storage.migrate import migrate

try:
    find_pg_bindir()
    PG_MISSING = None
except PostgresUnavailable as exc:
    PG_MISSING = str(exc)

needs_pg = pytest.mark.skipif(PG_MISSING is not None, reason=PG_MISSING or "")
POLICY: Callable[[str], tuple[int, int]] = lambda name: (3, 60_000)  # noqa: E731
_names = iter(range(1_000_000))


# ---- the rules, pure -----------------------------------------------------------------------------


def test_failures_from_several_processes_add_up_and_one_success_closes() -> None:
    record = HealthRecord(provider="p")
    a, b = Outcomes(), Outcomes()
    a.add(False, 1_000, "PollFailed 503")
    b.add(False, 1_100, "Rejected 502")
    record = merge(record, a, now=1_200, threshold=3, cooldown_ms=60_000)
    record = merge(record, b, now=1_300, threshold=3, cooldown_ms=60_000)
    assert (record.failures, record.state(1_300)) == (2, "failing")
    c = Outcomes()
    c.add(False, 1_400, "UnknownOutcome")
    record = merge(record, c, now=1_500, threshold=3, cooldown_ms=60_000)
    assert record.failures == 3 and record.open_until == 61_400 and record.state(1_500) == "open"
    assert record.last_error == "UnknownOutcome" and record.last_failure_at == 1_400
    assert record.state(61_401) == "failing"  # the cooldown is over: routing tries it again
    ok = Outcomes()
    ok.add(True, 2_000)
    closed = merge(record, ok, now=2_100, threshold=3, cooldown_ms=60_000)
    assert (closed.failures, closed.open_until, closed.state(2_100)) == (0, 0, "healthy")
    assert closed.last_success_at == 2_000 and closed.last_failure_at == 1_400


def test_a_success_older_than_anothers_failure_does_not_close_the_circuit() -> None:
    record = merge(HealthRecord(provider="p"), _failing(3, at=5_000), now=5_000, threshold=3, cooldown_ms=60_000)
    stale = Outcomes()
    stale.add(True, 4_000)  # seen before the failures, written after them
    assert merge(record, stale, now=6_000, threshold=3, cooldown_ms=60_000).state(6_000) == "open"


def test_outcomes_in_order_fold_as_one() -> None:
    first, later = _failing(2, at=100), Outcomes()
    later.add(True, 200)
    later.add(False, 300, "PollFailed")
    both = first.then(later)
    assert (both.failures, both.succeeded, both.last_error) == (1, True, "PollFailed")
    assert first.then(_failing(2, at=400)).failures == 4


def test_the_record_names_the_error_class_never_its_message() -> None:
    secret_body = "sk-live-123 said: quota exceeded for org acme"
    assert error_class(PollFailed(secret_body, retryable=True, status_code=503)) == "PollFailed 503"
    assert error_class(UnknownOutcome(secret_body, retryable=True)) == "UnknownOutcome"
    # A refusal of one request (moderation, bad input) is the request's fault, not the provider's.
    assert not counts_against(Rejected(secret_body, retryable=False, status_code=400))
    assert counts_against(Rejected(secret_body, retryable=True, status_code=503))


def _failing(n: int, at: int) -> Outcomes:
    seen = Outcomes()
    for i in range(n):
        seen.add(False, at + i, "PollFailed 500")
    return seen


# ---- shared through a real database -------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=needs_pg)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        url = request.getfixturevalue("pg_server").create_database(f"shared_{os.getpid()}_{next(_names)}")
    await asyncio.to_thread(migrate, url)
    yield url


async def _open_two(url: str) -> tuple[Database, Database]:
    return await open_database(url), await open_database(url)


_UPDATED = Q("SELECT updated_at, state, failures, last_error FROM provider_health WHERE provider = :p")


async def test_a_circuit_opened_by_one_process_is_seen_by_another_and_closed_by_it(database_url: str) -> None:
    db_a, db_b = await _open_two(database_url)
    try:
        worker, api = SharedHealth(POLICY), SharedHealth(POLICY)
        worker.attach(db_a)
        api.attach(db_b)
        for _ in range(3):
            worker.saw("acme", False, "PollFailed 503")
        assert worker.open_circuits() == {"acme"}  # its own calls count at once, before any write
        await api.refresh(max_age=0)
        assert api.open_circuits() == frozenset()
        await worker.sync()
        await api.refresh(max_age=0)
        assert api.open_circuits() == {"acme"}
        assert api.view("acme").last_error == "PollFailed 503"
        row = await db_b.fetchone(_UPDATED, {"p": "acme"})
        assert row is not None and (row["state"], row["failures"]) == ("open", 3)

        other = SharedHealth(POLICY)  # a second worker, started after the circuit opened
        other.attach(db_b)
        await other.sync()
        assert other.open_circuits() == {"acme"}
        other.saw("acme", True)
        await other.sync()
        await worker.sync()
        assert worker.open_circuits() == frozenset() and worker.view("acme").state(0) == "healthy"
    finally:
        await db_a.close()
        await db_b.close()


async def test_successes_on_a_healthy_provider_are_not_written(database_url: str) -> None:
    db_a, db_b = await _open_two(database_url)
    try:
        worker = SharedHealth(POLICY)
        worker.attach(db_a)
        worker.saw("acme", True)
        await worker.sync()  # the first success makes the record
        first = await db_b.fetchone(_UPDATED, {"p": "acme"})
        assert first is not None and first["state"] == "healthy"
        for _ in range(200):
            worker.saw("acme", True)
        await worker.sync()
        await worker.sync()
        again = await db_b.fetchone(_UPDATED, {"p": "acme"})
        assert again is not None and again["updated_at"] == first["updated_at"]
        worker.saw("acme", False, "PollFailed 500")  # a failure is news: written at the next sync
        await worker.sync()
        failed = await db_b.fetchone(_UPDATED, {"p": "acme"})
        assert failed is not None and (failed["state"], failed["failures"]) == ("failing", 1)
    finally:
        await db_a.close()
        await db_b.close()


@needs_pg
async def test_two_processes_share_one_bucket_per_key(pg_server: Any) -> None:
    url = pg_server.create_database(f"bucket_{os.getpid()}_{next(_names)}")
    await asyncio.to_thread(migrate, url)
    db_a, db_b = await _open_two(url)
    try:
        limiters = [SharedRateLimiter(db_a), SharedRateLimiter(db_b)]
        rate, burst = 4.0, 3
        taken, refused, waits = 0, 0, []
        started = time.monotonic()
        i = 0
        while time.monotonic() - started < 2.0:
            wait = await limiters[i % 2].take("key_a", rate, burst)
            i += 1
            if wait == 0:
                taken += 1
            else:
                refused += 1
                waits.append(wait)
            await asyncio.sleep(0.002)
        elapsed = time.monotonic() - started
        # One bucket for both: never more than it holds plus what it refilled, and it does refill.
        assert burst + 1 <= taken <= burst + rate * elapsed + 1, (taken, elapsed)
        assert refused > taken and all(0 < w <= 1 / rate + 0.01 for w in waits)
        assert await limiters[0].take("key_b", rate, burst) == 0  # another key has its own bucket
    finally:
        await db_a.close()
        await db_b.close()
