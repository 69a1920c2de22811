"""The services one process serves with, and the typed way every handler reaches them."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vidgate.gateway.auth import Keys
from vidgate.gateway.catalog.catalog import Catalog
from vidgate.gateway.catalog.configured import configured_catalog
from vidgate.gateway.events.bus import EventBus
from vidgate.gateway.events.notify import PgListener
from vidgate.gateway.events.stream_slots import Streams
from vidgate.gateway.events.waiters import JobWaiters
from vidgate.gateway.events.webhooks import Deliverer
from vidgate.gateway.jobs.lifecycle import Lifecycle
from vidgate.gateway.jobs.service import JobService
from vidgate.gateway.providers.registry import Providers
from vidgate.gateway.settings import Settings
from vidgate.gateway.storage.blobs import BlobStore
from vidgate.gateway.storage.db import Database, open_database
from vidgate.gateway.storage.space import DiskSpace

if TYPE_CHECKING:
    from vidgate.gateway.worker.runner import Worker

log = logging.getLogger("vidgate.worker")


class Gateway:
    """Everything one process serves with; the app keeps it as ``app.state.gateway``."""

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
        self.streams = Streams(self.keys, db, settings.max_websockets_per_key)
        self.waiters = JobWaiters(self.bus, settings.long_poll_max_waiters)
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
        self.deliverer: Deliverer | None = None
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
        providers.share_health(db)
        catalog = catalog or configured_catalog(settings.models, settings.providers)
        gateway = cls(settings, db, catalog, BlobStore(settings.blob_url, db), providers)
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
        self._tasks.append(asyncio.create_task(self._run_worker(self.worker, stable), name="worker"))
        # The worker calls the upstreams: it writes their health for every process, and reads theirs.
        self._tasks.append(asyncio.create_task(self.providers.shared_health.run(self._stop), name="provider health"))
        # Its http client is closed when run() returns, on close().
        self.deliverer = Deliverer(self.db, self.settings, changed=self.bus.publish_changed)
        # Every sink the bus hands committed events to, besides the streams subscribed to it.
        self.bus.add_sink(self.deliverer)
        self._tasks.append(asyncio.create_task(self.deliverer.run(self._stop), name="webhooks"))
        return self.worker

    async def _run_worker(self, worker: Worker, reclaim_own: bool) -> None:
        """The worker, once it knows the circuits other workers opened: a worker just started must not
        send its first jobs to a provider the others have found down."""
        try:
            await asyncio.wait_for(self.providers.shared_health.refresh(0), timeout=10)
        except Exception as exc:  # the database is away: the health task reads it again later
            log.warning("provider health not read before the worker started: %s", type(exc).__name__)
        await worker.run(self._stop, reclaim_own=reclaim_own)

    async def close(self) -> None:
        self._stop.set()
        if self.worker is not None:
            self.worker.wake()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.listener is not None:
            await self.listener.close()
        await self.providers.aclose()
        await self.db.close()


def services(conn: Mapping[str, Any]) -> Gateway:
    """The gateway behind a request, websocket or raw ASGI scope (each maps ``"app"`` to the app)."""
    gateway: Gateway = conn["app"].state.gateway
    return gateway
