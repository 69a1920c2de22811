"""Apply the Alembic migrations to SQLite or PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

_LOCK = threading.Lock()


def alembic_url(database_url: str) -> str:
    if database_url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + database_url.split("://", 1)[1]
    return database_url


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    cfg.set_main_option("sqlalchemy.url", alembic_url(database_url).replace("%", "%%"))
    return cfg


def migrate(database_url: str, revision: str = "head") -> None:
    """Bring the database up to ``revision``; safe to call on every start."""
    if database_url.startswith("sqlite:///"):
        Path(database_url.split("sqlite:///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
    with _LOCK:
        command.upgrade(alembic_config(database_url), revision)
