"""Builds the ASGI app from settings: storage, services, the worker and every route."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from vidgate.errors import ServiceUnavailableError
from vidgate.gateway import metrics
from vidgate.gateway.api import admin, dashboard, models, openai_compat, openapi, usage, videos
from vidgate.gateway.api.edge import ClientLimits
from vidgate.gateway.api.http import RequestIdMiddleware, exception_handlers, json_response
from vidgate.gateway.api.poll import PollFastPath
from vidgate.gateway.auth import Keys
from vidgate.gateway.catalog.catalog import Catalog, load_catalog
from vidgate.gateway.events import drain, stream, webhooks
from vidgate.gateway.events.bus import EventBus
from vidgate.gateway.events.notify import PgListener
from vidgate.gateway.ids import token
from vidgate.gateway.jobs.lifecycle import Lifecycle
from vidgate.gateway.jobs.service import JobService
from vidgate.gateway.logs import configure as configure_logging
from vidgate.gateway.metrics import MetricsMiddleware
from vidgate.gateway.providers.registry import Providers
from vidgate.gateway.settings import Settings, load_settings
from vidgate.gateway.storage.blobs import BlobStore
from vidgate.gateway.storage.db import Database, open_database
from vidgate.gateway.storage.space import DiskSpace

if TYPE_CHECKING:
    from vidgate.gateway.worker.runner import Worker

log = logging.getLogger("vidgate")


class Gateway:
    """Everything one process serves with; routes reach it as ``request.app.state.gateway``."""

    def __init__(
        self, settings: Settings, db: Database, catalog: Catalog, blobs: BlobStore, providers: Providers
    ) -> None:
        self.settings = settings
        self.db = db
        self.catalog = catalog
        self.blobs = blobs
        self.providers = providers
        self.bus = EventBus()
        self.keys = Keys(
            db, settings.admin_key, default_rate=settings.rate_limit_per_second, default_burst=settings.rate_limit_burst
        )
        self.lifecycle = Lifecycle(db, catalog, self.bus, settings.signing_secret)
        self.jobs = JobService(
            db,
            catalog,
            self.bus,
            providers,
            blobs,
            self.lifecycle,
            secret=settings.signing_secret,
            default_ttl=settings.download_ttl_default,
        )
        self.jobs.max_concurrent_jobs = settings.max_concurrent_jobs_per_key
        self.jobs.deadline_override = settings.deadline_override_seconds
        self.jobs.space = DiskSpace.for_storage(
            settings.database_url,
            blobs.root,
            reserve_bytes=settings.disk_reserve_bytes,
            min_free_bytes=settings.disk_min_free_bytes,
        )
        self.jobs.space.ensure_reserve()
        self.jobs.box = settings.secret_box
        self.jobs.allow_http_urls = settings.allow_private_urls
        self.jobs.byok_fee = self.lifecycle.byok_fee = round(settings.byok_fee_per_second_usd * 1_000_000)
        self.worker: Worker | None = None
        self.deliverer: webhooks.Deliverer | None = None
        self.listener: PgListener | None = None
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, settings: Settings, *, catalog: Catalog | None = None) -> Gateway:
        if settings.is_sqlite:
            from vidgate.gateway.storage.migrate import migrate

            await asyncio.to_thread(migrate, settings.database_url)
        db = await open_database(settings.database_url)
        providers = Providers(
            settings.providers, procedural=settings.procedural_enabled, render_parallel=settings.render_parallel
        )
        gateway = cls(settings, db, catalog or load_catalog(), BlobStore(settings.blob_url, db), providers)
        await gateway.jobs.load_stats()
        if db.dialect == "postgresql":
            gateway.listener = PgListener(
                settings.database_url,
                db,
                gateway.bus,
                wake=gateway._wake_worker,
                stop_job=gateway._stop_job,
                revoked=gateway.keys.revoked,
            )
            await gateway.listener.start()
        return gateway

    def _wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    def _stop_job(self, job_id: str) -> None:
        if self.worker is not None:
            self.worker.signal_cancel(job_id)

    def start_worker(self, worker_id: str | None = None) -> Worker:
        from vidgate.gateway.worker.runner import Worker  # API-only processes never load the worker

        stable = worker_id is None
        wid = worker_id or "serve-" + hashlib.sha256(str(self.settings.data_dir).encode()).hexdigest()[:12]
        self.worker = Worker(self.db, self.catalog, self.lifecycle, self.providers, self.blobs, self.settings, wid)
        self.jobs.wake_worker = self.worker.wake
        self.jobs.on_cancel = self.worker.signal_cancel
        # The all-in-one server owns its data dir: leases its previous run held are its own to take back.
        self._tasks.append(asyncio.create_task(self.worker.run(self._stop, reclaim_own=stable), name="worker"))
        # Its http client is closed when run() returns, on close().
        self.deliverer = webhooks.Deliverer(self.db, self.settings, self.bus)
        self._tasks.append(asyncio.create_task(self.deliverer.run(self._stop), name="webhooks"))
        return self.worker

    async def close(self) -> None:
        self._stop.set()
        if self.worker is not None:
            self.worker.wake()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.listener is not None:
            await self.listener.close()
        await self.providers.aclose()
        await self.db.close()


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def readyz(request: Request) -> Response:
    g: Gateway = request.app.state.gateway
    if g.bus.draining:  # shutting down: a load balancer sends new requests elsewhere
        raise ServiceUnavailableError("draining: the server is shutting down", details={"server": "draining"})
    probes = {"database": asyncio.ensure_future(g.db.ping()), "blobs": asyncio.ensure_future(g.blobs.ping())}
    await asyncio.wait(probes.values(), timeout=2.0)
    checks: dict[str, Any] = {}
    for name, task in probes.items():
        # Retrieve whatever the probe ends with, so a late failure is not logged as never retrieved.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        if not task.done():
            # Not awaited: a stalled connection can take longer to give up than readiness may wait.
            task.cancel()
            checks[name] = "error: TimeoutError"
        elif task.exception() is not None:  # any failure means not ready, whatever its type
            checks[name] = f"error: {type(task.exception()).__name__}"
        else:
            checks[name] = "ok"
    if any(v != "ok" for v in checks.values()):
        raise ServiceUnavailableError("not ready", details=checks)
    return json_response({"status": "ready", "checks": checks})


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

    routes = [
        *videos.poll_routes,
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        *models.routes,
        *videos.routes,
        *admin.routes,
        *usage.routes,
        *metrics.routes,
        *openapi.routes,
        *stream.routes,
        *webhooks.routes,
        *openai_compat.routes,
        *dashboard.routes,
    ]
    app = GatewayApp(
        routes=routes,
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
