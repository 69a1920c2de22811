"""Prometheus metrics: counters and histograms kept in-process, gauges read from the database at scrape.

Each process exports its own counters (HTTP latency in the API, upstream calls in the workers, which
serve them on ``VIDGATE_WORKER_METRICS_PORT``); the job, queue and webhook gauges come from the shared
database, so any process answers them for the whole deployment. Every label takes its values from a
closed set, so no request can add a series: a made-up method counts as ``other``, an unusual status
as its class. The ``/metrics`` route itself is in ``api/health.py``.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import HistogramMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidgate.gateway.ids import now_ms
from vidgate.gateway.storage.db import Database, Q

REGISTRY = CollectorRegistry()

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Every status the gateway answers with; any other is counted under its class ("5xx").
STATUSES = frozenset(
    {200, 201, 202, 204, 206, 304, 400, 401, 402, 403, 404, 405, 408, 409, 413, 415, 416, 426, 429}
    | {500, 501, 502, 503, 504}
)
_CLASSES = ("other", "1xx", "2xx", "3xx", "4xx", "5xx")


def status_label(status: int) -> int | str:
    """``status`` itself when it is one the gateway uses, else its class: a closed set of values."""
    if status in STATUSES:
        return status
    return _CLASSES[status // 100] if 100 <= status < 600 else "other"


class RequestLatency:
    """The HTTP latency histogram, kept as plain per-series lists and exported at scrape time.

    ``prometheus_client``'s Histogram takes a lock for each count it bumps, a visible share of a
    poll's CPU; requests are counted on the event loop, so bisecting into a list does the same job.
    """

    BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self.series: dict[tuple[str, int | str], list[float]] = {}  # per bucket counts, +Inf, then the sum

    def observe(self, method: str, status: int, seconds: float) -> None:
        key = (method if method in METHODS else "other", status if status in STATUSES else status_label(status))
        counts = self.series.get(key)
        if counts is None:
            counts = self.series[key] = [0] * (len(self.BOUNDS) + 2)
        counts[bisect_left(self.BOUNDS, seconds)] += 1
        counts[-1] += seconds

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=["method", "status"])
        edges = [*(repr(b) for b in self.BOUNDS), "+Inf"]
        for (method, status), counts in list(self.series.items()):
            cumulative = list(accumulate(counts[:-1]))
            family.add_metric([method, str(status)], list(zip(edges, cumulative, strict=True)), counts[-1])
        yield family


HTTP_LATENCY = RequestLatency("vidgate_http_request_duration_seconds", "HTTP request latency")
REGISTRY.register(HTTP_LATENCY)  # type: ignore[arg-type]
UPSTREAM_LATENCY = Histogram(
    "vidgate_upstream_request_duration_seconds",
    "Upstream call latency",
    ["provider", "operation"],
    registry=REGISTRY,
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPSTREAM_ERRORS = Counter(
    "vidgate_upstream_errors_total",
    "Upstream calls that failed",
    ["provider", "operation", "retryable"],
    registry=REGISTRY,
)
JOBS = Gauge(
    "vidgate_jobs", "Live (queued or processing) jobs by status and provider", ["status", "provider"], registry=REGISTRY
)
QUEUE_DEPTH = Gauge("vidgate_queue_depth", "Jobs due for the worker now", registry=REGISTRY)
WEBHOOK_BACKLOG = Gauge("vidgate_webhook_backlog", "Webhook deliveries not yet delivered", registry=REGISTRY)

# Live jobs only: a range of the (status, completed_at) index, where counting every finished job
# would scan the whole table at each scrape (seconds at a million jobs, on an embedded server's loop).
_JOBS = Q(
    "SELECT status, provider, COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'processing') "
    "GROUP BY status, provider"
)
_DUE = Q("SELECT COUNT(*) AS n FROM jobs WHERE next_run_at IS NOT NULL AND next_run_at <= :now")
# Pending deliveries always have a next attempt: the partial index on it keeps this off a table scan.
_BACKLOG = Q("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE next_attempt_at IS NOT NULL AND status = 'pending'")


class MetricsMiddleware:
    """Times every HTTP request; two clock reads and one histogram update."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            HTTP_LATENCY.observe(scope["method"], status, time.perf_counter() - start)


def observe_upstream(provider: str, operation: str, seconds: float, error: Any = None) -> None:
    UPSTREAM_LATENCY.labels(provider, operation).observe(seconds)
    if error is not None:
        upstream_failed(provider, operation, error)


def upstream_failed(provider: str, operation: str, error: Any) -> None:
    """Count a failed upstream call (``retryable`` from the error: whether trying again can help)."""
    UPSTREAM_ERRORS.labels(provider, operation, str(bool(getattr(error, "retryable", False))).lower()).inc()


async def scrape(db: Database) -> bytes:
    """Every metric in the text exposition format, the gauges read from the database first."""
    JOBS.clear()
    for row in await db.fetchall(_JOBS):
        JOBS.labels(row["status"], row["provider"] or "").set(row["n"])
    QUEUE_DEPTH.set((await db.fetchone(_DUE, {"now": now_ms()}) or {"n": 0})["n"])
    WEBHOOK_BACKLOG.set((await db.fetchone(_BACKLOG) or {"n": 0})["n"])
    return generate_latest(REGISTRY)
