"""Copy an output into our blob store once, with its sha256, what a probe of it says, and its
poster and spritesheet.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from msgspec import UNSET

from vidgate.gateway.ids import new_id, token
from vidgate.gateway.jobs.records import StoredImage, StoredOutput
from vidgate.gateway.net import private_urls
from vidgate.gateway.render.probe import probe
from vidgate.gateway.render.thumbnails import Image, Previews, make_previews
from vidgate.gateway.storage.blobs import BlobStore

log = logging.getLogger("vidgate.worker")

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
    """Hash and probe ``path`` off the event loop, make its images, then move them all into the store.

    Stored, the file is gone. On a failure it is removed too, unless ``keep``: a rendered file kept
    for the next try rather than rendered again. A store failure of the video raises
    ``StoreFailed``; the images never fail the output, which is stored without them instead.
    """
    previews: Previews | None = None
    try:
        sha, info = await asyncio.gather(asyncio.to_thread(_sha256_file, path), asyncio.to_thread(probe, path))
        size = path.stat().st_size
        key = f"videos/{job_id}/{index}-{sha[:16]}.mp4"
        previews = await _previews(job_id, index, path, info.frames)
        try:
            await blobs.put_file(key, path)
        except Exception as exc:
            raise StoreFailed() from exc
    except BaseException:
        if previews is not None:
            previews.poster.path.unlink(missing_ok=True)
            previews.sheet.path.unlink(missing_ok=True)
        if not keep:
            path.unlink(missing_ok=True)
        raise
    thumbnail = spritesheet = None
    if previews is not None:
        thumbnail = await _store_image(blobs, job_id, index, key, previews.poster)
        spritesheet = await _store_image(blobs, job_id, index, key, previews.sheet)
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
        thumbnail=UNSET if thumbnail is None else thumbnail,
        spritesheet=UNSET if spritesheet is None else spritesheet,
    )


async def _previews(job_id: str, index: int, path: Path, frames: int) -> Previews | None:
    """The output's poster and spritesheet, made off the event loop; None (logged) when they cannot be."""
    try:
        return await asyncio.to_thread(make_previews, path, frames=frames)
    except Exception as exc:
        log.warning("job %s: output %d is stored without a thumbnail: %s: %s", job_id, index, type(exc).__name__, exc)
        return None


async def _store_image(blobs: BlobStore, job_id: str, index: int, video_key: str, image: Image) -> StoredImage | None:
    """Hash an image and move it into the store beside its video (``<video key>.<kind>.<ext>``);
    None (logged) when the store does not take it: the output goes on without that image."""
    path = image.path
    try:
        data = await asyncio.to_thread(path.read_bytes)
        key = f"{video_key.removesuffix('.mp4')}.{image.kind}.{image.extension}"
        await blobs.put_file(key, path)
    except Exception as exc:
        log.warning(
            "job %s: output %d is stored without its %s: %s: %s", job_id, index, image.kind, type(exc).__name__, exc
        )
        path.unlink(missing_ok=True)
        return None
    grid = image.grid
    return StoredImage(
        key=key,
        mime_type=image.mime_type,
        bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        width=image.width,
        height=image.height,
        tiles=UNSET if grid is None else grid.tiles,
        columns=UNSET if grid is None else grid.columns,
        rows=UNSET if grid is None else grid.rows,
        tile_width=UNSET if grid is None else grid.tile_width,
        tile_height=UNSET if grid is None else grid.tile_height,
    )
