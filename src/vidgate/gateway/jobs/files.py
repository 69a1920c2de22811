"""Uploads (``POST /v1/files``): the owner's own files, kept until they expire, usable as any input
reference (``file_id``, or ``asset_id`` naming a ``file_…``) and read by the worker from the store.

Each is kept under ``uploads/<file id>/…``. Its key is recorded in ``pending_objects`` before a byte
is written (``BlobStore.put_file``), and that record goes in the transaction that writes the row;
an object left by a crash in between has no row and is removed by the orphan sweep once older than
the grace period. A delete or an expiry removes the row and records the object's removal in one
transaction, like a job's outputs. Another owner's file, an expired one and an unknown id are the
same 404 (or the same refusal in a create), so no answer tells whether an id exists.
"""

from __future__ import annotations

import msgspec
import orjson

from vidgate.errors import NotFoundError, UnsupportedMediaTypeError, ValidationError
from vidgate.gateway.catalog.references import MIME_TYPES
from vidgate.gateway.ids import new_id, now_ms
from vidgate.gateway.jobs.spec import VideoSpec
from vidgate.gateway.storage.blobs import BlobStore, forget_removals, schedule_removal
from vidgate.gateway.storage.db import Database, Q
from vidgate.gateway.storage.uploads import Probed, Received
from vidgate.types import FileDeleted, FileKind, FileList, UploadedFile

PREFIX = "uploads/"
SWEEP_BATCH = 100
_EXTENSIONS = {"image/jpeg": ".jpg", "video/quicktime": ".mov", "audio/mpeg": ".mp3"}
_COLUMNS = (
    "id, owner_id, key, kind, mime_type, bytes, sha256, width, height, duration_ms, purpose, created_at, expires_at"
)
_INSERT = Q(
    f"INSERT INTO files ({_COLUMNS}) VALUES (:id, :owner, :key, :kind, :mime_type, :bytes, :sha256, :width, "
    ":height, :duration_ms, :purpose, :created_at, :expires_at)"
)
_RECORDED = Q("DELETE FROM pending_objects WHERE key = :key")
_GET = Q(f"SELECT {_COLUMNS} FROM files WHERE id = :id AND owner_id = :owner AND expires_at > :now")
_GET_ANY = Q(f"SELECT {_COLUMNS} FROM files WHERE id = :id AND expires_at > :now")
_OWN = f"SELECT {_COLUMNS} FROM files WHERE owner_id = :owner AND expires_at > :now"
# By (order, whether a page starts after an id).
_PAGE = {
    ("desc", False): Q(f"{_OWN} ORDER BY id DESC LIMIT :limit"),
    ("desc", True): Q(f"{_OWN} AND id < :after ORDER BY id DESC LIMIT :limit"),
    ("asc", False): Q(f"{_OWN} ORDER BY id LIMIT :limit"),
    ("asc", True): Q(f"{_OWN} AND id > :after ORDER BY id LIMIT :limit"),
}
_DELETE = Q("DELETE FROM files WHERE id = :id AND owner_id = :owner RETURNING key")
_EXPIRED = Q("SELECT id FROM files WHERE expires_at <= :now ORDER BY expires_at LIMIT :limit")
_EXPIRE = Q("DELETE FROM files WHERE id = :id AND expires_at <= :now RETURNING key")
_KEYS = Q(
    "SELECT key FROM files WHERE key IN (SELECT value FROM json_each(:keys))",
    pg="SELECT key FROM files WHERE key IN (SELECT jsonb_array_elements_text(CAST(:keys AS jsonb)))",
)
_FORGET_PENDING = Q(
    "DELETE FROM pending_objects WHERE key IN (SELECT value FROM json_each(:keys))",
    pg="DELETE FROM pending_objects WHERE key IN (SELECT jsonb_array_elements_text(CAST(:keys AS jsonb)))",
)


