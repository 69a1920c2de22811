"""Assets: every stored output by its id, so a create can name an output of one of its owner's
completed jobs as an input reference (``asset_id``) and the worker read its bytes from the store.
An ``asset_id`` may also be the job's own id (``vid_…``): it names that job's first output, so a
video can be extended or edited by the id its create returned, with no download in between.

A row is written when the outputs are stored, before the job completes, and deleted with the job.
An asset is usable only while its job is completed and still lists it among its outputs: a row
written for an attempt whose completion never happened, or for a job since expired, resolves to
nothing. Another owner's asset and an unknown id are the same refusal, so a refusal never tells
whether an id exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from vidgate.errors import ValidationError
from vidgate.gateway.catalog.catalog import Model
from vidgate.gateway.catalog.operations import input_checks
from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs import files
from vidgate.gateway.jobs.records import StoredOutput, decode_outputs
from vidgate.gateway.jobs.spec import VideoSpec
from vidgate.gateway.storage.blobs import BlobStore
from vidgate.gateway.storage.db import Database, Q, Tx

# The owner comes from the job's own row: the worker storing outputs knows the job, not its owner.
JOB_PREFIX = "vid_"
_INSERT = Q(
    "INSERT INTO assets (id, owner_id, job_id, output_index, key, mime_type, sha256, bytes, created_at) "
    "SELECT :id, owner_id, id, :index, :key, :mime_type, :sha256, :bytes, :now FROM jobs WHERE id = :job_id "
    "ON CONFLICT (id) DO NOTHING"
)
_FIND = Q(
    "SELECT a.job_id, a.key, a.mime_type, a.bytes, j.status, j.outputs FROM assets a "
    "JOIN jobs j ON j.id = a.job_id WHERE a.id = :id AND a.owner_id = :owner"
)
_FORGET = Q("DELETE FROM assets WHERE job_id = :job_id")
_JOB = Q("SELECT status, outputs FROM jobs WHERE id = :id AND owner_id = :owner")
_MADE_BY = Q("SELECT provider, native_id FROM jobs WHERE id = :id AND owner_id = :owner")


class OwnedAsset(msgspec.Struct, frozen=True):
    """An output of one of the owner's completed jobs, where its bytes are kept."""

    id: str
    job_id: str
    key: str
    mime_type: str
    bytes: int
    duration_seconds: float | None = None
    index: int = 0  # which of its job's outputs it is

    @property
    def kind(self) -> str:
        return self.mime_type.split("/", 1)[0]


async def record(db: Database, job_id: str, outputs: Sequence[StoredOutput]) -> None:
    """One row per stored output (again for a retried store: the ids are new, the old rows harmless)."""
    now = now_ms()
    async with db.transaction() as tx:
        for out in outputs:
            params = {
                "id": out.asset_id,
                "job_id": job_id,
                "index": out.index,
                "key": out.key,
                "mime_type": out.mime_type,
                "sha256": out.sha256,
                "bytes": out.bytes,
                "now": now,
            }
            await tx.execute(_INSERT, params)


async def forget(tx: Tx, job_id: str) -> None:
    """The job's assets, in the transaction that deletes the job."""
    await tx.execute(_FORGET, {"job_id": job_id})


async def find(db: Database, owner: str, asset_id: str) -> OwnedAsset | None:
    """The owner's asset, if its job is completed and still holds it; one primary-key read and join.
    A job's id names its first output."""
    if asset_id.startswith(JOB_PREFIX):
        _, asset = await find_job_output(db, owner, asset_id)
        return asset
    row = await db.fetchone(_FIND, {"id": asset_id, "owner": owner})
    if row is None or row["status"] != "completed":
        return None
    out = next((out for out in decode_outputs(row["outputs"]) if out.asset_id == asset_id), None)
    if out is None:
        return None
    return OwnedAsset(
        asset_id, row["job_id"], row["key"], row["mime_type"], row["bytes"], out.duration_seconds, index=out.index
    )


