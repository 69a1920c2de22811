"""A key's limits as they apply to it, and how much of each is in use now (``GET /v1/usage/limits``)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

from vidgate.types.base import _Response


class SpendWindow(_Response):
    """One calendar window (UTC) of a spend limit; a create is refused when spent + held + its price
    would pass ``limit``."""

    limit: float | None  # USD; null: no limit
    spent: float  # charged since the window began
    held: float  # held now for jobs under way (it counts against the limit)
    remaining: float | None  # what a new job may still hold; null with no limit
    resets_at: str


class UsageLimits(_Response):
    """A key's limits as they apply to it (its own, else the gateway's defaults; null: none) and use now.

    ``rate_available`` is what the request-rate bucket holds now, this request's own token already
    taken: as many requests as its whole part may be sent at once. It refills at ``rate_per_second``
    up to ``rate_burst``, full again at ``rate_full_at``.
    """

    rate_per_second: float | None
    rate_burst: int | None
    rate_available: Annotated[
        float | None, Meta(description="Tokens in the request-rate bucket now, 0 to rate_burst; null: no rate limit")
    ]
    rate_full_at: Annotated[
        str | None,
        Meta(description="When the request-rate bucket is full again if no request is sent (ISO 8601, UTC)"),
    ]
    max_concurrent_jobs: int | None
    live_jobs: int  # queued or processing now, counted against max_concurrent_jobs
    daily: SpendWindow
    monthly: SpendWindow
    currency: str = "USD"
    object: str = "usage.limits"
