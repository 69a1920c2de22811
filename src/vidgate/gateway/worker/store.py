"""Storing a finished job's outputs, retried while the store is down, never at the cost of the output.

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
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from vidgate.gateway.ids import now_ms
from vidgate.gateway.providers.base import JobSpec, LocalProvider, PollFailed, RemoteProvider, Upstream
from vidgate.gateway.render.image import ImageDecodeError
from vidgate.gateway.render.probe import ProbeError
from vidgate.gateway.storage.db import Row
from vidgate.gateway.worker.jobspec import fetch_references, job_error, job_spec
from vidgate.gateway.worker.leases import retry_delay
from vidgate.gateway.worker.outputs import StoreFailed, download, ingest

if TYPE_CHECKING:
    from vidgate.gateway.worker.runner import Worker

log = logging.getLogger("vidgate.worker")

MANIFEST = "rendered.json"  # in a render's workdir: its files, and what each became once stored
DEFAULT_OUTPUT_TTL_SECONDS = 3600.0


def _load(workdir: Path) -> list[dict[str, Any]] | None:
    """What an earlier try rendered, if every file not yet stored is still there."""
    try:
        rendered = orjson.loads((workdir / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(rendered, list) or not all(
        e.get("stored") is not None or (workdir / e["file"]).is_file() for e in rendered
    ):
        return None
    return rendered


def _save(workdir: Path, rendered: list[dict[str, Any]]) -> None:
    part = workdir / f"{MANIFEST}.new"
    part.write_bytes(orjson.dumps(rendered))
    os.replace(part, workdir / MANIFEST)


class OutputStore:
    """One worker's output storing, for upstream results and built-in renders alike."""

    def __init__(self, worker: Worker) -> None:
        self.w = worker

    async def complete(self, row: Row, provider: RemoteProvider, up: Upstream) -> None:
        """Copy a finished upstream job's outputs into the store and settle it."""
        w = self.w
        job_id = row["id"]
        stored = []
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
            await self._store_failed(row, exc, ttl=ttl)
            return
        except PollFailed as exc:
            if exc.retryable:
                failures = row["poll_failures"] + 1
                delay = retry_delay(failures, w.settings.step_retry_seconds)
                await w.release(job_id, delay=delay, failures=failures, last_error=exc.message)
                return
            await w.lifecycle.transition(
                job_id,
                "failed",
                lease=w.worker_id,
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
            await w.lifecycle.transition(
                job_id,
                "failed",
                lease=w.worker_id,
                fields={
                    "error": job_error(
                        "upstream_error", "the upstream finished without an output", provider=provider.name
                    )
                },
            )
            return
        await w.lifecycle.transition(
            job_id,
            "done",
            lease=w.worker_id,
            fields={"outputs": stored},
            produced_seconds=[o["duration_seconds"] for o in stored],
        )

    async def run_local(self, row: Row, provider: LocalProvider, jobspec: JobSpec | None = None) -> None:
        """Render a built-in job (unless an earlier try's render waits to be stored), store it, settle it."""
        w = self.w
        job_id = row["id"]
        workdir = w.tmpdir / job_id
        rendered = _load(workdir)
        if rendered is None:
            rendered = await self._render(row, provider, jobspec, workdir)
            if rendered is None:
                return
        else:
            log.info("job %s: storing the render an earlier try made", job_id)
        if job_id in w.cancelled:
            shutil.rmtree(workdir, ignore_errors=True)
            return
        try:
            for entry in rendered:
                if entry.get("stored") is None:
                    path = workdir / entry["file"]
                    entry["stored"] = await ingest(w.blobs, job_id, entry["index"], path, entry["mime_type"], keep=True)
                    _save(workdir, rendered)
        except StoreFailed as exc:
            await self._store_failed(row, exc, ttl=None)
            return
        except Exception:
            shutil.rmtree(workdir, ignore_errors=True)  # not the store's fault: render afresh next time
            raise
        stored = [e["stored"] for e in rendered]
        await w.lifecycle.transition(
            job_id,
            "done",
            lease=w.worker_id,
            fields={"outputs": stored, "progress_source": "provider"},
            produced_seconds=[o["duration_seconds"] for o in stored],
        )
        shutil.rmtree(workdir, ignore_errors=True)

    async def _render(
        self, row: Row, provider: LocalProvider, jobspec: JobSpec | None, workdir: Path
    ) -> list[dict[str, Any]] | None:
        """Render into ``workdir`` and note the files there; None when the job ended instead."""
        w = self.w
        job_id = row["id"]
        if jobspec is None:
            spec = orjson.loads(row["spec"])
            ref = next(p for p in w.catalog.by_id[row["model"]].providers if p.name == provider.name)
            jobspec = job_spec(row, spec, ref.model, await fetch_references(w.http, spec, w.settings))
        shutil.rmtree(workdir, ignore_errors=True)  # what a render cut short left is of no use
        workdir.mkdir(parents=True, exist_ok=True)
        last = {"p": -1}

        async def on_progress(percent: int) -> None:
            percent = min(99, percent)
            if percent != last["p"]:
                crossed = percent // 10 != max(last["p"], 0) // 10
                last["p"] = percent
                await w.lifecycle.progress(job_id, w.worker_id, percent, "provider", crossed_step=crossed)

        try:
            outputs = await provider.run(jobspec, workdir, on_progress, lambda: job_id in w.cancelled)
        except ImageDecodeError as exc:  # retrying cannot fix the image: fail now, void the hold
            shutil.rmtree(workdir, ignore_errors=True)
            await w.lifecycle.transition(
                job_id,
                "failed",
                lease=w.worker_id,
                fields={"error": job_error("input_reference_invalid", f"the first_frame image cannot be used: {exc}")},
            )
            return None
        except BaseException as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            if isinstance(exc, Exception) and (job_id in w.cancelled or type(exc).__name__ == "RenderCancelled"):
                return None
            raise
        if job_id in w.cancelled:
            shutil.rmtree(workdir, ignore_errors=True)
            return None
        rendered = [{"index": o.index, "file": o.path.name, "mime_type": o.mime_type} for o in outputs]
        _save(workdir, rendered)
        return rendered

    async def _store_failed(self, row: Row, exc: StoreFailed, *, ttl: float | None) -> None:
        """Try storing again later, within how long the output lasts upstream (``ttl``) and the deadline."""
        w = self.w
        job_id = row["id"]
        attempts: list[dict[str, Any]] = orjson.loads(row["attempts"] or "[]") or [
            {"provider": row["provider"], "outcome": "accepted", "at": (row["started_at"] or now_ms()) // 1000}
        ]
        last = attempts[-1]
        now = now_ms()
        tries = int(last.get("store_failures", 0)) + 1
        since = int(last.get("store_since") or now)
        last.update(store_failures=tries, store_since=since)
        limit = row["deadline_at"] if ttl is None else min(row["deadline_at"], since + int(ttl * 1000))
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
                provider=row["provider"],
            )
            await w.lifecycle.transition(
                job_id, "failed", lease=w.worker_id, fields={"error": error, "attempts": attempts}
            )
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