async def find_job_output(db: Database, owner: str, job_id: str) -> tuple[str | None, OwnedAsset | None]:
    """The status of the owner's job (None: no such job of theirs) and its first output once completed."""
    row = await db.fetchone(_JOB, {"id": job_id, "owner": owner})
    if row is None:
        return None, None
    outputs = decode_outputs(row["outputs"]) if row["status"] == "completed" else ()
    if not outputs:
        return row["status"], None
    out = outputs[0]
    return row["status"], OwnedAsset(out.asset_id, job_id, out.key, out.mime_type, out.bytes, out.duration_seconds)


async def check_references(db: Database, owner: str, spec: VideoSpec) -> None:
    """Every ``asset_id`` the spec names is an output of one of the owner's completed jobs (or such a
    job), of the reference's kind. References by asset come only from ``input_references``, whose
    order they keep."""
    for i, ref in enumerate(spec.references):
        if ref.asset is None:
            continue
        param = f"input_references[{i}].asset_id"
        if ref.asset.startswith(JOB_PREFIX):
            status, asset = await find_job_output(db, owner, ref.asset)
            if status is None:
                raise ValidationError(f"no video {ref.asset} among your jobs", param=param)
            if asset is None:
                raise ValidationError(
                    f"video {ref.asset} is {status}; only a completed video's output can be an input", param=param
                )
        else:
            asset = await find(db, owner, ref.asset)
        if asset is None:
            raise ValidationError(f"no asset {ref.asset} among the outputs of your completed jobs", param=param)
        if asset.kind != ref.kind:
            raise ValidationError(f"asset {ref.asset} is {_an(asset.kind)}, not {_an(ref.kind)}", param=param)


async def check_durations(db: Database, owner: str, spec: VideoSpec, model: Model) -> None:
    """The input videos and audio whose length is already known (uploads, probed when they came; and
    stored outputs) against the model's bounds and the caller's stated lengths; the rest are measured
    by the worker once fetched."""
    for check in input_checks(spec, model.input_video_seconds, model.input_audio_seconds):
        ref = check.ref
        measured: float | None = None
        if ref.file is not None:
            found = await files.find(db, owner, ref.file)
            measured = None if found is None or found.duration_ms is None else found.duration_ms / 1000
        elif ref.asset is not None:
            asset = await find(db, owner, ref.asset)
            measured = None if asset is None else asset.duration_seconds
        if measured is not None and (why := check.problem(measured, model.id)) is not None:
            raise ValidationError(why, param=f"input_references[{check.index}]")


def _an(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


class AssetReader:
    """Reads the owner's assets for a job's input references, from the store rather than a URL."""

    def __init__(self, db: Database, blobs: BlobStore, owner: str) -> None:
        self.db = db
        self.blobs = blobs
        self.owner = owner

    async def open(self, asset_id: str, max_bytes: int) -> tuple[bytes, OwnedAsset]:
        """The asset's bytes and the asset (its job, output index, key and type); ``LookupError`` when it
        is no longer usable, ``ValueError`` when it is larger than ``max_bytes``."""
        asset = await find(self.db, self.owner, asset_id)
        if asset is None:
            raise LookupError(f"the asset {asset_id} is no longer among your completed jobs' outputs")
        if asset.bytes > max_bytes:
            raise ValueError(f"the asset {asset_id} is larger than {max_bytes} bytes")
        chunks = await self.blobs.stream(asset.key, 0, asset.bytes)
        return b"".join([chunk async for chunk in chunks]), asset

    async def made_by(self, asset: OwnedAsset) -> tuple[str, str] | None:
        """The provider that made the asset (as ``open`` found it) and its own id for that job (its
        ``native_id``); None when its job ran without one."""
        row = await self.db.fetchone(_MADE_BY, {"id": asset.job_id, "owner": self.owner})
        if row is None or not row["provider"] or not row["native_id"]:
            return None
        return str(row["provider"]), str(row["native_id"])
