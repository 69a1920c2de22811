"""Alembic environment: migrates SQLite with the stdlib driver and PostgreSQL with asyncpg."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import engine_from_config, pool
from sqlalchemy.ext.asyncio import async_engine_from_config

from vidgate.gateway.storage.schema import metadata

config = context.config


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or ""
    section = {"sqlalchemy.url": url}
    if "+asyncpg" in url:

        async def go() -> None:
            engine = async_engine_from_config(section, poolclass=pool.NullPool)
            async with engine.connect() as conn:
                await conn.run_sync(_run)
            await engine.dispose()

        asyncio.run(go())
        return
    engine = engine_from_config(section, poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


run_online()
