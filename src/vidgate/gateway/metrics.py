"""Prometheus metrics: counters and histograms kept in-process, gauges read from the database at scrape.

Each process exports its own counters (HTTP latency, upstream calls); the job, queue and webhook
gauges come from the shared database, so any process answers them for the whole deployment.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidgate.gateway.ids import now_ms
from vidgate.gateway.storage.db import Q

REGISTRY = CollectorRegistry()
HTTP_LATENCY = Histogram(
    "vidgate_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "status"],
    registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
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
JOBS = Gauge("vidgate_jobs", "Jobs by status and provider", ["status", "provider"], registry=REGISTRY)
QUEUE_DEPTH = Gauge("vidgate_queue_depth", "Jobs due for the worker now", registry=REGISTRY)
WEBHOOK_BACKLOG = Gauge("vidgate_webhook_backlog", "Webhook deliveries not yet delivered", registry=REGISTRY)

_JOBS = Q("SELECT status, provider, COUNT(*) AS n FROM jobs GROUP BY status, provider")
_DUE = Q("SELECT COUNT(*) AS n FROM jobs WHERE next_run_at IS NOT NULL AND next_run_at <= :now")
_BACKLOG = Q("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'pending'")


class MetricsMiddleware:
    """Times every HTTP request; two clock reads and one histogram update."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, int], Any] = {}  # labels() takes a lock and builds a key each call

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
            child = self._children.get((scope["method"], status))
            if child is None:
                child = self._children[(scope["method"], status)] = HTTP_LATENCY.labels(scope["method"], str(status))
            child.observe(time.perf_counter() - start)


def observe_upstream(provider: str, operation: str, seconds: float, error: Any = None) -> None:
    UPSTREAM_LATENCY.labels(provider, operation).observe(seconds)
    if error is not None:
        UPSTREAM_ERRORS.labels(provider, operation, str(bool(getattr(error, "retryable", False))).lower()).inc()


async def metrics(request: Request) -> Response:
    db = request.app.state.gateway.db
    JOBS.clear()
    for row in await db.fetchall(_JOBS):
        JOBS.labels(row["status"], row["provider"] or "").set(row["n"])
    QUEUE_DEPTH.set((await db.fetchone(_DUE, {"now": now_ms()}) or {"n": 0})["n"])
    WEBHOOK_BACKLOG.set((await db.fetchone(_BACKLOG) or {"n": 0})["n"])
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics, methods=["GET"])]
