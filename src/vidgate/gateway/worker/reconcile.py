"""Compare the blob store with the database: objects no job or upload owns, outputs and uploads no
object backs, and uploads past their expiry whose row is still there.

Orphans are found by the rules the worker's orphan sweep applies (``retention.unowned`` for job
objects, no ``files`` row for an upload's), so a repair removes what the sweep would remove at its
next pass (objects older than the grace period) plus the objects whose removal is already recorded,
and expires the uploads the retention sweep would expire; nothing else. A completed job whose output
object is missing, or an upload whose object is, is reported and never changed: the gateway cannot
recreate the bytes, and a store pointed at the wrong bucket, prefix or disk looks exactly like a loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from msgspec import UNSET

from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs import files
from vidgate.gateway.jobs.records import decode_outputs
from vidgate.gateway.storage.blobs import BlobStore, forget_removals, job_of
from vidgate.gateway.storage.db import Database, Q, Row
from vidgate.gateway.worker.retention import JOBS_BY_ID, output_keys, remove_orphans, unowned

_COMPLETED = Q(
    "SELECT id, owner_id, outputs FROM jobs WHERE status = 'completed' AND id > :after ORDER BY id LIMIT 1000"
)
_RECORDED = Q("SELECT key FROM pending_deletions")
_ANY_JOB = Q("SELECT 1 AS one FROM jobs LIMIT 1")
_ANY_UPLOAD = Q("SELECT 1 AS one FROM files LIMIT 1")
_UPLOADS = Q("SELECT id, owner_id, key, bytes, expires_at FROM files WHERE id > :after ORDER BY id LIMIT 1000")
_UPLOADS_BY_KEY = Q(
    "SELECT id, key, expires_at FROM files WHERE key IN (SELECT value FROM json_each(:keys))",
    pg="SELECT id, key, expires_at FROM files WHERE key IN (SELECT jsonb_array_elements_text(CAST(:keys AS jsonb)))",
)


@dataclass
class Orphan:
    key: str
    job_id: str | None  # None: not a key the gateway writes (left alone)
    job_status: str | None  # None: the job has no row (deleted, or never recorded)
    bytes: int
    age_seconds: float
    removal_recorded: bool  # a delete or retention asked for it and the store has not confirmed yet
    removable: bool  # what --repair removes: recorded, or older than the grace period
    upload_id: str | None = None  # an upload's object (``uploads/<file id>/…``) that no ``files`` row names


@dataclass
class MissingOutput:
    job_id: str
    owner_id: str
    index: int
    key: str
    bytes: int


@dataclass
class MissingUpload:
    """An upload whose row is live and whose object is gone."""

    file_id: str
    owner_id: str
    key: str
    bytes: int


@dataclass
class ExpiredUpload:
    """An upload past its expiry whose row the retention sweep has not removed yet."""

    file_id: str
    owner_id: str
    key: str
    bytes: int
    expired_seconds: float  # how long ago
    object_present: bool


@dataclass
class Report:
    store: str
    grace_seconds: float
    objects: int = 0
    bytes: int = 0
    orphans: list[Orphan] = field(default_factory=list)
    missing: list[MissingOutput] = field(default_factory=list)
    missing_uploads: list[MissingUpload] = field(default_factory=list)
    expired_uploads: list[ExpiredUpload] = field(default_factory=list)
    pending_removals: int = 0  # removal records, whatever their object's state
    stale_records: int = 0  # removal records whose object is already gone
    repair: bool = False
    removed: list[str] = field(default_factory=list)
    forgotten_records: int = 0
    expired_removed: int = 0  # expired uploads whose row and object --repair removed
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


async def _uploads(db: Database) -> dict[str, Row]:
    """Every upload's row by its object key, read before the store is listed (as ``_expected``)."""
    found: dict[str, Row] = {}
    after = ""
    while rows := await db.fetchall(_UPLOADS, {"after": after}):
        found.update((row["key"], row) for row in rows)
        after = rows[-1]["id"]
    return found


async def _confirm_missing_uploads(db: Database, blobs: BlobStore, candidates: list[Row]) -> list[MissingUpload]:
    """The candidates whose row is still there and live and whose object is still absent."""
    if not candidates:
        return []
    keys = orjson.dumps([row["key"] for row in candidates]).decode()
    now = now_ms()
    live = {r["key"] for r in await db.fetchall(_UPLOADS_BY_KEY, {"keys": keys}) if r["expires_at"] > now}
    return [
        MissingUpload(row["id"], row["owner_id"], row["key"], row["bytes"])
        for row in candidates
        if row["key"] in live and not await blobs.exists(row["key"])
    ]


