"""Free disk space: refuse new work before the disk is full, and keep room to delete when it is.

A full disk must never lock the owner out of freeing space through the API, yet SQLite needs a
little free space for any write, a delete included (its pages go to the WAL first). So a reserve
file is kept beside the database: it is given back the moment a delete meets a full disk (the
delete then commits into that room) and made again once there is plenty of space. Creates are
refused with 503 ``storage_full`` while free space is below a floor, and while the reserve is gone,
so the room a delete was given is not taken by new jobs. The state is the filesystem itself (the
reserve's presence, statvfs), so every process on the same data dir sees the same thing.
"""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from vidgate.errors import StorageFullError

log = logging.getLogger("vidgate.storage")
T = TypeVar("T")

RESERVE_NAME = ".vidgate-reserve"
RETRY_AFTER_SECONDS = 30
_CACHE_SECONDS = 0.5  # statvfs is a syscall per create otherwise
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_storage_full(exc: BaseException) -> bool:
    """Whether ``exc`` says a disk (ours, or the database server's) has no space left."""
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return True
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is not None and isinstance(exc, asyncpg.exceptions.DiskFullError):
        return True
    # obstore reports a local write that hit ENOSPC as a generic error carrying the OS message.
    return type(exc).__module__.startswith("obstore") and "No space left on device" in str(exc)


def storage_full_error() -> StorageFullError:
    return StorageFullError(
        "the gateway's storage is full; delete videos you no longer need, or retry later",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        details={"unavailable": "storage"},
    )


class DiskSpace:
    """The free space of the filesystems the gateway writes to, and the reserve kept on the database's."""

    def __init__(self, dirs: list[Path], *, reserve: Path | None, reserve_bytes: int, min_free_bytes: int) -> None:
        self.dirs = dirs
        self.reserve = reserve if reserve_bytes > 0 else None
        self.reserve_bytes = reserve_bytes
        self.min_free_bytes = min_free_bytes
        self._checked = 0.0
        self._full = False

    @classmethod
    def for_storage(
        cls, database_url: str, blob_root: Path | None, *, reserve_bytes: int, min_free_bytes: int
    ) -> DiskSpace:
        """Watch the SQLite database's directory and a local blob root; PostgreSQL and S3 watch themselves."""
        dirs: list[Path] = []
        reserve = None
        if database_url.startswith("sqlite:///") and ":memory:" not in database_url:
            db_dir = Path(database_url.split("sqlite:///", 1)[1].split("?", 1)[0]).parent
            dirs.append(db_dir)
            reserve = db_dir / RESERVE_NAME
        if blob_root is not None:
            dirs.append(blob_root)
        return cls(dirs, reserve=reserve, reserve_bytes=reserve_bytes, min_free_bytes=min_free_bytes)

    def free_bytes(self) -> int:
        """The least free space of the watched filesystems (for an unprivileged writer)."""
        free = []
        for d in self.dirs:
            try:
                st = os.statvfs(d)
            except OSError:
                continue
            free.append(st.f_bavail * st.f_frsize)
        return min(free, default=sys.maxsize)

    @property
    def full(self) -> bool:
        """Below the floor, or the reserve given away and not yet remade (so new work never eats the
        room a delete was given); re-read at most twice a second."""
        now = time.monotonic()
        if now - self._checked >= _CACHE_SECONDS:
            self._checked = now
            self.ensure_reserve()
            missing = self.reserve is not None and not self.reserve.exists()
            self._full = missing or self.free_bytes() < self.min_free_bytes
        return self._full

    def check(self) -> None:
        """Raise 503 ``storage_full`` when new work must wait for space."""
        if self.full:
            raise storage_full_error()

    def ensure_reserve(self) -> None:
        """Make the reserve file when it is missing and there is room to spare for it (twice its size
        above the floor); written aside and renamed, so no process sees half of one."""
        if self.reserve is None or self.reserve.exists():
            return
        if self.free_bytes() < self.min_free_bytes + 2 * self.reserve_bytes:
            return
        part = self.reserve.with_name(f"{RESERVE_NAME}.{os.getpid()}")
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self.reserve_bytes)
            finally:
                os.close(fd)
            os.replace(part, self.reserve)
        except OSError as exc:
            part.unlink(missing_ok=True)
            log.warning("could not make the disk reserve %s: %s", self.reserve, exc)

    def release(self) -> bool:
        """Give the reserve's space back; True when there was one to give."""
        if self.reserve is None:
            return False
        try:
            self.reserve.unlink()
        except FileNotFoundError:
            return False
        self._checked = 0.0
        log.warning("the disk is full: released the %d-byte reserve so deletes can commit", self.reserve_bytes)
        return True

    async def freeing(self, write: Callable[[], Awaitable[T]]) -> T:
        """Run a write that frees space (a delete); if the disk is full, release the reserve and retry once."""
        try:
            return await write()
        except Exception as exc:
            # A full disk can also surface as an I/O error (the WAL index could not grow, say).
            short = isinstance(exc, (sqlite3.Error, OSError)) and self.free_bytes() < max(1, self.reserve_bytes)
            if not (is_storage_full(exc) or short) or not self.release():
                raise
        return await write()
