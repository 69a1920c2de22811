"""Copy an output into our blob store once, with its sha256 and what a probe of it says."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from vidgate.gateway.ids import new_id, token
from vidgate.gateway.render.probe import probe
from vidgate.gateway.storage.blobs import BlobStore

MAX_OUTPUT_BYTES = 4 << 30


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def download(chunks: AsyncIterator[bytes], tmpdir: Path) -> Path:
    """Stream an upstream output to a temporary file."""
    tmpdir.mkdir(parents=True, exist_ok=True)
    path = tmpdir / f"dl-{token(8)}.part"
    total = 0
    try:
        with path.open("wb") as fh:
            async for chunk in chunks:
                total += len(chunk)
                if total > MAX_OUTPUT_BYTES:
                    raise ValueError("the output is larger than the gateway accepts")
                fh.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def ingest(blobs: BlobStore, job_id: str, index: int, path: Path, mime_type: str = "video/mp4") -> dict[str, Any]:
    """Hash and probe ``path`` off the event loop, then move it into the store (the file is gone either way)."""
    try:
        sha, info = await asyncio.gather(asyncio.to_thread(_sha256_file, path), asyncio.to_thread(probe, path))
        size = path.stat().st_size
        key = f"videos/{job_id}/{index}-{sha[:16]}.mp4"
        await blobs.put_file(key, path)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return {
        "index": index,
        "asset_id": new_id("ast"),
        "key": key,
        "mime_type": mime_type,
        "bytes": size,
        "sha256": sha,
        "width": info.width,
        "height": info.height,
        "duration_seconds": round(info.duration_seconds, 3),
        "frames": info.frames,
        "has_audio": info.has_audio,
    }
