"""Running a command against the database directly (``keys``, ``ledger``, ``jobs``, ``leases``), with
the same settings, schema check and one-line errors as the servers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from vidgate.cli.options import fail, load
from vidgate.cli.startup import check_database

if TYPE_CHECKING:
    from vidgate.gateway.settings import Settings
    from vidgate.gateway.storage.db import Database

T = TypeVar("T")


def run(data_dir: Path | None, config: Path | None, fn: Callable[[Database, Settings], Awaitable[T]]) -> T:
    """``fn(db, settings)`` on this command's database. An embedded database is created or upgraded
    first (so ``vidgate keys create`` works before the first ``vidgate serve``); a PostgreSQL one must
    be at this release's schema. An API error (not found, conflict) is its message and exit 1."""
    settings = load(data_dir, config)
    check_database(settings)
    from vidgate.errors import VidgateError
    from vidgate.gateway.storage.db import open_database

    async def main() -> T:
        db = await open_database(settings.database_url)
        try:
            return await fn(db, settings)
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except VidgateError as exc:
        fail(exc.message)
