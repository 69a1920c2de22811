"""Builds the ASGI app from settings: storage, services, the worker and every route."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from vidgate.gateway.api.content import ContentFastPath
from vidgate.gateway.api.edge import ClientLimits
from vidgate.gateway.api.http import RequestIdMiddleware, exception_handlers
from vidgate.gateway.api.poll import PollFastPath
from vidgate.gateway.api.routes import document, starlette_routes
from vidgate.gateway.events import drain
from vidgate.gateway.events.sockets import ServerSend
from vidgate.gateway.ids import token
from vidgate.gateway.logs import configure as configure_logging
from vidgate.gateway.metrics import MetricsMiddleware
from vidgate.gateway.services import Gateway
from vidgate.gateway.settings import Settings, load_settings

# What a browser may send (the SDKs' request headers) and what a page may read of an answer.
CORS_METHODS = ("GET", "HEAD", "POST", "PATCH", "DELETE")
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "X-Request-Id",
    "X-Provider-Key",
    "Range",
    "If-Range",
    "Last-Event-ID",
    "If-None-Match",
)
CORS_EXPOSED_HEADERS = (
    "X-Request-Id",
    "Retry-After",
    "ETag",
    "Content-Range",
    "Content-Length",
    "Content-Disposition",
    "Accept-Ranges",
    "Location",
    "X-Content-SHA256",
)


class GatewayApp(Starlette):
    """The Starlette app behind, outermost first: per-client limits, the fast paths of content ranges and
    the poll, CORS (when set)."""

    settings: Settings

    def build_middleware_stack(self) -> ASGIApp:
        app = super().build_middleware_stack()
        cors = cors_middleware(app, self.settings.cors_origins)
        return ClientLimits(
            ContentFastPath(PollFastPath(ServerSend(cors or app), cors), cors),
            max_in_flight=self.settings.max_in_flight_per_client,
            body_seconds=self.settings.body_timeout_seconds,
        )


def cors_middleware(app: ASGIApp, origins: str) -> CORSMiddleware | None:
    """``app`` answering web pages on ``origins`` (comma-separated, ``*`` for any); None when there are none.

    It wraps the framework's whole stack, its 500s included; the poll's fast path adds the same headers itself.
    """
    allowed = [o.strip().rstrip("/") for o in origins.split(",") if o.strip()]
    if not allowed:
        return None
    return CORSMiddleware(
        app,
        allow_origins=allowed,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_EXPOSED_HEADERS,
        max_age=3600,
    )


def create_app(settings: Settings | None = None, *, run_worker: bool = True, worker_id: str | None = None) -> Starlette:
    settings = settings or load_settings()
    configure_logging(settings.log_format, settings.log_level)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gateway = await Gateway.open(settings)
        app.state.gateway = gateway
        if run_worker and settings.worker_enabled:
            gateway.start_worker(worker_id)
        # Streams end before the server waits on them (or drops them).
        undo_signals = drain.on_stop_signals(gateway.bus.drain, lambda: not gateway.streams.open)
        try:
            yield
        finally:
            undo_signals()
            gateway.bus.drain()
            await gateway.close()

    app = GatewayApp(
        routes=starlette_routes(),
        middleware=[Middleware(MetricsMiddleware), Middleware(RequestIdMiddleware)],
        exception_handlers=exception_handlers(postgres=not settings.is_sqlite),
        lifespan=lifespan,
    )
    app.state.openapi = document()
    app.settings = settings
    return app


def app_from_env() -> Starlette:
    """The factory the HTTP server imports in each of its worker processes."""
    import os

    run_worker = os.environ.get("VIDGATE_RUN_WORKER", "1") == "1"
    worker_id = os.environ.get("VIDGATE_WORKER_ID") or None
    if run_worker and os.environ.get("VIDGATE_PROCESS_ROLE") == "api":
        worker_id = worker_id or f"api-{token(6)}"
    return create_app(run_worker=run_worker, worker_id=worker_id)
