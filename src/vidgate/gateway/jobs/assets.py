"""Assets: every stored output by its id, so a create can name an output of one of its owner's
completed jobs as an input reference (``asset_id``) and the worker read its bytes from the store.

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
from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs.records import StoredOutput, decode_outputs
from vidgate.gateway.jobs.spec import VideoSpec
from vidgate.gateway.storage.blobs import BlobStore
from vidgate.gateway.storage.db import Database, Q, Tx

# The owner comes from the job's own row: the worker storing outputs knows the job, not its owner.
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


class OwnedAsset(msgspec.Struct, frozen=True):
    """An output of one of the owner's completed jobs, where its bytes are kept."""

    id: str
    job_id: str
    key: str
    mime_type: str
    bytes: int

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
    """The owner's asset, if its job is completed and still holds it; one primary-key read and join."""
    row = await db.fetchone(_FIND, {"id": asset_id, "owner": owner})
    if row is None or row["status"] != "completed":
        return None
    if all(out.asset_id != asset_id for out in decode_outputs(row["outputs"])):
        return None
    return OwnedAsset(asset_id, row["job_id"], row["key"], row["mime_type"], row["bytes"])


async def check_references(db: Database, owner: str, spec: VideoSpec) -> None:
    """Every ``asset_id`` the spec names is an output of one of the owner's completed jobs, of the
    reference's kind. References by asset come only from ``input_references``, whose order they keep."""
    for i, ref in enumerate(spec.references):
        if ref.asset is None:
            continue
        param = f"input_references[{i}].asset_id"
        asset = await find(db, owner, ref.asset)
        if asset is None:
            raise ValidationError(f"no asset {ref.asset} among the outputs of your completed jobs", param=param)
        if asset.kind != ref.kind:
            raise ValidationError(f"asset {ref.asset} is {_an(asset.kind)}, not {_an(ref.kind)}", param=param)


def _an(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


class AssetReader:
    """Reads the owner's assets for a job's input references, from the store rather than a URL."""

    def __init__(self, db: Database, blobs: BlobStore, owner: str) -> None:
        self.db = db
        self.blobs = blobs
        self.owner = owner

    async def read(self, asset_id: str, max_bytes: int) -> tuple[bytes, str]:
        """The asset's bytes and type; ``LookupError`` when it is no longer usable, ``ValueError`` when
        it is larger than ``max_bytes``."""
        asset = await find(self.db, self.owner, asset_id)
        if asset is None:
            raise LookupError(f"the asset {asset_id} is no longer among your completed jobs' outputs")
        if asset.bytes > max_bytes:
            raise ValueError(f"the asset {asset_id} is larger than {max_bytes} bytes")
        chunks = await self.blobs.stream(asset.key, 0, asset.bytes)
        return b"".join([chunk async for chunk in chunks]), asset.mime_type
