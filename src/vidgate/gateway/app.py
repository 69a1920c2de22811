"""Builds the ASGI app from settings: storage, services, the worker and every route."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.types import ASGIApp

from vidgate.gateway.api.edge import ClientLimits
from vidgate.gateway.api.http import RequestIdMiddleware, exception_handlers
from vidgate.gateway.api.poll import PollFastPath
from vidgate.gateway.api.routes import starlette_routes
from vidgate.gateway.events import drain
from vidgate.gateway.ids import token
from vidgate.gateway.logs import configure as configure_logging
from vidgate.gateway.metrics import MetricsMiddleware
from vidgate.gateway.services import Gateway
from vidgate.gateway.settings import Settings, load_settings


class GatewayApp(Starlette):
    """The Starlette app with per-client limits, then the poll route's fast path, in front of its middleware."""

    settings: Settings

    def build_middleware_stack(self) -> ASGIApp:
        return ClientLimits(
            PollFastPath(super().build_middleware_stack()),
            max_in_flight=self.settings.max_in_flight_per_client,
            body_seconds=self.settings.body_timeout_seconds,
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
        undo_signals = drain.on_stop_signals(gateway.bus.drain)  # streams end before the server waits on them
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
