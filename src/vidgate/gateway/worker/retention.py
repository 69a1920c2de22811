"""Retention: completed jobs past the configured retention lose their outputs and become expired."""

from __future__ import annotations

import orjson

from vidgate.gateway.ids import now_ms
from vidgate.gateway.jobs.lifecycle import Lifecycle
from vidgate.gateway.storage.blobs import BlobStore
from vidgate.gateway.storage.db import Database, Q

_EXPIRED = Q(
    "SELECT id, outputs FROM jobs WHERE status = 'completed' AND completed_at < :cutoff ORDER BY completed_at LIMIT 100"
)


async def sweep_retention(db: Database, lifecycle: Lifecycle, blobs: BlobStore, retention_ms: int) -> None:
    cutoff = now_ms() - retention_ms
    for row in await db.fetchall(_EXPIRED, {"cutoff": cutoff}):
        if await lifecycle.transition(row["id"], "retention") is not None:
            for out in orjson.loads(row["outputs"] or "[]"):
                await blobs.delete(out["key"])
