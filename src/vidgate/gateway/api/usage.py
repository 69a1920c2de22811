"""``GET /v1/usage``: a key's own balance and spend by day and by model; ``GET /v1/usage/limits``: its
limits and how much of each is in use now."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from vidgate.gateway.api.http import int_param, json_response, owner
from vidgate.gateway.billing import accounts
from vidgate.gateway.billing.limits import day_start, month_start, next_day, next_month
from vidgate.gateway.billing.pricing import usd
from vidgate.gateway.ids import now_ms
from vidgate.gateway.services import services
from vidgate.gateway.storage.db import Q

_SPENT_SINCE = Q(
    "SELECT CAST(COALESCE(-SUM(amount), 0) AS BIGINT) AS spent FROM ledger "
    "WHERE owner_id = :owner AND kind = 'charge' AND created_at >= :since"
)
_LIVE_JOBS = Q("SELECT COUNT(*) AS n FROM jobs WHERE owner_id = :owner AND status IN ('queued', 'processing')")


class SpendWindow(msgspec.Struct):
    """One calendar window (UTC) of a spend limit; a create is refused when spent + held + its price
    would pass ``limit``."""

    limit: float | None  # USD; null: no limit
    spent: float  # charged since the window began
    held: float  # held now for jobs under way (it counts against the limit)
    remaining: float | None  # what a new job may still hold; null with no limit
    resets_at: str


class UsageLimits(msgspec.Struct):
    """A key's limits as they apply to it (its own, else the gateway's defaults; null: none) and use now."""

    rate_per_second: float | None
    rate_burst: int | None
    max_concurrent_jobs: int | None
    live_jobs: int  # queued or processing now, counted against max_concurrent_jobs
    daily: SpendWindow
    monthly: SpendWindow
    currency: str = "USD"
    object: str = "usage.limits"


async def usage(request: Request) -> Response:
    who = await owner(request)
    days = int_param(request, "days", 30, 1, 366)
    return json_response(await accounts.usage(services(request).db, who, days))


async def limits(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
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
    return json_response(
        UsageLimits(
            rate_per_second=rate or None,
            rate_burst=burst if rate > 0 else None,
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
