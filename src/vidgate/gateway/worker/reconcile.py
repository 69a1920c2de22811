"""Compare the blob store with the database: objects no job owns, and outputs no object backs.

Orphans are found by the rule the worker's orphan sweep applies (``retention.unowned``), so a
repair removes what the sweep would remove at its next pass (objects older than the grace period)
plus the objects whose removal is already recorded, and nothing else. A completed job whose output
object is missing is reported and never changed: the gateway cannot recreate the bytes, and a
store pointed at the wrong bucket, prefix or disk looks exactly like a loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from msgspec import UNSET

from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs.records import decode_outputs
from vidgate.gateway.storage.blobs import BlobStore, forget_removals, job_of
from vidgate.gateway.storage.db import Database, Q
from vidgate.gateway.worker.retention import JOBS_BY_ID, output_keys, remove_orphans, unowned

_COMPLETED = Q(
    "SELECT id, owner_id, outputs FROM jobs WHERE status = 'completed' AND id > :after ORDER BY id LIMIT 1000"
)
_RECORDED = Q("SELECT key FROM pending_deletions")
_ANY_JOB = Q("SELECT 1 AS one FROM jobs LIMIT 1")


@dataclass
class Orphan:
    key: str
    job_id: str | None  # None: not a key the gateway writes (left alone)
    job_status: str | None  # None: the job has no row (deleted, or never recorded)
    bytes: int
    age_seconds: float
    removal_recorded: bool  # a delete or retention asked for it and the store has not confirmed yet
    removable: bool  # what --repair removes: recorded, or older than the grace period


@dataclass
class MissingOutput:
    job_id: str
    owner_id: str
    index: int
    key: str
    bytes: int


@dataclass
class Report:
    store: str
    grace_seconds: float
    objects: int = 0
    bytes: int = 0
    orphans: list[Orphan] = field(default_factory=list)
    missing: list[MissingOutput] = field(default_factory=list)
    pending_removals: int = 0  # removal records, whatever their object's state
    stale_records: int = 0  # removal records whose object is already gone
    repair: bool = False
    removed: list[str] = field(default_factory=list)
    forgotten_records: int = 0
    error: str | None = None  # why a repair stopped, or was refused

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def _expected(db: Database) -> dict[str, MissingOutput]:
    """Every output key completed jobs list, read before the store is listed: a job completing after
    this is not in it (its object is checked for ownership instead), so nothing is missing by a race."""
    expected: dict[str, MissingOutput] = {}
    after = ""
    while rows := await db.fetchall(_COMPLETED, {"after": after}):
        for row in rows:
            for out in decode_outputs(row["outputs"]):
                expected[out.key] = MissingOutput(row["id"], row["owner_id"], out.index, out.key, out.bytes)
                for image in (out.thumbnail, out.spritesheet):
                    if image is not UNSET:
                        expected[image.key] = MissingOutput(
                            row["id"], row["owner_id"], out.index, image.key, image.bytes
                        )
        after = rows[-1]["id"]
    return expected


async def _confirm_missing(db: Database, blobs: BlobStore, candidates: dict[str, MissingOutput]) -> list[MissingOutput]:
    """The candidates whose job still lists them as completed and whose object is still absent: a job
    deleted or expired while the store was listed is not a loss."""
    if not candidates:
        return []
    ids = sorted({m.job_id for m in candidates.values()})
    jobs = {r["id"]: r for r in await db.fetchall(JOBS_BY_ID, {"ids": orjson.dumps(ids).decode()})}
    missing = []
    for key, m in candidates.items():
        job = jobs.get(m.job_id)
        if job is None or job["status"] != "completed" or key not in output_keys(job["outputs"]):
            continue
        if not await blobs.exists(key):
            missing.append(m)
    return sorted(missing, key=lambda m: (m.job_id, m.index))


async def reconcile(
    db: Database, blobs: BlobStore, *, grace_ms: int, repair: bool = False, force: bool = False
) -> Report:
    """Find orphans and missing outputs; with ``repair``, remove the removable orphans and forget
    removal records whose object is gone. Refuses to repair for a database with no job at all
    (most likely the wrong one, which would make every object an orphan) unless ``force``."""
    await blobs.ping()  # a store that is down lists nothing: every output would look missing
    report = Report(store=blobs.url, grace_seconds=grace_ms / 1000, repair=repair)
    expected = await _expected(db)
    recorded = {r["key"] for r in await db.fetchall(_RECORDED)}
    report.pending_removals = len(recorded)
    seen: set[str] = set()
    now = now_ms()
    async for batch in blobs.listing():
        report.objects += len(batch)
        report.bytes += sum(size for _, _, size in batch)
        rest = []
        for key, modified, size in batch:
            seen.add(key)
            if expected.pop(key, None) is None:
                rest.append((key, modified, size))
        found = await unowned(db, [key for key, _, _ in rest if job_of(key) is not None])
        for key, modified, size in rest:
            job_id = job_of(key)
            if job_id is not None and key not in found:
                continue
            job = found.get(key)
            old = now - modified > grace_ms
            report.orphans.append(
                Orphan(
                    key=key,
                    job_id=job_id,
                    job_status=job["status"] if job is not None else None,
                    bytes=size,
                    age_seconds=round((now - modified) / 1000, 1),
                    removal_recorded=key in recorded,
                    removable=job_id is not None and (old or key in recorded),
                )
            )
    report.missing = await _confirm_missing(db, blobs, expected)
    stale = sorted(recorded - seen)
    report.stale_records = len(stale)
    if repair:
        await _repair(db, blobs, report, stale, force=force)
    return report


async def _repair(db: Database, blobs: BlobStore, report: Report, stale: list[str], *, force: bool) -> None:
    removable = [o.key for o in report.orphans if o.removable]
    if removable and not force and await db.fetchone(_ANY_JOB) is None:
        report.error = (
            f"refused to remove {len(removable)} object(s): the database holds no job at all, so every object "
            "looks orphaned; check that this is the gateway's own database, then re-run with --force"
        )
        return
    if stale:
        async with db.transaction() as tx:
            await forget_removals(tx, stale)
        report.forgotten_records = len(stale)
    for key in removable:
        try:
            await remove_orphans(db, blobs, [key])
        except Exception as exc:  # the store went away mid-repair: stop, what is left stays reported
            report.error = f"stopped at {key}: {type(exc).__name__}: {exc}"
            return
        report.removed.append(key)
