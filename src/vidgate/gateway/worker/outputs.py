"""Copy an output into our blob store once, with its sha256 and what a probe of it says."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

from vidgate.gateway.ids import new_id, token
from vidgate.gateway.jobs.records import StoredOutput
from vidgate.gateway.net import private_urls
from vidgate.gateway.render.probe import probe
from vidgate.gateway.storage.blobs import BlobStore

MAX_OUTPUT_BYTES = 4 << 30


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def download(chunks: AsyncIterator[bytes], tmpdir: Path, *, allow_private: bool = False) -> Path:
    """Stream an upstream output to a temporary file.

    ``allow_private`` is the setting: whether a host the upstream names (a CDN link) may be a
    private address; the provider's client reads it while ``chunks`` runs.
    """
    tmpdir.mkdir(parents=True, exist_ok=True)
    path = tmpdir / f"dl-{token(8)}.part"
    total = 0
    try:
        with private_urls(allow_private), path.open("wb") as fh:
            async for chunk in chunks:
                total += len(chunk)
                if total > MAX_OUTPUT_BYTES:
                    raise ValueError("the output is larger than the gateway accepts")
                fh.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


class StoreFailed(Exception):
    """The blob store (or the record written before it) did not take an output; the file is intact.

    Its message is generic: what the store said names hosts, buckets and paths, so it goes to the
    log (the exception's cause), never to a job's error or attempts.
    """

    def __init__(self) -> None:
        super().__init__("the output store is unavailable")


async def ingest(
    blobs: BlobStore, job_id: str, index: int, path: Path, mime_type: str = "video/mp4", *, keep: bool = False
) -> StoredOutput:
    """Hash and probe ``path`` off the event loop, then move it into the store.

    Stored, the file is gone. On a failure it is removed too, unless ``keep``: a rendered file kept
    for the next try rather than rendered again. A store failure raises ``StoreFailed``.
    """
    try:
        sha, info = await asyncio.gather(asyncio.to_thread(_sha256_file, path), asyncio.to_thread(probe, path))
        size = path.stat().st_size
        key = f"videos/{job_id}/{index}-{sha[:16]}.mp4"
        try:
            await blobs.put_file(key, path)
        except Exception as exc:
            raise StoreFailed() from exc
    except BaseException:
        if not keep:
            path.unlink(missing_ok=True)
        raise
    return StoredOutput(
        index=index,
        asset_id=new_id("ast"),
        key=key,
        mime_type=mime_type,
        bytes=size,
        sha256=sha,
        width=info.width,
        height=info.height,
        duration_seconds=round(info.duration_seconds, 3),
        frames=info.frames,
        has_audio=info.has_audio,
    )
