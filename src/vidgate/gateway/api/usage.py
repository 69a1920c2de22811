"""``GET /v1/usage``: a key's own balance and spend by day and by model; ``GET /v1/usage/limits``: its
limits and how much of each is in use now, the request-rate bucket included."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import Response

from vidgate.gateway.api.http import caller, int_param, json_response, owner
from vidgate.gateway.billing import accounts
from vidgate.gateway.billing.limits import day_start, month_start, next_day, next_month
from vidgate.gateway.billing.pricing import usd
from vidgate.gateway.ids import now_ms
from vidgate.gateway.services import services
from vidgate.gateway.storage.db import Q
from vidgate.types import SpendWindow, UsageLimits

_SPENT_SINCE = Q(
    "SELECT CAST(COALESCE(-SUM(amount), 0) AS BIGINT) AS spent FROM ledger "
    "WHERE owner_id = :owner AND kind = 'charge' AND created_at >= :since"
)
_LIVE_JOBS = Q("SELECT COUNT(*) AS n FROM jobs WHERE owner_id = :owner AND status IN ('queued', 'processing')")


async def usage(request: Request) -> Response:
    who = await owner(request)
    days = int_param(request, "days", 30, 1, 366)
    return json_response(await accounts.usage(services(request).db, who, days))


async def limits(request: Request) -> Response:
    g = services(request)
    principal = await caller(request)
    who = principal.owner_id
    now = now_ms()
    acct = await accounts.account(g.db, who)
    day = await g.db.fetchone(_SPENT_SINCE, {"owner": who, "since": day_start(now)})
    month = await g.db.fetchone(_SPENT_SINCE, {"owner": who, "since": month_start(now)})
    live = await g.db.fetchone(_LIVE_JOBS, {"owner": who})
    # Read afresh, not from the cached key: a limit just changed shows at once. The defaults and the
    # burst are the ones the request throttle (auth.Keys.throttle) applies.
    rate = float(acct["rate_per_second"] or g.keys.default_rate)
    burst = acct["rate_burst"] or g.keys.default_burst or max(1, int(rate))
    held = acct["held"]
    # The bucket the throttle takes from (this request's token already taken), read without taking.
    available = await g.keys.limiter.level(principal.key_id, rate, burst) if rate > 0 else None
    return json_response(
        UsageLimits(
            rate_per_second=rate or None,
            rate_burst=burst if rate > 0 else None,
            rate_available=None if available is None else round(available, 3),
            rate_full_at=None if available is None else full_at(now, available, rate, burst),
            max_concurrent_jobs=acct["max_concurrent_jobs"] or g.jobs.max_concurrent_jobs or None,
            live_jobs=int(live["n"]) if live else 0,
            daily=window(acct["daily_limit"], day["spent"] if day else 0, held, next_day(now).isoformat()),
            monthly=window(acct["monthly_limit"], month["spent"] if month else 0, held, next_month(now).isoformat()),
        )
    )


def window(limit: int | None, spent: int, held: int, resets_at: str) -> SpendWindow:
    """A spend window from micro-dollar amounts; a limit of 0 is no limit, as the create's check reads it."""
    remaining = None if not limit else usd(max(0, limit - spent - held))
    return SpendWindow(
        limit=usd(limit) if limit else None, spent=usd(spent), held=usd(held), remaining=remaining, resets_at=resets_at
    )


def full_at(now_ms: int, available: float, rate: float, burst: int) -> str:
    """When a bucket holding ``available`` of ``burst`` tokens, refilled at ``rate`` a second, is full."""
    ms = now_ms + max(0, round((burst - available) / rate * 1000))
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")  # as resets_at is written
