"""The built-in provider's path: render in this process, store the files, settle the job.

A render is kept in its workdir (the data dir's tmp) with a manifest of its files, and of what each
became once stored, until every file is stored: a retry after a store outage stores what is left
without rendering again.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import msgspec
from msgspec.structs import replace

from vidgate.gateway.jobs.records import JobRecord, StoredOutput, job_error
from vidgate.gateway.providers.base import JobSpec, LocalProvider
from vidgate.gateway.render.image import ImageDecodeError
from vidgate.gateway.worker.context import WorkerContext
from vidgate.gateway.worker.jobspec import fetch_job_references, job_spec
from vidgate.gateway.worker.outputs import StoreFailed, ingest
from vidgate.gateway.worker.store import OutputStore

log = logging.getLogger("vidgate.worker")

MANIFEST = "rendered.json"  # in a render's workdir


class Rendered(msgspec.Struct, frozen=True):
    """One rendered file, and the output it became once stored."""

    index: int
    file: str  # its name in the workdir
    mime_type: str
    stored: StoredOutput | None = None


_MANIFEST = msgspec.json.Decoder(list[Rendered])
_ENCODE = msgspec.json.Encoder().encode


def _load(workdir: Path) -> list[Rendered] | None:
    """What an earlier try rendered, if every file not yet stored is still there."""
    try:
        rendered = _MANIFEST.decode((workdir / MANIFEST).read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
    if not all(e.stored is not None or (workdir / e.file).is_file() for e in rendered):
        return None
    return rendered


def _save(workdir: Path, rendered: list[Rendered]) -> None:
    part = workdir / f"{MANIFEST}.new"
    part.write_bytes(_ENCODE(rendered))
    os.replace(part, workdir / MANIFEST)


class LocalRender:
    """One worker's built-in renders."""

    def __init__(self, ctx: WorkerContext, store: OutputStore) -> None:
        self.ctx = ctx
        self.store = store  # stores the files and settles the job, as for an upstream's outputs

    async def run(self, job: JobRecord, provider: LocalProvider, jobspec: JobSpec | None = None) -> None:
        """Render a built-in job (unless an earlier try's render waits to be stored), store it, settle it."""
        w = self.ctx
        job_id = job.id
        workdir = w.tmpdir / job_id
        rendered = _load(workdir)
        if rendered is None:
            rendered = await self._render(job, provider, jobspec, workdir)
            if rendered is None:
                return
        else:
            log.info("job %s: storing the render an earlier try made", job_id)
        if job_id in w.cancelled:
            shutil.rmtree(workdir, ignore_errors=True)
            return
        stored: list[StoredOutput] = []
        try:
            for i, entry in enumerate(rendered):
                output = entry.stored
                if output is None:
                    path = workdir / entry.file
                    output = await ingest(w.blobs, job_id, entry.index, path, entry.mime_type, keep=True)
                    rendered[i] = replace(entry, stored=output)
                    _save(workdir, rendered)
                stored.append(output)
        except StoreFailed as exc:
            await self.store.store_failed(job, exc, ttl=None)
            return
        except Exception:
            shutil.rmtree(workdir, ignore_errors=True)  # not the store's fault: render afresh next time
            raise
        await self.store.finish(job_id, stored, progress_source="provider")
        shutil.rmtree(workdir, ignore_errors=True)

    async def _render(
        self, job: JobRecord, provider: LocalProvider, jobspec: JobSpec | None, workdir: Path
    ) -> list[Rendered] | None:
        """Render into ``workdir`` and note the files there; None when the job ended instead."""
        w = self.ctx
        job_id = job.id
        if jobspec is None:
            ref = next(p for p in w.catalog.by_id[job.model].providers if p.name == provider.name)
            refs = await fetch_job_references(w, job)
            jobspec = job_spec(job, ref.model, refs, provider=provider.name)
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
            await w.fail(job_id, job_error("input_reference_invalid", f"an input reference cannot be used: {exc}"))
            return None
        except BaseException as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            if isinstance(exc, Exception) and (job_id in w.cancelled or type(exc).__name__ == "RenderCancelled"):
                return None
            raise
        if job_id in w.cancelled:
            shutil.rmtree(workdir, ignore_errors=True)
            return None
        rendered = [Rendered(o.index, o.path.name, o.mime_type) for o in outputs]
        _save(workdir, rendered)
        return rendered