class StoredFile(msgspec.Struct, frozen=True):
    """A ``files`` row: an upload and where its bytes are kept."""

    id: str
    owner_id: str
    key: str
    kind: FileKind
    mime_type: str
    bytes: int
    sha256: str
    width: int | None
    height: int | None
    duration_ms: int | None
    purpose: str | None
    created_at: int
    expires_at: int

    @classmethod
    def from_row(cls, row: object) -> StoredFile:
        return cls(*(row[name] for name in cls.__struct_fields__))  # type: ignore[index]

    def public(self) -> UploadedFile:
        return UploadedFile(
            id=self.id,
            bytes=self.bytes,
            mime_type=self.mime_type,
            kind=self.kind,
            sha256=self.sha256,
            created_at=self.created_at // 1000,
            expires_at=self.expires_at // 1000,
            width=self.width,
            height=self.height,
            duration_seconds=None if self.duration_ms is None else self.duration_ms / 1000,
            purpose=self.purpose,
        )


async def find(db: Database, owner: str, file_id: str) -> StoredFile | None:
    """The owner's file while it has not expired; one primary-key read."""
    row = await db.fetchone(_GET, {"id": file_id, "owner": owner, "now": now_ms()})
    return None if row is None else StoredFile.from_row(row)


async def find_any_owner(db: Database, file_id: str) -> StoredFile | None:
    """A file while it has not expired, whoever owns it: for a signed link, which names no owner."""
    row = await db.fetchone(_GET_ANY, {"id": file_id, "now": now_ms()})
    return None if row is None else StoredFile.from_row(row)


def upload_of(key: str) -> str | None:
    """The upload an object key belongs to (``uploads/<file id>/<name>``), or None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


def checked(probed: Probed | None) -> Probed:
    """``probed`` when it is a type input references take; what else was sent is a 415."""
    if probed is None:
        raise UnsupportedMediaTypeError(
            "the file is no image (png, jpeg, webp, gif), video (mp4, webm, quicktime) or audio file we can read",
            param="file",
        )
    if probed.mime_type not in MIME_TYPES[probed.kind]:
        types = ", ".join(sorted(MIME_TYPES[probed.kind]))
        raise UnsupportedMediaTypeError(
            f"the file is {probed.mime_type}; {probed.kind} uploads may be {types}",
            param="file",
        )
    return probed


class Files:
    """The owners' uploads: stored, read, listed, deleted, expired."""

    def __init__(self, db: Database, blobs: BlobStore, *, ttl_ms: int) -> None:
        self.db = db
        self.blobs = blobs
        self.ttl_ms = ttl_ms

    async def create(self, owner: str, received: Received, probed: Probed) -> StoredFile:
        """Move the received file into the store (its key recorded first), then write its row."""
        file_id = new_id("file")
        ext = _EXTENSIONS.get(probed.mime_type, "." + probed.mime_type.split("/", 1)[1])
        key = f"{PREFIX}{file_id}/{received.sha256[:16]}{ext}"
        await self.blobs.put_file(key, received.path, owner=file_id)
        now = now_ms()
        row = StoredFile(
            id=file_id,
            owner_id=owner,
            key=key,
            kind=probed.kind,
            mime_type=probed.mime_type,
            bytes=received.bytes,
            sha256=received.sha256,
            width=probed.width,
            height=probed.height,
            duration_ms=None if probed.duration_seconds is None else round(probed.duration_seconds * 1000),
            purpose=received.purpose,
            created_at=now,
            expires_at=now + self.ttl_ms,
        )
        params = {name: getattr(row, name) for name in row.__struct_fields__}
        params["owner"] = params.pop("owner_id")
        async with self.db.transaction() as tx:
            await tx.execute(_INSERT, params)
            await tx.execute(_RECORDED, {"key": key})
        return row

    async def get(self, owner: str, file_id: str) -> StoredFile:
        found = await find(self.db, owner, file_id)
        if found is None:
            raise NotFoundError(f"no file {file_id}", param="file_id")
        return found

    async def list(self, owner: str, *, limit: int, after: str | None, order: str) -> FileList:
        """A page of the owner's files by id (newest first for ``desc``), keyset-paged on ``after``."""
        params: dict[str, object] = {"owner": owner, "now": now_ms(), "limit": limit + 1}
        if after:
            params["after"] = after
        rows = await self.db.fetchall(_PAGE[order, bool(after)], params)
        data = [StoredFile.from_row(r).public() for r in rows[:limit]]
        return FileList(
            data=data,
            has_more=len(rows) > limit,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
        )

    async def delete(self, owner: str, file_id: str) -> FileDeleted:
        """Remove the row and record its object's removal at once; the object goes now or on a retry."""
        now = now_ms()
        async with self.db.transaction() as tx:
            row = await tx.fetchone(_DELETE, {"id": file_id, "owner": owner})
            if row is not None:
                await schedule_removal(tx, file_id, [row["key"]], now)
        if row is None:
            raise NotFoundError(f"no file {file_id}", param="file_id")
        await self.blobs.remove([row["key"]])
        return FileDeleted(id=file_id)


