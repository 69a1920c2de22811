"""Object storage for outputs: local files or any S3-compatible store, behind one API (obstore).

Local files are served from their path (whole, or a range read with ``pread``); S3 objects are
streamed with ranged GETs, and download links may be the store's own presigned URLs. Every object belongs to a job
(``videos/<job id>/…``), and its key is recorded in ``pending_objects`` before a byte is written:
whatever happens after (a cancel, a crash, a failed upload), the orphan sweep can tell an object
being written for a live job from one nothing will ever claim.

Removal is recorded the same way: the transaction that disowns objects (a delete, a retention
step) records them in ``pending_deletions``, and a record goes only once the store has confirmed
the removal. An unreachable store then delays a removal, never loses it, and never fails the
delete that asked for it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import obstore
import orjson
from obstore.store import LocalStore, S3Store

from vidgate.gateway.ids import now_ms
from vidgate.gateway.storage.db import Database, Q, Tx

if TYPE_CHECKING:
    from obstore.store import ClientConfig, RetryConfig

log = logging.getLogger("vidgate.storage")

# Bounded waits: a stalled or unreachable store fails a call within seconds (the API answers 503)
# instead of the client's defaults (30 s a try, retried for up to 3 minutes).
CLIENT_OPTIONS: ClientConfig = {"allow_http": True, "connect_timeout": "3s", "read_timeout": "5s"}
RETRY_CONFIG: RetryConfig = {"max_retries": 2, "retry_timeout": timedelta(seconds=5)}
JOB_PREFIX = "videos/"
# How long a delete waits on the store before leaving the removal to the retry sweep: the user's
# delete has already happened and answers within this, whatever state the store is in.
REMOVE_WITHIN_SECONDS = 2.0
# A failed removal is retried after the caller's first delay, doubling each time, up to this.
REMOVAL_RETRY_MAX_MS = 300_000
_RECORD = Q(
    "INSERT INTO pending_objects (key, job_id, created_at) VALUES (:key, :job, :now) "
    "ON CONFLICT (key) DO UPDATE SET job_id = excluded.job_id, created_at = excluded.created_at"
)

_SCHEDULE = Q(
    "INSERT INTO pending_deletions (key, job_id, created_at, attempts, next_attempt_at) "
    "VALUES (:key, :job, :now, 0, :now) ON CONFLICT (key) DO NOTHING"
)
_DUE = Q(
    "SELECT key, attempts FROM pending_deletions WHERE next_attempt_at <= :now ORDER BY next_attempt_at LIMIT :limit"
)
_PUT_OFF = Q(
    "UPDATE pending_deletions SET attempts = attempts + 1, next_attempt_at = :next, last_error = :error "
    "WHERE key = :key"
)
_REMOVED = Q(
    "DELETE FROM pending_deletions WHERE key IN (SELECT value FROM json_each(:keys))",
    pg="DELETE FROM pending_deletions WHERE key IN (SELECT jsonb_array_elements_text(CAST(:keys AS jsonb)))",
)


async def schedule_removal(tx: Tx, job_id: str, keys: Sequence[str], now: int) -> None:
    """Record ``keys`` for removal inside the transaction that disowns them, so a crash or an
    unreachable store after it commits still leaves them to be removed."""
    for key in keys:
        await tx.execute(_SCHEDULE, {"key": key, "job": job_id, "now": now})


async def forget_removals(tx: Tx, keys: Sequence[str]) -> None:
    """Drop the removal records of objects that are gone."""
    if keys:
        await tx.execute(_REMOVED, {"keys": orjson.dumps(list(keys)).decode()})


def job_of(key: str) -> str | None:
    """The job an object key belongs to (``videos/<job id>/<file>``), or None for any other key."""
    parts = key.split("/")
    if len(parts) != 3 or parts[0] + "/" != JOB_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


class BlobStore:
    def __init__(self, url: str, db: Database | None = None, *, create: bool = True) -> None:
        """``create=False`` for tools that inspect an existing store: a missing local root (an
        unmounted disk) then raises here instead of being made, empty, in its place."""
        self.url = url
        self.db = db  # where writes are recorded before they happen; required for put_file
        parsed = urlparse(url)
        self.root: Path | None = None
        self.prefix = ""
        if parsed.scheme == "file":
            self.root = Path(parsed.path)
            if create:
                self.root.mkdir(parents=True, exist_ok=True)
            self.store: LocalStore | S3Store = LocalStore(self.root, mkdir=create)
        elif parsed.scheme == "s3":
            self.prefix = parsed.path.strip("/")
            # Credentials and the endpoint come from the AWS_* environment; CLIENT_OPTIONS allows http://.
            self.store = S3Store(parsed.netloc, client_options=CLIENT_OPTIONS, retry_config=RETRY_CONFIG)
        else:
            raise ValueError(f"unsupported blob URL {url!r}: use file:///PATH or s3://BUCKET/PREFIX")

    @property
    def is_local(self) -> bool:
        return self.root is not None

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def local_path(self, key: str) -> Path | None:
        return self.root / key if self.root is not None else None

    async def put_file(self, key: str, path: Path, *, owner: str | None = None) -> None:
        """Record ``key`` for its job (or ``owner``, an upload's id), then store a finished local file
        (on the local store, a rename)."""
        job_id = owner or job_of(key)
        if job_id is None or self.db is None:
            raise ValueError(f"cannot store {key!r}: every object belongs to a job and is recorded first")
        async with self.db.transaction() as tx:
            await tx.execute(_RECORD, {"key": key, "job": job_id, "now": now_ms()})
        if self.root is not None:
            self._check_root()  # never onto the bare mount point of a disk that is away
            dest = self.root / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(path, dest)
            except OSError:
                try:
                    shutil.copyfile(path, dest)  # another filesystem
                except BaseException:
                    dest.unlink(missing_ok=True)  # a partial copy (a full disk) holds no one's bytes
                    raise
                path.unlink(missing_ok=True)
            return
        await obstore.put_async(self.store, self._key(key), path)
        path.unlink(missing_ok=True)

    def _check_root(self) -> None:
        # A local store whose root is gone (an unmounted disk) is down: every object would look
        # absent, and a removal would seem done while the bytes wait on the missing disk.
        if self.root is not None and not self.root.is_dir():
            raise OSError(f"blob root {self.root} is missing")

    async def delete(self, key: str) -> None:
        """Remove one object; an absent object is already removed, an unreachable store raises."""
        try:
            await obstore.delete_async(self.store, self._key(key))
        except FileNotFoundError:
            self._check_root()

    async def exists(self, key: str) -> bool:
        try:
            await obstore.head_async(self.store, self._key(key))
        except FileNotFoundError:
            self._check_root()
            return False
        return True

    async def remove(self, keys: Sequence[str], *, within: float = REMOVE_WITHIN_SECONDS) -> int:
        """Remove objects whose removal is recorded, waiting at most ``within`` seconds, and forget
        those removed; the number left to the retry sweep. Never raises: the caller's own change is
        already committed, and whatever is not removed now is removed once the store answers."""
        removed: list[str] = []

        async def attempt() -> None:
            for key in keys:
                await self.delete(key)
                removed.append(key)

        try:
            await asyncio.wait_for(attempt(), timeout=within)
        except TimeoutError:
            log.warning(
                "the store did not answer within %.1f s: %d object(s) left to the retry sweep",
                within,
                len(keys) - len(removed),
            )
        except Exception as exc:
            log.warning(
                "%d object(s) left to the retry sweep: %s: %s", len(keys) - len(removed), type(exc).__name__, exc
            )
        if removed and self.db is not None:
            try:
                async with self.db.transaction() as tx:
                    await forget_removals(tx, removed)
            except Exception as exc:  # the sweep finds them gone and forgets them then
                log.warning("could not forget %d removed object(s): %s: %s", len(removed), type(exc).__name__, exc)
        return len(keys) - len(removed)

    async def retry_removals(self, first_delay_ms: int, *, limit: int = 100) -> tuple[int, bool]:
        """Remove the recorded objects that are due; ``(removed, failed)``. A failure puts that object
        off (doubling each time) and ends the round: the store is most likely down for the rest too,
        and trying them would only wait out one timeout after another."""
        if self.db is None:
            raise ValueError("removals are recorded in the database: this store has none")
        now = now_ms()
        removed: list[str] = []
        failed = False
        for row in await self.db.fetchall(_DUE, {"now": now, "limit": limit}):
            try:
                await self.delete(row["key"])
            except Exception as exc:
                attempts = row["attempts"]
                delay = min(REMOVAL_RETRY_MAX_MS, first_delay_ms * 2 ** min(attempts, 20))
                error = f"{type(exc).__name__}: {exc}"[:500]
                (log.warning if attempts == 0 else log.info)(
                    "could not remove %s (attempt %d, next in %.0f s): %s",
                    row["key"],
                    attempts + 1,
                    delay / 1000,
                    error,
                )
                async with self.db.transaction() as tx:
                    await tx.execute(_PUT_OFF, {"key": row["key"], "next": now_ms() + delay, "error": error})
                failed = True
                break
            removed.append(row["key"])
        if removed:
            async with self.db.transaction() as tx:
                await forget_removals(tx, removed)
        return len(removed), failed

    async def listing(self, prefix: str = JOB_PREFIX) -> AsyncIterator[list[tuple[str, int, int]]]:
        """Every object under ``prefix``, in batches of ``(key, last modified in epoch ms, bytes)``."""
        strip = len(self.prefix) + 1 if self.prefix else 0
        async for batch in obstore.list(self.store, self._key(prefix), chunk_size=1000):
            yield [(m["path"][strip:], int(m["last_modified"].timestamp() * 1000), m["size"]) for m in batch]

    async def stream(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` in chunks; the object is opened before this returns, so a store
        outage raises here, while the route can still answer an error, not mid-response."""
        result = await obstore.get_async(self.store, self._key(key), options={"range": (start, end)})

        async def chunks() -> AsyncIterator[bytes]:
            async for chunk in result.stream(min_chunk_size=1 << 18):
                yield bytes(chunk)

        return chunks()

    async def presign(self, key: str, ttl_seconds: int) -> str | None:
        if not isinstance(self.store, S3Store):
            return None
        return await obstore.sign_async(self.store, "GET", self._key(key), timedelta(seconds=ttl_seconds))

    async def ping(self) -> None:
        if self.root is not None:
            self._check_root()
            return
        await obstore.list_with_delimiter_async(self.store, self.prefix or None)
