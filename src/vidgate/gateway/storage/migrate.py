"""Apply the Alembic migrations to SQLite or PostgreSQL, one process at a time, and read where a database is.

Two ``vidgate migrate`` runs at once (two deploy jobs, a migrate racing a ``vidgate serve``) would
both try to create the same tables; each upgrade therefore runs under a lock the database's users
share: a PostgreSQL advisory lock held on its own session, or an exclusive ``flock`` on a file
beside the SQLite database. Whoever waited finds the schema at head and has nothing to do.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:  # Alembic and SQLAlchemy load only when a migration really runs: start-up stays light
    from alembic.config import Config

_LOCK = threading.Lock()
HEAD = "0011"  # the newest revision; tests/unit/test_migrations.py keeps it equal to Alembic's head
VERSIONS = Path(__file__).parent / "migrations" / "versions"
# pg_advisory_lock's key for schema upgrades: "vidgate" as a number, the same in every release.
ADVISORY_KEY = int.from_bytes(b"vidgate", "big")
CONNECT_SECONDS = 10.0


def alembic_url(database_url: str) -> str:
    if database_url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    return database_url


def alembic_config(database_url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", alembic_url(database_url).replace("%", "%%"))
    return cfg


def sqlite_path(database_url: str) -> Path | None:
    """The file of a ``sqlite:///`` URL (None for PostgreSQL or an in-memory database)."""
    if not database_url.startswith("sqlite:///") or ":memory:" in database_url:
        return None
    return Path(database_url.split("sqlite:///", 1)[1].split("?", 1)[0])


def shown_url(database_url: str) -> str:
    """The URL without its password, fit for a message or a log line."""
    parts = urlsplit(database_url)
    if parts.password is None:
        return database_url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return parts._replace(netloc=f"{user}@{netloc}" if user else netloc).geturl()


def known_revisions() -> tuple[str, ...]:
    """Every revision this release ships, oldest first (read from the file names, not Alembic)."""
    return tuple(sorted(p.name.split("_", 1)[0] for p in VERSIONS.glob("[0-9]*_*.py")))


def schema_revision(database_url: str) -> str | None:
    """The revision the database is at; None for a database never migrated. Raises when it cannot be read."""
    path = sqlite_path(database_url)
    if path is not None or database_url.startswith("sqlite"):
        import sqlite3

        if path is None or not path.exists() or path.stat().st_size == 0:
            return None
        conn = sqlite3.connect(path, timeout=CONNECT_SECONDS)
        try:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone() is None:
                return None
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        finally:
            conn.close()
        return row[0] if row else None
    import asyncio

    import asyncpg

    async def read() -> str | None:
        conn = await asyncpg.connect(database_url, timeout=CONNECT_SECONDS)
        try:
            if await conn.fetchval("SELECT to_regclass('alembic_version')") is None:
                return None
            return await conn.fetchval("SELECT version_num FROM alembic_version")
        finally:
            await conn.close()

    return asyncio.run(read())


def schema_problem(revision: str | None) -> str | None:
    """Why a process of this release must not run on a database at ``revision`` (None: it may)."""
    if revision == HEAD:
        return None
    shown = revision or "empty (never migrated)"
    if revision is None or revision in known_revisions():
        return f"database schema is at {shown}, this release needs {HEAD}: run vidgate migrate"
    return f"database schema is at {shown}, newer than this release (which needs {HEAD}): run the newer release"


def current_revision(database_url: str) -> str | None:
    """The revision the database is at, read without starting Alembic (None when unknown)."""
    try:
        return schema_revision(database_url)
    except Exception:  # unreachable, or anything else: let Alembic decide
        return None


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the database up to ``revision``; safe and cheap to call on every start, from any number
    of processes at once."""
    if revision == "head" and current_revision(database_url) == HEAD:
        return
    path = sqlite_path(database_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    from alembic import command

    def upgrade() -> None:
        # Whoever held the lock before may have done it all.
        if revision != "head" or current_revision(database_url) != HEAD:
            command.upgrade(alembic_config(database_url), revision)

    with _LOCK:
        if path is not None:
            with _file_lock(path.with_name(path.name + "-migrate.lock")):
                upgrade()
        elif database_url.startswith(("postgres://", "postgresql://")):
            _with_advisory_lock(database_url, upgrade)
        else:
            upgrade()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive ``flock`` on ``path`` (created owner-only), held for the block."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _with_advisory_lock(database_url: str, fn: Callable[[], None]) -> None:
    """Run ``fn`` (in a thread: Alembic runs its own event loop) while this session holds the lock."""
    import asyncio

    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(database_url, timeout=CONNECT_SECONDS)
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", ADVISORY_KEY)
            await asyncio.to_thread(fn)
        finally:
            await conn.close()  # ending the session releases the lock, whatever happened

    asyncio.run(run())
