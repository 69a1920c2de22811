"""Start a gateway on either backend, and read its database and blob store from tests."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers.gateway import GatewayProcess

_names = itertools.count()


def postgres_env(pg: Any, s3: Any, name: str) -> dict[str, str]:
    """A fresh database and bucket: each gateway gets its own, on the shared servers."""
    dsn = pg.create_database(name)
    bucket = s3.create_bucket(name.replace("_", "-"))
    return {**s3.env(), "VIDGATE_DATABASE_URL": dsn, "VIDGATE_BLOB_URL": f"s3://{bucket}/outputs"}


def migrate(env: dict[str, str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vidgate.cli.main", "migrate"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr


def start(
    kind: str, root: Path, *, pg: Any = None, s3: Any = None, env: dict[str, str] | None = None, command: str = "serve"
) -> GatewayProcess:
    full = dict(env or {})
    if kind == "postgres":
        full.update(postgres_env(pg, s3, f"gw_{os.getpid()}_{next(_names)}"))
        migrate(full)
    proc = GatewayProcess(root, env=full, command=command)
    proc.backend = kind  # type: ignore[attr-defined]
    return proc.start()


def database_url(gw: GatewayProcess) -> str:
    return gw.env.get("VIDGATE_DATABASE_URL") or f"sqlite:///{gw.data_dir / 'vidgate.db'}"


def rows(gw: GatewayProcess, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Run one query with ``?`` placeholders on the gateway's own database."""
    url = database_url(gw)
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url.split("sqlite:///", 1)[1])
        try:
            return [tuple(r) for r in conn.execute(sql, params).fetchall()]
        finally:
            conn.close()
    import asyncpg

    counter = itertools.count(1)
    pg_sql = re.sub(r"\?", lambda _: f"${next(counter)}", sql)

    async def go() -> list[tuple[Any, ...]]:
        conn = await asyncpg.connect(url)
        try:
            return [tuple(r) for r in await conn.fetch(pg_sql, *params)]
        finally:
            await conn.close()

    return asyncio.run(go())


def execute(gw: GatewayProcess, sql: str, *params: Any) -> None:
    """Run one write with ``?`` placeholders on the gateway's own database, committed."""
    url = database_url(gw)
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.split("sqlite:///", 1)[1]) as conn:
            conn.execute(sql, params)
        conn.close()
        return
    import asyncpg

    counter = itertools.count(1)
    pg_sql = re.sub(r"\?", lambda _: f"${next(counter)}", sql)

    async def go() -> None:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(pg_sql, *params)
        finally:
            await conn.close()

    asyncio.run(go())


def blob_keys(gw: GatewayProcess, prefix: str) -> list[str]:
    """Keys under ``prefix`` in the gateway's blob store (local files or S3)."""
    blob_url = gw.env.get("VIDGATE_BLOB_URL")
    if not blob_url:
        root = gw.data_dir / "blobs"
        return sorted(str(p.relative_to(root)) for p in (root / prefix).rglob("*") if p.is_file())
    import obstore
    from obstore.store import S3Store

    bucket, _, base = blob_url[len("s3://") :].partition("/")
    env = gw.env
    store = S3Store(
        bucket,
        endpoint=env["AWS_ENDPOINT_URL"],
        region=env.get("AWS_REGION", "us-east-1"),
        access_key_id=env["AWS_ACCESS_KEY_ID"],
        secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        client_options={"allow_http": True},
    )
    full = f"{base}/{prefix}" if base else prefix
    return sorted(m["path"][len(base) + 1 if base else 0 :] for batch in obstore.list(store, full) for m in batch)