async def reconcile(
    db: Database, blobs: BlobStore, *, grace_ms: int, repair: bool = False, force: bool = False
) -> Report:
    """Find orphans, missing outputs and uploads, and expired uploads still kept; with ``repair``,
    remove the removable orphans, expire those uploads and forget removal records whose object is
    gone. Refuses to repair for a database with no job and no upload at all (most likely the wrong
    one, which would make every object an orphan) unless ``force``."""
    await blobs.ping()  # a store that is down lists nothing: every output would look missing
    report = Report(store=blobs.url, grace_seconds=grace_ms / 1000, repair=repair)
    expected = await _expected(db)
    uploads = await _uploads(db)
    recorded = {r["key"] for r in await db.fetchall(_RECORDED)}
    report.pending_removals = len(recorded)
    seen: set[str] = set()
    now = now_ms()
    async for batch in blobs.listing():
        _count(report, seen, batch)
        rest = [(key, modified, size) for key, modified, size in batch if expected.pop(key, None) is None]
        found = await unowned(db, [key for key, _, _ in rest if job_of(key) is not None])
        for key, modified, size in rest:
            job_id = job_of(key)
            if job_id is not None and key not in found:
                continue
            job = found.get(key)
            orphan = _orphan(key, modified, size, now=now, grace_ms=grace_ms, recorded=recorded, owned_by=job_id)
            orphan.job_status = job["status"] if job is not None else None
            report.orphans.append(orphan)
    async for batch in blobs.listing(files.PREFIX):
        _count(report, seen, batch)
        rest = [(key, modified, size) for key, modified, size in batch if key not in uploads]
        named = orjson.dumps([key for key, _, _ in rest]).decode()
        # A row written while the store was listed names its object: not an orphan.
        rows = {r["key"] for r in await db.fetchall(_UPLOADS_BY_KEY, {"keys": named})} if rest else set()
        for key, modified, size in rest:
            if key not in rows:
                upload_id = files.upload_of(key)
                orphan = _orphan(key, modified, size, now=now, grace_ms=grace_ms, recorded=recorded, owned_by=upload_id)
                orphan.upload_id = upload_id
                report.orphans.append(orphan)
    report.missing = await _confirm_missing(db, blobs, expected)
    live = [row for key, row in uploads.items() if row["expires_at"] > now and key not in seen]
    report.missing_uploads = await _confirm_missing_uploads(db, blobs, live)
    report.expired_uploads = [
        ExpiredUpload(
            row["id"], row["owner_id"], key, row["bytes"], round((now - row["expires_at"]) / 1000, 1), key in seen
        )
        for key, row in uploads.items()
        if row["expires_at"] <= now
    ]
    stale = sorted(recorded - seen)
    report.stale_records = len(stale)
    if repair:
        await _repair(db, blobs, report, stale, force=force)
    return report


def _count(report: Report, seen: set[str], batch: list[tuple[str, int, int]]) -> None:
    report.objects += len(batch)
    report.bytes += sum(size for _, _, size in batch)
    seen.update(key for key, _, _ in batch)


def _orphan(
    key: str, modified: int, size: int, *, now: int, grace_ms: int, recorded: set[str], owned_by: str | None
) -> Orphan:
    """An object nothing owns; removable when it is a key the gateway writes (``owned_by`` names the
    job or upload it was written for) and it is past the grace period or its removal is recorded."""
    return Orphan(
        key=key,
        job_id=job_of(key),
        job_status=None,
        bytes=size,
        age_seconds=round((now - modified) / 1000, 1),
        removal_recorded=key in recorded,
        removable=owned_by is not None and (now - modified > grace_ms or key in recorded),
    )


async def _repair(db: Database, blobs: BlobStore, report: Report, stale: list[str], *, force: bool) -> None:
    removable = [o.key for o in report.orphans if o.removable]
    empty = await db.fetchone(_ANY_JOB) is None and await db.fetchone(_ANY_UPLOAD) is None
    if removable and not force and empty:
        report.error = (
            f"refused to remove {len(removable)} object(s): the database holds no job and no upload at all, so "
            "every object looks orphaned; check that this is the gateway's own database, then re-run with --force"
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
    if report.expired_uploads:
        # The retention sweep's step, run now: rows removed with their removal recorded, then the objects.
        while await files.sweep_expired(db) == files.SWEEP_BATCH:
            pass
        keys = [u.key for u in report.expired_uploads]
        left = await blobs.remove(keys, within=60.0)
        report.expired_removed = len(keys) - left
        if left:
            report.error = f"{left} expired upload object(s) not removed yet: the store did not confirm (retried later)"
