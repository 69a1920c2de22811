"""The job worker: claims due jobs with a lease and moves each one step along.

A job is worked by one worker at a time (its lease, renewed while the work lasts). A worker that
dies simply stops renewing; another claims the job when the lease runs out. One that is asked to
stop (SIGTERM) claims nothing more, lets the steps in flight finish within a grace period, cancels
the rest and hands every lease back at once. The steps themselves live apart: submitting with
reconcile of lost answers (``submit``), storing outputs (``store``); here are the claim loop,
polling and clean-ups.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time

import httpx
import orjson

from vidgate.gateway.catalog.catalog import Catalog
from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs.lifecycle import Lifecycle
from vidgate.gateway.logs import bind_contextvars
from vidgate.gateway.metrics import observe_upstream
from vidgate.gateway.outbound import guarded_client
from vidgate.gateway.providers.base import PollFailed, ProviderError, RemoteProvider, Upstream, is_local
from vidgate.gateway.providers.registry import Providers
from vidgate.gateway.secret import SealError
from vidgate.gateway.settings import Settings
from vidgate.gateway.storage.blobs import BlobStore
from vidgate.gateway.storage.db import Database, Q, Row
from vidgate.gateway.worker.claims import Claims
from vidgate.gateway.worker.jobspec import job_error, job_spec, own_keys
from vidgate.gateway.worker.leases import LeaseKeeper, retry_delay
from vidgate.gateway.worker.retention import OrphanSweeper, sweep_retention
from vidgate.gateway.worker.store import OutputStore
from vidgate.gateway.worker.submit import Submitter

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
        self.db = db
        self.catalog = catalog
        self.lifecycle = lifecycle
        self.providers = providers
        self.blobs = blobs
        self.settings = settings
        self.worker_id = worker_id
        self.lease_ms = int(settings.lease_seconds * 1000)
        self.tmpdir = settings.data_dir / "tmp"
        self.running: dict[str, asyncio.Task[None]] = {}
        self.leases = LeaseKeeper(self)
        self.claims = Claims(self)
        self.submitter = Submitter(self)
        self.outputs = OutputStore(self)
        self.cancelled: set[str] = set()
        self._wake = asyncio.Event()
        self._http: httpx.AsyncClient | None = None
        self._last_sweep = 0

    def wake(self) -> None:
        self._wake.set()

    def signal_cancel(self, job_id: str) -> None:
        if job_id in self.running:
            self.cancelled.add(job_id)

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = guarded_client(
                allow_private=self.settings.allow_private_urls, timeout=httpx.Timeout(20.0, connect=5.0)
            )
        return self._http

    async def run(self, stop: asyncio.Event, *, reclaim_own: bool = False) -> None:
        """Claim and work due jobs until ``stop`` is set."""
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        if reclaim_own:
            async with self.db.transaction() as tx:
                await tx.execute(_RECLAIM, {"w": self.worker_id})
        halt = asyncio.Event()  # the lease keeper runs on through the grace period
        keeper = asyncio.create_task(self.leases.run(halt), name="lease keeper")
        sweeper = asyncio.create_task(OrphanSweeper(self.db, self.blobs, self.settings).run(stop), name="orphans")
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
            if self._http is not None:
                await self._http.aclose()

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
            async with self.db.transaction() as tx:
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
        free = self.settings.worker_concurrency - len(self.running)
        if free > 0:
            async with self.db.transaction() as tx:
                rows = await self.claims.claim(tx, now_ms(), free)
            for row in rows:
                self.running[row["id"]] = asyncio.create_task(self._handle(row), name=f"job {row['id']}")
        retention_ms = int(self.settings.retention_days * 86_400_000)
        if now_ms() - self._last_sweep > min(60_000, retention_ms // 2):
            self._last_sweep = now_ms()
            await sweep_retention(self.db, self.lifecycle, self.blobs, retention_ms)

    async def _handle(self, row: Row) -> None:
        job_id = row["id"]
        bind_contextvars(job_id=job_id)
        self.leases.deadlines[job_id] = row["deadline_at"]
        try:
            await self._step(row)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A failed attempt: retried later, later each time in a row, never at once in a loop, and
            # not long past the deadline, when the job is expired and its hold voided instead.
            failures = row["poll_failures"] + 1
            until_deadline = max(1.0, (row["deadline_at"] - now_ms()) / 1000)
            delay = min(retry_delay(failures, self.settings.step_retry_seconds), until_deadline)
            log.exception("job %s: step failed (%d in a row); retrying in %.1f s", job_id, failures, delay)
            # What an internal failure says (paths, hosts) is for the log; the job's error names its kind.
            shown = exc.message if isinstance(exc, ProviderError) else f"an internal error ({type(exc).__name__})"
            try:
                await self.release(job_id, delay=delay, failures=failures, last_error=shown)
            except Exception as again:  # the database is down too: the lease lapses and the job is claimed again
                log.warning("job %s: could not release (%s: %s)", job_id, type(again).__name__, again)
        finally:
            self.running.pop(job_id, None)
            self.claims.done(job_id)
            self.leases.deadlines.pop(job_id, None)
            self.cancelled.discard(job_id)
            if len(self.running) <= self.settings.worker_concurrency // 2:
                self._wake.set()  # half the slots are free: claim again now rather than at the next tick

    async def release(
        self, job_id: str, *, delay: float, failures: int | None = None, last_error: str | None = None
    ) -> None:
        if failures is not None and failures >= self.settings.max_step_failures:
            failed = await self.lifecycle.transition(
                job_id,
                "failed",
                lease=self.worker_id,
                fields={"error": job_error("internal_error", f"gave up after {failures} failed steps: {last_error}")},
            )
            if failed is None:  # already ended (a clean-up step that keeps failing): stop scheduling it
                await self.lifecycle.set_fields(
                    job_id,
                    {"next_run_at": None, "lease_owner": None, "lease_until": None, "byok": None},
                    lease=self.worker_id,
                )
            return
        next_run_at = now_ms() + int(delay * 1000)
        await self.lifecycle.reschedule(job_id, self.worker_id, next_run_at=next_run_at, failures=failures)

    async def _step(self, row: Row) -> None:
        status = row["status"]
        if status == "cancelled":
            await self._cancel_upstream(row)
        elif status == "completed":
            await self.lifecycle.set_fields(row["id"], {"next_run_at": None, "lease_owner": None, "lease_until": None})
        elif status in ("queued", "processing") and now_ms() > row["deadline_at"]:
            await self._expire(row)
        elif status == "queued":
            await self.submitter.start(row)
        elif status == "processing":
            provider = self.providers.get(
                row["provider"], api_key=own_keys(row, self.settings.secret_box).get(row["provider"])
            )
            if is_local(provider):
                await self.outputs.run_local(row, provider)
            else:
                await self._poll(row, provider)  # type: ignore[arg-type]
        else:
            await self.lifecycle.set_fields(row["id"], {"next_run_at": None, "lease_owner": None, "lease_until": None})

    async def _poll(self, row: Row, provider: RemoteProvider) -> None:
        job_id = row["id"]
        spec = orjson.loads(row["spec"])
        interval = self.providers.configs[provider.name].poll_interval_seconds
        jobspec = job_spec(row, spec, "", ())
        started = time.perf_counter()
        try:
            up: Upstream = await provider.poll(jobspec, row["native_id"])
            observe_upstream(provider.name, "poll", time.perf_counter() - started)
        except PollFailed as exc:
            observe_upstream(provider.name, "poll", time.perf_counter() - started, exc)
            self.providers.record(provider.name, False, exc.message)
            failures = row["poll_failures"] + 1
            await self.release(
                job_id, delay=min(60.0, interval * 2 ** min(failures, 5)), failures=failures, last_error=exc.message
            )
            return
        self.providers.record(provider.name, True)
        if up.status in ("queued", "processing"):
            progress, source = up.progress, "provider"
            if progress is None:
                elapsed = (now_ms() - (row["started_at"] or row["created_at"])) / 1000
                progress, source = min(95, int(100 * elapsed / max(1.0, row["expected_seconds"]))), "estimate"
            if progress != row["progress"]:
                crossed = (progress // 10) != ((row["progress"] or 0) // 10)
                await self.lifecycle.progress(job_id, self.worker_id, progress, source, crossed_step=crossed)
            await self.release(job_id, delay=interval, failures=0)
        elif up.status == "completed":
            await self.outputs.complete(row, provider, up)
        elif up.status == "cancelled":
            await self.lifecycle.transition(job_id, "cancel", lease=self.worker_id)
        else:
            err = up.error
            await self.lifecycle.transition(
                job_id,
                "failed",
                lease=self.worker_id,
                fields={
                    "error": job_error(
                        err.code if err else "upstream_error",
                        err.message if err else "the upstream job failed",
                        provider=provider.name,
                        provider_request_id=err.request_id if err else None,
                    )
                },
            )

    async def _cancel_upstream(self, row: Row) -> None:
        try:
            own = own_keys(row, self.settings.secret_box)
        except SealError as exc:  # sealed under another key: the upstream job cannot be stopped from here
            log.warning("job %s: upstream cancel skipped: %s", row["id"], exc)
            own = None
        usable = own is not None and (row["provider"] in self.providers.available or row["provider"] in own)
        provider = self.providers.get(row["provider"], api_key=(own or {}).get(row["provider"])) if usable else None
        if provider is not None and not is_local(provider) and provider.cancellable and row["native_id"]:
            try:
                await provider.cancel(row["native_id"])
            except ProviderError as exc:
                log.warning("job %s: upstream cancel failed: %s", row["id"], exc)
        shutil.rmtree(self.tmpdir / row["id"], ignore_errors=True)  # a render kept for storing
        # The clean-up is the last use of the job's own provider keys: they go with its schedule.
        await self.lifecycle.set_fields(
            row["id"], {"next_run_at": None, "lease_owner": None, "lease_until": None, "byok": None}
        )

    async def _expire(self, row: Row) -> None:
        done = await self.lifecycle.transition(
            row["id"],
            "deadline",
            lease=self.worker_id,
            fields={"error": job_error("deadline_exceeded", "the job did not finish before its deadline")},
        )
        shutil.rmtree(self.tmpdir / row["id"], ignore_errors=True)  # a render kept for storing
        if done is not None and row["status"] == "processing":
            # The expiry purged the job's own keys from its row; the claimed row still has them for this call.
            await self._cancel_upstream({**done, "byok": row["byok"]})
