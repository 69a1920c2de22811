"""What the parts of one worker share: its services, its identity, the jobs it runs now, and the
two ways a step can end badly (released to run again later, or the job failed).

The parts (claims, leases, submit, track, store, local render) take this rather than the runner,
which builds them all: no part imports the runner.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import httpx

from vidgate.gateway.catalog.catalog import Catalog
from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs import state
from vidgate.gateway.jobs.lifecycle import Lifecycle
from vidgate.gateway.jobs.records import Attempt, JobRecord, StoredError, job_error
from vidgate.gateway.outbound import guarded_client
from vidgate.gateway.providers.registry import Providers
from vidgate.gateway.settings import Settings
from vidgate.gateway.storage.blobs import BlobStore
from vidgate.gateway.storage.db import Database

log = logging.getLogger("vidgate.worker")

UNSCHEDULED = {"next_run_at": None, "lease_owner": None, "lease_until": None}


class WorkerContext:
    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        lifecycle: Lifecycle,
        providers: Providers,
        blobs: BlobStore,
        settings: Settings,
        worker_id: str,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.lifecycle = lifecycle
        self.providers = providers
        self.blobs = blobs
        self.settings = settings
        self.worker_id = worker_id
        self.lease_ms = int(settings.lease_seconds * 1000)
        self.tmpdir = settings.data_dir / "tmp"  # downloads, and renders kept until they are stored
        self.running: dict[str, asyncio.Task[None]] = {}  # by job id
        self.cancelled: set[str] = set()  # running jobs to stop: cancelled, ended elsewhere, past deadline
        self.wake: Callable[[], None] = lambda: None  # the claim loop, to claim again now
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        """The client input references are fetched with (guarded against private addresses)."""
        if self._http is None:
            self._http = guarded_client(
                allow_private=self.settings.allow_private_urls, timeout=httpx.Timeout(20.0, connect=5.0)
            )
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def fail(
        self,
        job_id: str,
        error: StoredError,
        *,
        attempts: Sequence[Attempt] | None = None,
        happening: state.Happening = "failed",
    ) -> JobRecord | None:
        """End a job this worker holds with ``error``: failed (or expired, for ``deadline``), its hold
        voided and its event written in one transaction; None when it had ended already."""
        fields: dict[str, object] = {"error": error}
        if attempts is not None:
            fields["attempts"] = attempts
        return await self.lifecycle.transition(job_id, happening, lease=self.worker_id, fields=fields)

    async def expire(self, job_id: str) -> JobRecord | None:
        error = job_error("deadline_exceeded", "the job did not finish before its deadline")
        return await self.fail(job_id, error, happening="deadline")

    async def release(
        self, job_id: str, *, delay: float, failures: int | None = None, last_error: str | None = None
    ) -> None:
        """Hand the job back to run again in ``delay`` seconds; after too many failed steps in a row,
        fail it instead."""
        if failures is not None and failures >= self.settings.max_step_failures:
            error = job_error("internal_error", f"gave up after {failures} failed steps: {last_error}")
            if await self.fail(job_id, error) is None:  # ended already (a clean-up that keeps failing)
                await self.lifecycle.set_fields(job_id, {**UNSCHEDULED, "byok": None}, lease=self.worker_id)
            return
        next_run_at = now_ms() + int(delay * 1000)
        await self.lifecycle.reschedule(job_id, self.worker_id, next_run_at=next_run_at, failures=failures)
