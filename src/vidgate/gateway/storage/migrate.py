"""Apply the Alembic migrations to SQLite or PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Alembic and SQLAlchemy load only when a migration really runs: start-up stays light
    from alembic.config import Config

_LOCK = threading.Lock()
HEAD = "0007"  # the newest revision; tests/unit/test_migrations.py keeps it equal to Alembic's head


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


def current_revision(database_url: str) -> str | None:
    """The revision the database is at, read without starting Alembic (None when unknown)."""
    try:
        if database_url.startswith("sqlite:///"):
            import sqlite3

            path = Path(database_url.split("sqlite:///", 1)[1])
            if not path.exists():
                return None
            conn = sqlite3.connect(path)
            try:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            finally:
                conn.close()
            return row[0] if row else None
        import asyncio

        import asyncpg

        async def read() -> str | None:
            conn = await asyncpg.connect(database_url, timeout=10)
            try:
                return await conn.fetchval("SELECT version_num FROM alembic_version")
            finally:
                await conn.close()

        return asyncio.run(read())
    except Exception:  # no table yet, or anything else: let Alembic decide
        return None


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the database up to ``revision``; safe and cheap to call on every start."""
    if revision == "head" and current_revision(database_url) == HEAD:
        return
    if database_url.startswith("sqlite:///"):
        Path(database_url.split("sqlite:///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    from alembic import command

    with _LOCK:
        command.upgrade(alembic_config(database_url), revision)
