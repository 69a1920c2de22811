"""Storing a finished job's outputs and settling it, retried while the store is down, never at the
cost of the output.

An object-store error (S3 unreachable, a local disk failing) neither fails the job nor voids its
hold: the step is tried again with backoff, on a budget of its own rather than the failed-step
one. A remote job's output is downloaded again from the upstream each time, so the retries last
no longer than the upstream keeps it (the provider's ``output_ttl_seconds``) nor past the job's
deadline. A built-in render is kept in the data dir's tmp until it is stored, so a retry stores it
without rendering again. What the store said is logged; a job's error never names a host, a bucket
or a path.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence

from msgspec import UNSET
from msgspec.structs import replace

from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs import assets
from vidgate.gateway.jobs.records import Attempt, JobRecord, StoredOutput, job_error
from vidgate.gateway.providers.base import PollFailed, RemoteProvider, Upstream
from vidgate.gateway.render.probe import ProbeError
from vidgate.gateway.worker.context import WorkerContext
from vidgate.gateway.worker.leases import retry_delay
from vidgate.gateway.worker.outputs import StoreFailed, download, ingest

log = logging.getLogger("vidgate.worker")

DEFAULT_OUTPUT_TTL_SECONDS = 3600.0


class OutputStore:
    """One worker's output storing, for upstream results and built-in renders alike."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx

    async def complete(self, job: JobRecord, provider: RemoteProvider, up: Upstream) -> None:
        """Copy a finished upstream job's outputs into the store and settle it."""
        w = self.ctx
        job_id = job.id
        stored: list[StoredOutput] = []
        try:
            for out in up.outputs:
                path = await download(provider.open_output(out), w.tmpdir, allow_private=w.settings.allow_private_urls)
                try:
                    stored.append(await ingest(w.blobs, job_id, out.index, path, out.mime_type))
                except ProbeError as exc:  # a garbled transfer (a 200 with an error page, say): fetch it again
                    log.warning("job %s: output %d does not decode: %s", job_id, out.index, exc)
                    raise PollFailed("the output is not a video that decodes", retryable=True) from exc
        except StoreFailed as exc:
            config = w.providers.configs.get(provider.name)
            ttl = config.output_ttl_seconds if config is not None else DEFAULT_OUTPUT_TTL_SECONDS
            await self.store_failed(job, exc, ttl=ttl)
            return
        except PollFailed as exc:
            if exc.retryable:
                failures = job.poll_failures + 1
                delay = retry_delay(failures, w.settings.step_retry_seconds)
                await w.release(job_id, delay=delay, failures=failures, last_error=exc.message)
                return
            message = f"the output could not be fetched: {exc.message}"
            error = job_error("output_unavailable", message, provider=provider.name, provider_request_id=exc.request_id)
            await w.fail(job_id, error)
            return
        if not stored:
            message = "the upstream finished without an output"
            await w.fail(job_id, job_error("upstream_error", message, provider=provider.name))
            return
        await self.finish(job_id, stored)

    async def finish(self, job_id: str, stored: Sequence[StoredOutput], *, progress_source: str | None = None) -> None:
        """Complete the job with its stored outputs and settle it for the seconds they hold.

        The outputs' asset rows go first: an asset of a completed job is always found, and a row
        whose job never completed with it resolves to nothing (``jobs.assets``).
        """
        w = self.ctx
        await assets.record(w.db, job_id, stored)
        fields: dict[str, object] = {"outputs": stored}
        if progress_source is not None:
            fields["progress_source"] = progress_source
        produced = [o.duration_seconds for o in stored]
        await w.lifecycle.transition(job_id, "done", lease=w.worker_id, fields=fields, produced_seconds=produced)

    async def store_failed(self, job: JobRecord, exc: StoreFailed, *, ttl: float | None) -> None:
        """Try storing again later, within how long the output lasts upstream (``ttl``) and the deadline."""
        w = self.ctx
        job_id = job.id
        attempts = list(job.attempts or ()) or [
            Attempt(job.provider or "", "accepted", (job.started_at or now_ms()) // 1000)
        ]
        last = attempts[-1]
        now = now_ms()
        tries = (0 if last.store_failures is UNSET else last.store_failures) + 1
        since = last.store_since if last.store_since is not UNSET and last.store_since else now
        attempts[-1] = replace(last, store_failures=tries, store_since=since)
        limit = job.deadline_at if ttl is None else min(job.deadline_at, since + int(ttl * 1000))
        cause = exc.__cause__
        if now >= limit:
            log.error(
                "job %s: its output could not be stored for %.0f s (%s: %s); giving up",
                job_id,
                (now - since) / 1000,
                type(cause).__name__,
                cause,
            )
            error = job_error(
                "output_unavailable",
                "the output could not be stored before the provider's copy of it expired",
                provider=job.provider,
            )
            await w.fail(job_id, error, attempts=attempts)
            shutil.rmtree(w.tmpdir / job_id, ignore_errors=True)  # a render kept for storing
            return
        delay = retry_delay(tries, w.settings.step_retry_seconds)
        log.warning(
            "job %s: storing its output failed (%d in a row; %s: %s); trying again in %.1f s",
            job_id,
            tries,
            type(cause).__name__,
            cause,
            delay,
            exc_info=cause if tries == 1 else None,  # the first one in a row with its traceback, for operators
        )
        due = min(now + int(delay * 1000), limit)
        fields = {"attempts": attempts, "lease_owner": None, "lease_until": None, "next_run_at": due}
        await w.lifecycle.set_fields(job_id, fields, lease=w.worker_id)
