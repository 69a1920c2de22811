"""The job worker: claims due jobs with a lease and hands each one to the part that moves it along.

A job is worked by one worker at a time (its lease, renewed while the work lasts). A worker that
dies simply stops renewing; another claims the job when the lease runs out. One that is asked to
stop (SIGTERM) claims nothing more, lets the steps in flight finish within a grace period, cancels
the rest and hands every lease back at once. The steps live in parts that share a
``WorkerContext``: claiming (``claims``), leases (``leases``), submitting with reconcile of lost
answers (``submit``), polling upstream jobs (``track``), built-in renders (``local``) and storing
outputs (``store``); here are the claim loop and the dispatch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil

from msgspec.structs import replace

from vidgate.gateway.catalog.catalog import Catalog
from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs.lifecycle import Lifecycle
from vidgate.gateway.jobs.records import JobRecord
from vidgate.gateway.logs import bind_contextvars
from vidgate.gateway.providers.base import ProviderError, is_local
from vidgate.gateway.providers.registry import Providers
from vidgate.gateway.settings import Settings
from vidgate.gateway.storage.blobs import BlobStore
from vidgate.gateway.storage.db import Database, Q
from vidgate.gateway.worker.claims import Claims
from vidgate.gateway.worker.context import UNSCHEDULED, WorkerContext
from vidgate.gateway.worker.jobspec import own_keys
from vidgate.gateway.worker.leases import LeaseKeeper, retry_delay
from vidgate.gateway.worker.local import LocalRender
from vidgate.gateway.worker.retention import OrphanSweeper, sweep_retention
from vidgate.gateway.worker.store import OutputStore
from vidgate.gateway.worker.submit import Submitter
from vidgate.gateway.worker.track import Tracker

log = logging.getLogger("vidgate.worker")

_RECLAIM = Q("UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = :w")
# On a graceful stop: live jobs are due again at once, for whichever worker claims next.
_HAND_BACK = Q(
    "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, next_run_at = :now "
    "WHERE lease_owner = :w AND status IN ('queued', 'processing')"
)
IDLE_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 8.0


class Worker:
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
        self.ctx = ctx = WorkerContext(db, catalog, lifecycle, providers, blobs, settings, worker_id)
        ctx.wake = self.wake
        self.worker_id = worker_id
        self.settings = settings
        self.running = ctx.running
        self.leases = LeaseKeeper(ctx)
        self.claims = Claims(ctx)
        store = OutputStore(ctx)
        self.local = LocalRender(ctx, store)
        self.submitter = Submitter(ctx, self.local)
        self.tracker = Tracker(ctx, store)
        self._wake = asyncio.Event()
        self._last_sweep = 0

    def wake(self) -> None:
        self._wake.set()

    def signal_cancel(self, job_id: str) -> None:
        if job_id in self.running:
            self.ctx.cancelled.add(job_id)

    async def run(self, stop: asyncio.Event, *, reclaim_own: bool = False) -> None:
        """Claim and work due jobs until ``stop`` is set."""
        ctx = self.ctx
        ctx.tmpdir.mkdir(parents=True, exist_ok=True)
        if reclaim_own:
            async with ctx.db.transaction() as tx:
                await tx.execute(_RECLAIM, {"w": self.worker_id})
        halt = asyncio.Event()  # the lease keeper runs on through the grace period
        keeper = asyncio.create_task(self.leases.run(halt), name="lease keeper")
        sweeper = asyncio.create_task(OrphanSweeper(ctx.db, ctx.blobs, self.settings).run(stop), name="orphans")
        failures = 0
        while not stop.is_set():
            # Any failure (the database or the store unreachable, say) backs off and retries: the loop
            # itself never dies, or the process would serve on with no worker.
            try:
                await self._tick()
                wait = await self._idle_seconds()
                failures = 0
            except Exception as exc:
                failures += 1
                wait = min(MAX_BACKOFF_SECONDS, 0.5 * 2**failures)
                if failures == 1:
                    log.exception("worker tick failed; backing off %.1f s", wait)
                else:
                    log.warning("worker tick failed again (%s: %s); backing off %.1f s", type(exc).__name__, exc, wait)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
        sweeper.cancel()
        try:
            await self._drain()
        finally:
            halt.set()
            keeper.cancel()
            await asyncio.gather(keeper, sweeper, return_exceptions=True)
            await ctx.aclose()

    async def _drain(self) -> None:
        """Let the steps in flight finish within the grace period, cancel the rest, hand every lease back."""
        grace = self.settings.worker_shutdown_grace_seconds
        tasks = list(self.running.values())
        finished = len(tasks)
        if tasks:
            log.info(
                "worker %s stopping: waiting up to %.0f s for %d steps in flight", self.worker_id, grace, len(tasks)
            )
            done, late = await asyncio.wait(tasks, timeout=grace)
            finished = len(done)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        try:
            async with self.ctx.db.transaction() as tx:
                handed = await tx.execute(_HAND_BACK, {"w": self.worker_id, "now": now_ms()})
                handed += await tx.execute(_RECLAIM, {"w": self.worker_id})
        except Exception as exc:  # the database is down: the leases lapse instead, and others take the jobs then
            log.warning("worker %s: could not hand its leases back (%s: %s)", self.worker_id, type(exc).__name__, exc)
            handed = -1
        log.info(
            "worker %s stopped: %d of %d steps finished within the grace, %d cancelled; %s leases handed back",
            self.worker_id,
            finished,
            len(tasks),
            len(tasks) - finished,
            "no" if handed < 0 else handed,
        )

    async def _idle_seconds(self) -> float:
        due = await self.claims.next_due()
        if due is None:
            return IDLE_SECONDS
        return min(IDLE_SECONDS, max(0.01, (due - now_ms()) / 1000))

    async def _tick(self) -> None:
        ctx = self.ctx
        free = self.settings.worker_concurrency - len(self.running)
        if free > 0:
            async with ctx.db.transaction() as tx:
                jobs = await self.claims.claim(tx, now_ms(), free)
            for job in jobs:
                self.running[job.id] = asyncio.create_task(self._handle(job), name=f"job {job.id}")
        retention_ms = int(self.settings.retention_days * 86_400_000)
        if now_ms() - self._last_sweep > min(60_000, retention_ms // 2):
            self._last_sweep = now_ms()
            await sweep_retention(ctx.db, ctx.lifecycle, ctx.blobs, retention_ms)

    async def _handle(self, job: JobRecord) -> None:
        job_id = job.id
        bind_contextvars(job_id=job_id)
        self.leases.deadlines[job_id] = job.deadline_at
        try:
            await self._step(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A failed attempt: retried later, later each time in a row, never at once in a loop, and
            # not long past the deadline, when the job is expired and its hold voided instead.
            failures = job.poll_failures + 1
            until_deadline = max(1.0, (job.deadline_at - now_ms()) / 1000)
            delay = min(retry_delay(failures, self.settings.step_retry_seconds), until_deadline)
            log.exception("job %s: step failed (%d in a row); retrying in %.1f s", job_id, failures, delay)
            # What an internal failure says (paths, hosts) is for the log; the job's error names its kind.
            shown = exc.message if isinstance(exc, ProviderError) else f"an internal error ({type(exc).__name__})"
            try:
                await self.ctx.release(job_id, delay=delay, failures=failures, last_error=shown)
            except Exception as again:  # the database is down too: the lease lapses and the job is claimed again
                log.warning("job %s: could not release (%s: %s)", job_id, type(again).__name__, again)
        finally:
            self.running.pop(job_id, None)
            self.claims.done(job_id)
            self.leases.deadlines.pop(job_id, None)
            self.ctx.cancelled.discard(job_id)
            if len(self.running) <= self.settings.worker_concurrency // 2:
                self._wake.set()  # half the slots are free: claim again now rather than at the next tick

    async def _step(self, job: JobRecord) -> None:
        """Hand the job to the part its status calls for."""
        ctx = self.ctx
        status = job.status
        if status == "cancelled":
            await self.tracker.cancel_upstream(job)
        elif status in ("queued", "processing") and now_ms() > job.deadline_at:
            await self._expire(job)
        elif status == "queued":
            await self.submitter.start(job)
        elif status == "processing":
            name = job.provider or ""
            provider = ctx.providers.get(name, api_key=own_keys(job, ctx.settings.secret_box).get(name))
            if is_local(provider):
                await self.local.run(job, provider)
            else:
                await self.tracker.poll(job, provider)  # type: ignore[arg-type]
        else:  # completed, or ended with nothing left to do upstream
            await ctx.lifecycle.set_fields(job.id, UNSCHEDULED)

    async def _expire(self, job: JobRecord) -> None:
        done = await self.ctx.expire(job.id)
        shutil.rmtree(self.ctx.tmpdir / job.id, ignore_errors=True)  # a render kept for storing
        if done is not None and job.status == "processing":
            # The expiry purged the job's own keys from its row; the claimed record still has them for this call.
            await self.tracker.cancel_upstream(replace(done, byok=job.byok))