async def sweep_expired(db: Database, *, limit: int = SWEEP_BATCH) -> int:
    """Remove the rows of expired files and record their objects' removal, in one transaction each;
    the removals themselves are the sweeper's. The number expired."""
    now = now_ms()
    expired = 0
    for found in await db.fetchall(_EXPIRED, {"now": now, "limit": limit}):
        async with db.transaction() as tx:
            row = await tx.fetchone(_EXPIRE, {"id": found["id"], "now": now})
            if row is not None:
                await schedule_removal(tx, found["id"], [row["key"]], now)
                expired += 1
    return expired


async def sweep_orphans(db: Database, blobs: BlobStore, cutoff_ms: int) -> int:
    """Remove upload objects older than ``cutoff_ms`` that no row names (a crash between the write
    and the row), with any record that named them; the number removed."""
    removed = 0
    async for batch in blobs.listing(PREFIX):
        old = [key for key, modified, _ in batch if modified < cutoff_ms and upload_of(key) is not None]
        if not old:
            continue
        keys = orjson.dumps(old).decode()
        kept = {r["key"] for r in await db.fetchall(_KEYS, {"keys": keys})}
        orphans = [key for key in old if key not in kept]
        for key in orphans:
            await blobs.delete(key)
        if orphans:
            async with db.transaction() as tx:
                await tx.execute(_FORGET_PENDING, {"keys": orjson.dumps(orphans).decode()})
                await forget_removals(tx, orphans)
        removed += len(orphans)
    return removed


async def check_references(db: Database, owner: str, spec: VideoSpec) -> None:
    """Every upload the spec names is the owner's, not expired, and of the reference's kind."""
    for i, ref in enumerate(spec.references):
        if ref.file is None:
            continue
        param = f"input_references[{i}].file_id"
        found = await find(db, owner, ref.file)
        if found is None:
            raise ValidationError(f"no file {ref.file} among your uploads", param=param)
        if found.kind != ref.kind:
            raise ValidationError(f"file {ref.file} is {_an(found.kind)}, not {_an(ref.kind)}", param=param)


def _an(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


class FileReader:
    """Reads the owner's uploads for a job's input references, from the store rather than a URL."""

    def __init__(self, db: Database, blobs: BlobStore, owner: str) -> None:
        self.db = db
        self.blobs = blobs
        self.owner = owner

    async def open(self, file_id: str, max_bytes: int) -> tuple[bytes, StoredFile]:
        """The file's bytes and its row (where they are kept, their type); ``LookupError`` once it is gone
        (deleted or expired), ``ValueError`` when it is larger than ``max_bytes``."""
        found = await find(self.db, self.owner, file_id)
        if found is None:
            raise LookupError(f"the file {file_id} is no longer among your uploads")
        if found.bytes > max_bytes:
            raise ValueError(f"the file {file_id} is larger than {max_bytes} bytes")
        chunks = await self.blobs.stream(found.key, 0, found.bytes)
        return b"".join([chunk async for chunk in chunks]), found
