"""The job worker: claims due jobs with a lease and moves each one step along.

A job is worked by one worker at a time (its lease, renewed while the work lasts). A worker that
dies simply stops renewing; another claims the job when the lease runs out. Submission is
recorded as ``pending`` before the upstream call, so a crash mid-submit resubmits to the same
provider with the same idempotency key and never fails over to a second one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from typing import Any

import httpx
import orjson

from vidgate.gateway import routing
from vidgate.gateway.catalog.catalog import Catalog
from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs.lifecycle import Lifecycle
from vidgate.gateway.logs import bind_contextvars
from vidgate.gateway.metrics import observe_upstream
from vidgate.gateway.net import BlockedURL
from vidgate.gateway.providers.base import (
    JobSpec,
    LocalProvider,
    PollFailed,
    ProviderError,
    Rejected,
    RemoteProvider,
    Upstream,
    is_local,
)
from vidgate.gateway.providers.registry import Providers
from vidgate.gateway.render.image import ImageDecodeError
from vidgate.gateway.render.probe import ProbeError
from vidgate.gateway.settings import Settings
from vidgate.gateway.storage.blobs import BlobStore
from vidgate.gateway.storage.db import Database, Q, Row
from vidgate.gateway.worker.jobspec import fetch_references, job_error, job_spec, own_keys
from vidgate.gateway.worker.leases import LeaseKeeper
from vidgate.gateway.worker.outputs import download, ingest
from vidgate.gateway.worker.retention import sweep_retention

log = logging.getLogger("vidgate.worker")

_CLAIM_SQL = (
    "UPDATE jobs SET lease_owner = :w, lease_until = :until WHERE id IN (SELECT id FROM jobs "
    "WHERE {which} AND next_run_at <= :now AND (lease_until IS NULL OR lease_until < :now) "
    "ORDER BY next_run_at LIMIT :n{lock}) RETURNING *"
)


def _claim(which: str) -> Q:
    return Q(_CLAIM_SQL.format(which=which, lock=""), pg=_CLAIM_SQL.format(which=which, lock=" FOR UPDATE SKIP LOCKED"))


# Polls of accepted jobs are claimed apart from the rest (submits, clean-ups): a burst of new jobs,
# all due before any poll, would otherwise hold every poll back until the last one was submitted.
_CLAIM_POLLS = _claim("status = 'processing'")
_CLAIM_OTHERS = _claim("status <> 'processing'")
_RECLAIM = Q("UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = :w")
_NEXT_DUE = Q("SELECT MIN(next_run_at) AS due FROM jobs WHERE next_run_at IS NOT NULL")
MAX_POLL_FAILURES = 30
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
            self._http = httpx.AsyncClient(timeout=httpx.Timeout(20.0, connect=5.0), trust_env=False)
        return self._http

    async def run(self, stop: asyncio.Event, *, reclaim_own: bool = False) -> None:
        """Claim and work due jobs until ``stop`` is set."""
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        if reclaim_own:
            async with self.db.transaction() as tx:
                await tx.execute(_RECLAIM, {"w": self.worker_id})
        keeper = asyncio.create_task(self.leases.run(stop), name="lease keeper")
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
        keeper.cancel()
        for task in list(self.running.values()):
            task.cancel()
        await asyncio.gather(keeper, *self.running.values(), return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    async def _idle_seconds(self) -> float:
        row = await self.db.fetchone(_NEXT_DUE)
        if row is None or row["due"] is None:
            return IDLE_SECONDS
        return min(IDLE_SECONDS, max(0.01, (row["due"] - now_ms()) / 1000))

    async def _tick(self) -> None:
        free = self.settings.worker_concurrency - len(self.running)
        if free > 0:
            now = now_ms()
            params = {"w": self.worker_id, "until": now + self.lease_ms, "now": now}
            async with self.db.transaction() as tx:
                # A quarter of the free slots stay for new jobs, so polls cannot starve submits either.
                rows = [*await tx.fetchall(_CLAIM_POLLS, {**params, "n": free - free // 4})]
                rows += await tx.fetchall(_CLAIM_OTHERS, {**params, "n": free - len(rows)})
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
            log.exception("job %s: step failed", job_id)
            try:
                await self._release(job_id, delay=5.0, failures=row["poll_failures"] + 1, last_error=str(exc))
            except Exception as again:  # the database is down too: the lease lapses and the job is claimed again
                log.warning("job %s: could not release (%s: %s)", job_id, type(again).__name__, again)
        finally:
            self.running.pop(job_id, None)
            self.leases.deadlines.pop(job_id, None)
            self.cancelled.discard(job_id)
            if len(self.running) <= self.settings.worker_concurrency // 2:
                self._wake.set()  # half the slots are free: claim again now rather than at the next tick

    async def _release(
        self, job_id: str, *, delay: float, failures: int | None = None, last_error: str | None = None
    ) -> None:
        if failures is not None and failures > MAX_POLL_FAILURES:
            await self.lifecycle.transition(
                job_id,
                "failed",
                lease=self.worker_id,
                fields={"error": job_error("internal_error", f"gave up after {failures} failed steps: {last_error}")},
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
            await self._start(row)
        elif status == "processing":
            provider = self.providers.get(row["provider"], api_key=own_keys(row).get(row["provider"]))
            if is_local(provider):
                await self._run_local(row, provider)
            else:
                await self._poll(row, provider)  # type: ignore[arg-type]
        else:
            await self.lifecycle.set_fields(row["id"], {"next_run_at": None, "lease_owner": None, "lease_until": None})

    async def _start(self, row: Row) -> None:
        job_id = row["id"]
        spec = orjson.loads(row["spec"])
        model = self.catalog.by_id[row["model"]]
        attempts: list[dict[str, Any]] = orjson.loads(row["attempts"] or "[]")
        pending = next((a for a in attempts if a["outcome"] == "pending"), None)
        if pending is not None:
            ref = next(p for p in model.providers if p.name == pending["provider"])
            candidates = [routing.Candidate(ref.name, ref.model, ref.alpha)]
        else:
            available = self.providers.available | frozenset(own_keys(row))
            plan = routing.plan(model, spec, available=available, unhealthy=self.providers.unhealthy())
            candidates = list(plan.candidates)
        try:
            refs = await fetch_references(self.http, spec, self.settings)
        except (BlockedURL, httpx.HTTPError) as exc:
            await self.lifecycle.transition(
                job_id,
                "failed",
                lease=self.worker_id,
                fields={
                    "error": job_error("input_reference_unavailable", f"an input reference could not be used: {exc}")
                },
            )
            return
        last: ProviderError | None = None
        for cand in candidates:
            provider = self.providers.get(cand.provider, api_key=own_keys(row).get(cand.provider))
            jobspec = job_spec(row, spec, cand.provider_model, refs)
            if is_local(provider):
                attempts.append({"provider": cand.provider, "outcome": "accepted", "at": now_ms() // 1000})
                started = await self.lifecycle.transition(
                    job_id,
                    "accepted",
                    lease=self.worker_id,
                    fields={
                        "provider": cand.provider,
                        "native_id": job_id,
                        "started_at": now_ms(),
                        "attempts": attempts,
                        "progress_source": "provider",
                    },
                )
                if started is not None:
                    await self._run_local(started, provider, jobspec)
                return
            if pending is None:
                attempts.append({"provider": cand.provider, "outcome": "pending", "at": now_ms() // 1000})
                await self.lifecycle.set_fields(job_id, {"attempts": attempts}, lease=self.worker_id)
            pending = None
            started = time.perf_counter()
            try:
                accepted = await provider.submit(jobspec)  # type: ignore[union-attr]
                observe_upstream(cand.provider, "submit", time.perf_counter() - started)
            except Rejected as exc:
                observe_upstream(cand.provider, "submit", time.perf_counter() - started, exc)
                self.providers.record(cand.provider, False, exc.message)
                attempts[-1] = {
                    "provider": cand.provider,
                    "outcome": "rejected",
                    "at": now_ms() // 1000,
                    "message": exc.message,
                    **({"status_code": exc.status_code} if exc.status_code else {}),
                }
                await self.lifecycle.set_fields(job_id, {"attempts": attempts}, lease=self.worker_id)
                last = exc
                if not exc.retryable:
                    break
                continue
            self.providers.record(cand.provider, True)
            attempts[-1] = {"provider": cand.provider, "outcome": "accepted", "at": now_ms() // 1000}
            interval = self.providers.configs[cand.provider].poll_interval_seconds
            done = await self.lifecycle.transition(
                job_id,
                "accepted",
                lease=self.worker_id,
                fields={
                    "provider": cand.provider,
                    "native_id": accepted.native_id,
                    "started_at": now_ms(),
                    "attempts": attempts,
                    "lease_owner": None,
                    "lease_until": None,
                    "next_run_at": now_ms() + int(interval * 1000),
                },
            )
            if done is None:  # cancelled meanwhile: the upstream job must not run on unpaid
                with contextlib.suppress(ProviderError):
                    await provider.cancel(accepted.native_id)  # type: ignore[union-attr]
            return
        if last is not None and not last.retryable:
            error = job_error(
                "upstream_error",
                last.message,
                provider=attempts[-1]["provider"],
                provider_request_id=last.request_id,
                attempts=attempts,
            )
        else:
            tried = ", ".join(f"{a['provider']} ({a.get('message', a['outcome'])})" for a in attempts) or "none"
            error = job_error(
                "no_provider_available", f"no provider accepted the job; tried: {tried}", attempts=attempts
            )
        await self.lifecycle.transition(
            job_id, "failed", lease=self.worker_id, fields={"error": error, "attempts": attempts}
        )

    async def _run_local(self, row: Row, provider: LocalProvider, jobspec: JobSpec | None = None) -> None:
        job_id = row["id"]
        if jobspec is None:
            spec = orjson.loads(row["spec"])
            ref = next(p for p in self.catalog.by_id[row["model"]].providers if p.name == provider.name)
            jobspec = job_spec(row, spec, ref.model, await fetch_references(self.http, spec, self.settings))
        workdir = self.tmpdir / job_id
        workdir.mkdir(parents=True, exist_ok=True)
        last = {"p": -1}

        async def on_progress(percent: int) -> None:
            percent = min(99, percent)
            if percent != last["p"]:
                crossed = percent // 10 != max(last["p"], 0) // 10
                last["p"] = percent
                await self.lifecycle.progress(job_id, self.worker_id, percent, "provider", crossed_step=crossed)

        try:
            try:
                outputs = await provider.run(jobspec, workdir, on_progress, lambda: job_id in self.cancelled)
            except ImageDecodeError as exc:  # retrying cannot fix the image: fail now, void the hold
                await self.lifecycle.transition(
                    job_id,
                    "failed",
                    lease=self.worker_id,
                    fields={
                        "error": job_error("input_reference_invalid", f"the first_frame image cannot be used: {exc}")
                    },
                )
                return
            if job_id in self.cancelled:
                return
            stored = [await ingest(self.blobs, job_id, out.index, out.path, out.mime_type) for out in outputs]
            await self.lifecycle.transition(
                job_id,
                "done",
                lease=self.worker_id,
                fields={"outputs": stored, "progress_source": "provider"},
                produced_seconds=[o["duration_seconds"] for o in stored],
            )
        except Exception as exc:
            if job_id in self.cancelled or type(exc).__name__ == "RenderCancelled":
                return
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

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
            await self._release(
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
            await self._release(job_id, delay=interval, failures=0)
        elif up.status == "completed":
            await self._complete(row, provider, up, interval)
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

    async def _complete(self, row: Row, provider: RemoteProvider, up: Upstream, interval: float) -> None:
        job_id = row["id"]
        stored = []
        try:
            for out in up.outputs:
                path = await download(provider.open_output(out), self.tmpdir)
                try:
                    stored.append(await ingest(self.blobs, job_id, out.index, path, out.mime_type))
                except ProbeError as exc:  # a garbled transfer (a 200 with an error page, say): fetch it again
                    raise PollFailed(f"the output is not a video that decodes: {exc}", retryable=True) from exc
        except PollFailed as exc:
            if exc.retryable:
                await self._release(job_id, delay=interval, failures=row["poll_failures"] + 1, last_error=exc.message)
                return
            await self.lifecycle.transition(
                job_id,
                "failed",
                lease=self.worker_id,
                fields={
                    "error": job_error(
                        "output_unavailable",
                        f"the output could not be fetched: {exc.message}",
                        provider=provider.name,
                        provider_request_id=exc.request_id,
                    )
                },
            )
            return
        if not stored:
            await self.lifecycle.transition(
                job_id,
                "failed",
                lease=self.worker_id,
                fields={
                    "error": job_error(
                        "upstream_error", "the upstream finished without an output", provider=provider.name
                    )
                },
            )
            return
        await self.lifecycle.transition(
            job_id,
            "done",
            lease=self.worker_id,
            fields={"outputs": stored},
            produced_seconds=[o["duration_seconds"] for o in stored],
        )

    async def _cancel_upstream(self, row: Row) -> None:
        own = own_keys(row)
        usable = row["provider"] in self.providers.available or row["provider"] in own
        provider = self.providers.get(row["provider"], api_key=own.get(row["provider"])) if usable else None
        if provider is not None and not is_local(provider) and provider.cancellable and row["native_id"]:
            try:
                await provider.cancel(row["native_id"])
            except ProviderError as exc:
                log.warning("job %s: upstream cancel failed: %s", row["id"], exc)
        await self.lifecycle.set_fields(row["id"], {"next_run_at": None, "lease_owner": None, "lease_until": None})

    async def _expire(self, row: Row) -> None:
        done = await self.lifecycle.transition(
            row["id"],
            "deadline",
            lease=self.worker_id,
            fields={"error": job_error("deadline_exceeded", "the job did not finish before its deadline")},
        )
        if done is not None and row["status"] == "processing":
            await self._cancel_upstream(done)
