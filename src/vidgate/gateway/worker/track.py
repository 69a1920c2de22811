"""Following a job an upstream runs: its status, progress and outputs, polled at the provider's pace;
and, once a job has ended here first, asking the upstream to stop it."""

from __future__ import annotations

import logging
import shutil
import time

from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs.records import JobRecord, job_error
from vidgate.gateway.metrics import observe_upstream, upstream_failed
from vidgate.gateway.providers.base import PollFailed, ProviderError, RemoteProvider, Upstream, is_local
from vidgate.gateway.secret import SealError
from vidgate.gateway.worker.context import UNSCHEDULED, WorkerContext
from vidgate.gateway.worker.jobspec import job_spec, own_keys
from vidgate.gateway.worker.store import OutputStore

log = logging.getLogger("vidgate.worker")


class Tracker:
    """One worker's polls of upstream jobs."""

    def __init__(self, ctx: WorkerContext, store: OutputStore) -> None:
        self.ctx = ctx
        self.store = store  # takes a finished job's outputs

    async def poll(self, job: JobRecord, provider: RemoteProvider) -> None:
        w = self.ctx
        job_id = job.id
        interval = w.providers.configs[provider.name].poll_interval_seconds
        started = time.perf_counter()
        try:
            up: Upstream = await provider.poll(job_spec(job, "", ()), job.native_id or "")
            observe_upstream(provider.name, "poll", time.perf_counter() - started)
        except PollFailed as exc:
            observe_upstream(provider.name, "poll", time.perf_counter() - started, exc)
            w.providers.record(provider.name, False, exc)
            failures = job.poll_failures + 1
            await w.release(
                job_id, delay=min(60.0, interval * 2 ** min(failures, 5)), failures=failures, last_error=exc.message
            )
            return
        w.providers.record(provider.name, True)
        if up.status in ("queued", "processing"):
            progress, source = up.progress, "provider"
            if progress is None:
                elapsed = (now_ms() - (job.started_at or job.created_at)) / 1000
                progress, source = min(95, int(100 * elapsed / max(1.0, job.expected_seconds))), "estimate"
            if progress != job.progress:
                crossed = (progress // 10) != ((job.progress or 0) // 10)
                await w.lifecycle.progress(job_id, w.worker_id, progress, source, crossed_step=crossed)
            await w.release(job_id, delay=interval, failures=0)
        elif up.status == "completed":
            await self.store.complete(job, provider, up)
        elif up.status == "cancelled":
            await w.lifecycle.transition(job_id, "cancel", lease=w.worker_id)
        else:
            err = up.error
            error = job_error(
                err.code if err else "upstream_error",
                err.message if err else "the upstream job failed",
                provider=provider.name,
                provider_request_id=err.request_id if err else None,
            )
            await w.fail(job_id, error)

    async def cancel_upstream(self, job: JobRecord) -> None:
        """Ask the upstream to stop a job that ended here (where it can), then stop scheduling the job."""
        w = self.ctx
        try:
            own = own_keys(job, w.settings.secret_box)
        except SealError as exc:  # sealed under another key: the upstream job cannot be stopped from here
            log.warning("job %s: upstream cancel skipped: %s", job.id, exc)
            own = None
        name = job.provider or ""
        usable = own is not None and (name in w.providers.available or name in own)
        provider = w.providers.get(name, api_key=(own or {}).get(name)) if usable else None
        if provider is not None and not is_local(provider) and provider.cancellable and job.native_id:
            try:
                await provider.cancel(job.native_id)  # type: ignore[union-attr]
            except ProviderError as exc:
                upstream_failed(name, "cancel", exc)
                log.warning("job %s: upstream cancel failed: %s", job.id, exc)
        shutil.rmtree(w.tmpdir / job.id, ignore_errors=True)  # a render kept for storing
        # The clean-up is the last use of the job's own provider keys: they go with its schedule.
        await w.lifecycle.set_fields(job.id, {**UNSCHEDULED, "byok": None})
