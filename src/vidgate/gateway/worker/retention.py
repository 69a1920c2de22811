"""Retention, recorded removals and orphans: what the blob store holds that no job should keep any more.

Retention: completed jobs past the configured retention become expired, and their outputs are
recorded for removal. Recorded removals (of a deleted or expired job's outputs) are retried with a
doubling delay until the store confirms them, so space comes back within seconds of the store
answering again. Orphans: an object some write left behind that no job owns (a cancel that raced
the upload, a crash between the upload and the row that records it, or between a retention step and
the record of its removals). An object is owned while its job is completed and lists it among its
outputs, or while its job is live and its key was recorded in ``pending_objects`` before the write;
anything else older than the grace period is removed, with local files and S3 alike, and any removal
recorded for it is forgotten with it. The grace period is the backstop; the records are what make
a delete prompt.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence

import orjson

from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs import files
from vidgate.gateway.jobs.lifecycle import Lifecycle
from vidgate.gateway.jobs.records import decode_outputs
from vidgate.gateway.settings import Settings
from vidgate.gateway.storage.blobs import BlobStore, forget_removals, job_of, schedule_removal
from vidgate.gateway.storage.db import Database, Q, Row

log = logging.getLogger("vidgate.worker")

REMOVAL_BATCH = 100
_EXPIRED = Q(
    "SELECT id, outputs FROM jobs WHERE status = 'completed' AND completed_at < :cutoff ORDER BY completed_at LIMIT 100"
)
# A batch of ids as one JSON array: one compiled query whatever the batch's size, on both databases.
JOBS_BY_ID = Q(
    "SELECT id, status, outputs FROM jobs WHERE id IN (SELECT value FROM json_each(:ids))",
    pg="SELECT id, status, outputs FROM jobs WHERE id IN (SELECT jsonb_array_elements_text(CAST(:ids AS jsonb)))",
)
_PENDING = Q(
    "SELECT key FROM pending_objects WHERE key IN (SELECT value FROM json_each(:keys))",
    pg="SELECT key FROM pending_objects WHERE key IN (SELECT jsonb_array_elements_text(CAST(:keys AS jsonb)))",
)
_FORGET = Q(
    "DELETE FROM pending_objects WHERE key IN (SELECT value FROM json_each(:keys))",
    pg="DELETE FROM pending_objects WHERE key IN (SELECT jsonb_array_elements_text(CAST(:keys AS jsonb)))",
)
# A record only protects an object of a live job; once the job has ended it has no use.
_STALE = Q(
    "DELETE FROM pending_objects WHERE created_at < :cutoff AND NOT EXISTS (SELECT 1 FROM jobs "
    "WHERE jobs.id = pending_objects.job_id AND jobs.status IN ('queued', 'processing'))"
)


def output_keys(outputs: str | None) -> list[str]:
    """The object keys of an ``outputs`` column: each output's video and its images."""
    return [key for out in decode_outputs(outputs) for key in out.object_keys()]


async def sweep_retention(db: Database, lifecycle: Lifecycle, blobs: BlobStore, retention_ms: int) -> None:
    """Expire completed jobs past retention and record their outputs for removal. The removals are
    left to the sweeper, so a store outage never holds up the worker loop this runs in."""
    cutoff = now_ms() - retention_ms
    for row in await db.fetchall(_EXPIRED, {"cutoff": cutoff}):
        if await lifecycle.transition(row["id"], "retention") is not None:
            async with db.transaction() as tx:
                await schedule_removal(tx, row["id"], output_keys(row["outputs"]), now_ms())
    await files.sweep_expired(db)  # uploads past their expiry, the same way


def _owned(key: str, job: Row | None, pending: set[str]) -> bool:
    if job is None:
        return False
    if job["status"] == "completed":
        return key in output_keys(job["outputs"])
    return job["status"] in ("queued", "processing") and key in pending


async def unowned(db: Database, keys: Sequence[str]) -> dict[str, Row | None]:
    """Of ``keys`` (job object keys), those no job owns, each with its job's row (None when it has none)."""
    if not keys:
        return {}
    ids = sorted({job_id for key in keys if (job_id := job_of(key)) is not None})
    jobs = {r["id"]: r for r in await db.fetchall(JOBS_BY_ID, {"ids": orjson.dumps(ids).decode()})}
    pending = {r["key"] for r in await db.fetchall(_PENDING, {"keys": orjson.dumps(list(keys)).decode()})}
    found = {key: jobs.get(job_of(key) or "") for key in keys}
    return {key: job for key, job in found.items() if not _owned(key, job, pending)}


async def remove_orphans(db: Database, blobs: BlobStore, keys: Sequence[str]) -> None:
    """Remove objects found unowned, then every record that named them."""
    for key in keys:
        await blobs.delete(key)
        log.info("removed %s: no job owns it", key)
    if keys:
        async with db.transaction() as tx:
            await tx.execute(_FORGET, {"keys": orjson.dumps(list(keys)).decode()})
            await forget_removals(tx, keys)


async def sweep_orphans(db: Database, blobs: BlobStore, grace_ms: int) -> int:
    """Remove every object older than ``grace_ms`` that no job owns; the number removed."""
    cutoff = now_ms() - grace_ms
    removed = 0
    async for batch in blobs.listing():
        old = [key for key, modified, _ in batch if modified < cutoff and job_of(key) is not None]
        orphans = list(await unowned(db, old))
        await remove_orphans(db, blobs, orphans)
        removed += len(orphans)
    removed += await files.sweep_orphans(db, blobs, cutoff)
    async with db.transaction() as tx:
        await tx.execute(_STALE, {"cutoff": cutoff})
    return removed


class OrphanSweeper:
    """Retries due removals every ``deletion_retry_seconds`` and sweeps the store for orphans every
    ``orphan_sweep_seconds``, whatever fails in between."""

    def __init__(self, db: Database, blobs: BlobStore, settings: Settings) -> None:
        self.db = db
        self.blobs = blobs
        self.grace_ms = int(settings.orphan_grace_seconds * 1000)
        self.interval = settings.orphan_sweep_seconds
        self.retry_interval = settings.deletion_retry_seconds
        self.first_delay_ms = int(settings.deletion_retry_seconds * 1000)

    async def run(self, stop: asyncio.Event) -> None:
        next_sweep = time.monotonic() + self.interval
        failures = 0  # in a row, of the database: the store's failures back off per object instead
        while not stop.is_set():
            wait = min(self.retry_interval * 2**failures, 300.0, max(0.0, next_sweep - time.monotonic()))
            try:
                await asyncio.wait_for(stop.wait(), timeout=wait)
                return
            except TimeoutError:
                pass
            ok = await self._guarded("removal retry", self._retry_removals())
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self.interval
                ok = await self._guarded("orphan sweep", sweep_orphans(self.db, self.blobs, self.grace_ms)) and ok
            failures = 0 if ok else min(failures + 1, 10)

    async def _retry_removals(self) -> None:
        while True:  # full batches in a row: a backlog drains at the store's pace, not one batch a tick
            removed, failed = await self.blobs.retry_removals(self.first_delay_ms, limit=REMOVAL_BATCH)
            if failed or removed < REMOVAL_BATCH:
                return

    async def _guarded(self, what: str, work: Awaitable[object]) -> bool:
        try:
            await work
        except Exception as exc:  # the store or the database is down: the next round tries again
            log.warning("%s failed (%s: %s)", what, type(exc).__name__, exc)
            return False
        return True
