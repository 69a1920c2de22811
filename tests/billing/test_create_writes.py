"""What a create writes, in process, on each backend (PostgreSQL writes it in one statement,
``jobs/create_pg.py``): the job, its hold and ledger entry, its ``video.created`` event whose data is
the stored row's view, a webhook delivery when asked, and nothing at all when a limit, the balance
or another create with the same idempotency key refuses it, however many creates run at once."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from vidgate.errors import ConflictError, InsufficientFundsError, RateLimitError, SpendLimitExceededError
from vidgate.gateway.billing import accounts
from vidgate.gateway.services import Gateway
from vidgate.gateway.settings import load_settings
from vidgate.gateway.storage.db import Q
from vidgate.gateway.storage.migrate import migrate
from vidgate.types import Video

BACKENDS = [b for b in os.environ.get("VIDGATE_TEST_BACKENDS", "sqlite,postgres").split(",") if b]
BODY = msgspec.json.encode({"model": "vidgate/procedural", "prompt": "a lighthouse", "duration": 1, "size": "64x64"})
_names = itertools.count()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vidgate.db'}"
    url: str = request.getfixturevalue("pg_server").create_database(f"creates_{os.getpid()}_{next(_names)}")
    migrate(url)
    return url


@pytest.fixture
async def gw(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    """A gateway without a worker (jobs stay queued)."""
    gw = await Gateway.open(load_settings(env={}, data_dir=str(tmp_path), database_url=database_url))
    yield gw
    await gw.close()


async def one(gw: Gateway, sql: str, **params: Any) -> Any:
    row = await gw.db.fetchone(Q(sql), params)
    assert row is not None
    return next(iter(dict(row).values()))


async def ledger_holds(gw: Gateway, owner: str) -> tuple[int, int, int]:
    """(held on the account, sum of hold and release entries, number of jobs) for ``owner``."""
    held = await one(gw, "SELECT held FROM accounts WHERE owner_id = :o", o=owner)
    entries = await one(
        gw,
        "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM ledger "
        "WHERE owner_id = :o AND kind IN ('hold','release')",
        o=owner,
    )
    jobs = await one(gw, "SELECT COUNT(*) FROM jobs WHERE owner_id = :o", o=owner)
    return held, entries, jobs


async def test_a_create_writes_its_hold_and_an_event_showing_the_stored_row(gw: Gateway) -> None:
    owner = (await gw.keys.create("t", 10_000_000)).id
    hooked = msgspec.json.encode(
        {
            **msgspec.json.decode(BODY),
            "webhook": {"url": "https://example.com/hook", "secret": "whsec-test-1234", "events": ["video.created"]},
        }
    )
    job, created = await gw.jobs.create(owner, hooked, idempotency_key=None, request_id="req_1")
    assert created and job.status == "queued" and job.billing_state == "held" and job.quote > 0
    assert await ledger_holds(gw, owner) == (job.quote, job.quote, 1)

    events = await gw.db.fetchall(Q("SELECT id, type, data FROM events WHERE job_id = :id"), {"id": job.id})
    assert [e["type"] for e in events] == ["video.created"]
    stored = await gw.jobs.row(owner, job.id)
    shown = msgspec.json.decode(events[0]["data"], type=Video)
    expected = gw.jobs.view(stored)
    # The event carries the row as it was written; only the signed link's expiry may differ by the clock.
    assert msgspec.structs.replace(shown, download_url=None) == msgspec.structs.replace(expected, download_url=None)
    deliveries = await gw.db.fetchall(
        Q("SELECT event_id, url, status FROM webhook_deliveries WHERE job_id = :id"), {"id": job.id}
    )
    assert [(d["event_id"], d["url"], d["status"]) for d in deliveries] == [
        (events[0]["id"], "https://example.com/hook", "pending")
    ]


async def test_creates_racing_on_one_idempotency_key_write_one_job_and_one_hold(gw: Gateway) -> None:
    owner = (await gw.keys.create("t", 10_000_000)).id

    async def create() -> tuple[str, bool]:
        try:
            job, created = await gw.jobs.create(owner, BODY, idempotency_key="same", request_id="req_k")
        except ConflictError:  # the winner had not committed yet when this one looked: the client retries
            return "", False
        return job.id, created

    results = await asyncio.gather(*(create() for _ in range(20)))
    assert sum(created for _, created in results) == 1
    winner = next(job_id for job_id, created in results if created)
    assert {job_id for job_id, _ in results} <= {winner, ""}
    quote = (await gw.jobs.row(owner, winner)).quote
    assert await ledger_holds(gw, owner) == (quote, quote, 1)
    assert await one(gw, "SELECT COUNT(*) FROM events WHERE owner_id = :o", o=owner) == 1


async def test_the_last_of_a_balance_goes_to_exactly_as_many_creates_as_it_pays_for(gw: Gateway) -> None:
    probe = (await gw.keys.create("probe", 10_000_000)).id
    quote = (await gw.jobs.create(probe, BODY, idempotency_key=None, request_id="req_p"))[0].quote
    owner = (await gw.keys.create("t", 3 * quote + quote // 2)).id

    async def create() -> str:
        try:
            return (await gw.jobs.create(owner, BODY, idempotency_key=None, request_id="req_b"))[0].id
        except InsufficientFundsError as exc:
            assert exc.details["required"] == quote / 1e6
            return ""

    made = [job_id for job_id in await asyncio.gather(*(create() for _ in range(12))) if job_id]
    assert len(made) == 3
    assert await ledger_holds(gw, owner) == (3 * quote, 3 * quote, 3)
    assert await one(gw, "SELECT COUNT(*) FROM events WHERE owner_id = :o", o=owner) == 3


async def test_a_refused_create_writes_nothing(gw: Gateway) -> None:
    owner = (await gw.keys.create("t", 10_000_000)).id
    await accounts.set_limits(gw.db, owner, {"max_concurrent_jobs": 2})
    made = [(await gw.jobs.create(owner, BODY, idempotency_key=None, request_id="req_c"))[0] for _ in range(2)]
    with pytest.raises(RateLimitError, match=r"already has 2 jobs queued or running \(limit 2\)"):
        await gw.jobs.create(owner, BODY, idempotency_key=None, request_id="req_c")
    quote = made[0].quote
    assert await ledger_holds(gw, owner) == (2 * quote, 2 * quote, 2)

    await accounts.set_limits(gw.db, owner, {"max_concurrent_jobs": None, "daily_limit": 2 * quote + quote // 2})
    with pytest.raises(SpendLimitExceededError, match="daily spend limit") as refused:
        await gw.jobs.create(owner, BODY, idempotency_key="k1", request_id="req_s")
    assert refused.value.details["limit"] == "daily" and int(refused.value.headers["Retry-After"]) >= 1
    await accounts.set_limits(gw.db, owner, {"daily_limit": None, "monthly_limit": 2 * quote})
    with pytest.raises(SpendLimitExceededError, match="monthly spend limit"):
        await gw.jobs.create(owner, BODY, idempotency_key=None, request_id="req_s")
    assert await ledger_holds(gw, owner) == (2 * quote, 2 * quote, 2)
    assert await one(gw, "SELECT COUNT(*) FROM events WHERE owner_id = :o", o=owner) == 2

    await accounts.set_limits(gw.db, owner, {"monthly_limit": None})
    _, created = await gw.jobs.create(owner, BODY, idempotency_key="k1", request_id="req_s")
    assert created and await ledger_holds(gw, owner) == (3 * quote, 3 * quote, 3)
