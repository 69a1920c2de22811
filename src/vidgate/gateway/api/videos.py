"""The ``/v1/videos`` routes but the poll (``poll.py``): thin adapters from HTTP onto the job service.

Every URL they answer with is absolute, on the request's base (``gateway/base_url.py``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from vidgate.errors import (
    ConflictError,
    NotFoundError,
    NotReadyError,
    PermissionDeniedError,
    RangeNotSatisfiableError,
    ValidationError,
)
from vidgate.gateway.api.http import decode, int_param, json_response, owner, read_body, request_id
from vidgate.gateway.ids import now_s
from vidgate.gateway.jobs.files import StoredFile
from vidgate.gateway.jobs.records import JobRecord, StoredImage, StoredOutput
from vidgate.gateway.jobs.signing import sign_path, verify
from vidgate.gateway.secret import Secret
from vidgate.gateway.services import Gateway, services
from vidgate.types import DownloadURL, DownloadURLRequest, Video, VideoList

# What a route serves bytes of: each has the same names for where they are kept and what they are.
Stored = StoredOutput | StoredImage | StoredFile
MIN_TTL, MAX_TTL = 60, 3600
# What ``variant`` selects: the output itself, or one of the images made from it when it was stored.
VARIANTS = ("video", "thumbnail", "spritesheet")


async def create_video(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    body = await read_body(request, g.settings.max_body_bytes)
    key = request.headers.get("idempotency-key")
    byok = provider_keys(request.headers.get("x-provider-key"))
    base = g.settings.base_url.of(request.scope)
    row, created = await g.jobs.create(
        who, body, idempotency_key=key, request_id=request_id(request.scope), byok=byok, base=base
    )
    video = g.jobs.view(row, base)
    headers = {"Location": f"{base}/v1/videos/{row.id}"}
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return json_response(video, 202 if created else 200, headers)


def provider_keys(header: str | None) -> dict[str, Secret] | None:
    """``X-Provider-Key: openai=sk-…, runway=key_…``: the owner's own credentials for this job."""
    if header is None:
        return None
    keys: dict[str, Secret] = {}
    for part in header.split(","):
        name, sep, secret = part.strip().partition("=")
        if not sep or not name.strip() or not secret.strip() or len(keys) >= 8:
            raise ValidationError("X-Provider-Key must be provider=key pairs, comma-separated", param="X-Provider-Key")
        keys[name.strip()] = Secret(secret.strip())
    return keys


async def list_videos(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ValidationError("order must be asc or desc", param="order")
    after = request.query_params.get("after") or request.query_params.get("starting_after")
    status, limit = request.query_params.get("status"), int_param(request, "limit", 20, 1, 100)
    base = g.settings.base_url.of(request.scope)
    model, q = request.query_params.get("model") or None, (request.query_params.get("q") or "").strip().lower()
    if len(q) > 200:
        raise ValidationError("q must be at most 200 characters", param="q")
    if model is None and not q:
        return json_response(await g.jobs.list(who, status=status, limit=limit, after=after, order=order, base=base))
    return json_response(await _filtered(g, who, status, limit, after, order, base, model, q))


SCAN_LIMIT = 1000  # jobs one filtered page reads at most; the cursor goes on from the last one read


async def _filtered(
    g: Gateway,
    who: str,
    status: str | None,
    limit: int,
    after: str | None,
    order: str,
    base: str,
    model: str | None,
    q: str,
) -> VideoList:
    """A page of the jobs with ``model`` whose prompt holds ``q`` (case-insensitive), read in keyset order.

    ``last_id`` is the last job read, matched or not, so a page that stops at ``SCAN_LIMIT`` with few
    or no matches still continues where it stopped.
    """
    found: list[Video] = []
    scanned = 0
    cursor = after
    more = True
    while more and len(found) < limit and scanned < SCAN_LIMIT:
        page = await g.jobs.list(who, status=status, limit=100, after=cursor, order=order, base=base)
        more = page.has_more
        for i, video in enumerate(page.data):
            scanned += 1
            cursor = video.id
            if (model is None or video.model == model) and (not q or q in (video.prompt or "").lower()):
                found.append(video)
            if len(found) == limit or scanned == SCAN_LIMIT:
                more = more or i < len(page.data) - 1
                break
    return VideoList(
        data=found, has_more=more, first_id=found[0].id if found else None, last_id=cursor if more else None
    )


def _output(row: JobRecord, index: int) -> StoredOutput:
    status = row.status
    if status in ("queued", "processing"):
        raise NotReadyError(
            f"video {row.id} is {status}; content is available once it completes",
            details={"status": status},
            headers={"Retry-After": "2"},
        )
    if status != "completed":
        raise ConflictError(f"video {row.id} is {status}; it has no content", details={"status": status})
    outputs = row.outputs
    if not 0 <= index < len(outputs):
        raise NotFoundError(f"video {row.id} has no output {index} (it has {len(outputs)})", param="index")
    return outputs[index]


def variant_param(value: str | None) -> str:
    """The ``variant`` query: absent is the video; anything but ``VARIANTS`` is a 400."""
    if value is None or value == "video":
        return "video"
    if value not in VARIANTS:
        raise ValidationError(f"variant must be one of {', '.join(VARIANTS)}", param="variant")
    return value


def _variant(row: JobRecord, index: int, variant: str) -> tuple[StoredOutput | StoredImage, str]:
    """What ``variant`` of output ``index`` serves, and the file name it is offered under."""
    out = _output(row, index)
    if variant == "video":
        return out, f"{row.id}-{index}.mp4"
    image = out.thumbnail if variant == "thumbnail" else out.spritesheet
    if isinstance(image, StoredImage):
        return image, f"{row.id}-{index}-{variant}.{image.key.rsplit('.', 1)[-1]}"
    raise NotFoundError(
        f"output {index} of video {row.id} has no {variant}: it was stored before {variant}s were made, "
        "or making one failed",
        param="variant",
    )


async def serve(request: Request, row: JobRecord, index: int, disposition: str, variant: str = "video") -> Response:
    """Output ``index`` of a job, or an image made from it (``variant``), as the response (Range, ETag),
    from local disk or the object store."""
    out, filename = _variant(row, index, variant)
    return await serve_stored(request, out, filename, disposition)


async def serve_stored(request: Request, out: Stored, filename: str, disposition: str) -> Response:
    """Stored bytes (an output, an image made from one, an upload) as the response (Range, ETag)."""
    g = services(request)
    headers = {
        "ETag": f'"{out.sha256}"',
        "Cache-Control": "private, max-age=3600",
        "X-Content-SHA256": out.sha256,
    }
    path = g.blobs.local_path(out.key)
    if path is not None:
        parsed = _requested_range(request, headers["ETag"], out.bytes)
        if parsed is not None and request.method == "GET":
            return await _local_range(path, parsed, out, headers, f'{disposition}; filename="{filename}"')
        return FileResponse(
            path, headers=headers, media_type=out.mime_type, filename=filename, content_disposition_type=disposition
        )
    if g.settings.content_redirect and (url := await g.blobs.presign(out.key, g.settings.download_ttl_default)):
        # The store serves the bytes (and any Range) itself; the link is the caller's alone.
        headers.update({"Location": url, "Cache-Control": "private, no-store"})
        return Response(status_code=307, headers=headers)
    return await _stream_object(request, g, out, headers, filename, disposition)


SMALL_RANGE = 256 << 10  # read at once on the event loop (page-cache reads of this size take microseconds)
CHUNK = 4 << 20


async def _local_range(
    path: Path,
    span: tuple[int, int],
    out: Stored,
    headers: dict[str, str],
    content_disposition: str,
) -> Response:
    """A range of a local output by ``pread``: one read for small ranges, 1 MiB reads off the loop for large ones.

    Starlette's FileResponse opens the file through a thread and reads 64 KiB at a time, which bounds
    range requests (the player's seeks) far below what the disk gives.
    """
    start, end = span
    headers = {
        **headers,
        "Accept-Ranges": "bytes",
        "Content-Range": f"bytes {start}-{end - 1}/{out.bytes}",
        "Content-Length": str(end - start),
        "Content-Disposition": content_disposition,
    }
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise NotFoundError("this output is no longer stored", param="index") from None
    if end - start <= SMALL_RANGE:
        try:
            data = os.pread(fd, end - start, start)
        finally:
            os.close(fd)
        return Response(data, status_code=206, headers=headers, media_type=out.mime_type)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            pos = start
            while pos < end:
                data = await asyncio.to_thread(os.pread, fd, min(CHUNK, end - pos), pos)
                if not data:
                    return
                pos += len(data)
                yield data
        finally:
            os.close(fd)

    return StreamingResponse(chunks(), status_code=206, headers=headers, media_type=out.mime_type)


async def _stream_object(
    request: Request,
    g: Gateway,
    out: Stored,
    headers: dict[str, str],
    filename: str,
    disposition: str,
) -> Response:
    size = out.bytes
    headers = {**headers, "Accept-Ranges": "bytes", "Content-Disposition": f'{disposition}; filename="{filename}"'}
    start, end, status = 0, size, 200
    parsed = _requested_range(request, headers["ETag"], size)
    if parsed is not None:
        start, end = parsed
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=out.mime_type)
    return StreamingResponse(
        await g.blobs.stream(out.key, start, end), status_code=status, headers=headers, media_type=out.mime_type
    )


def _requested_range(request: Request, etag: str, size: int) -> tuple[int, int] | None:
    """The one byte range asked for (None: the whole file); 416 in the envelope when it cannot be served."""
    range_header = request.headers.get("range")
    if not range_header or request.headers.get("if-range", etag) != etag:
        return None
    parsed = _single_range(range_header, size)
    if parsed is None:
        raise RangeNotSatisfiableError(
            f"the range {range_header[:100]!r} cannot be served: ask for one range within {size} bytes",
            param="Range",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return parsed


def _single_range(header: str, size: int) -> tuple[int, int] | None:
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            length = int(last)
            start, end = max(0, size - length), size
        else:
            start = int(first)
            end = min(size, int(last) + 1) if last else size
    except ValueError:
        return None
    if start >= size or start >= end:
        return None
    return start, end


async def video_content(request: Request) -> Response:
    who = await owner(request)
    variant = variant_param(request.query_params.get("variant"))
    row = await services(request).jobs.row(who, request.path_params["video_id"])
    return await serve(request, row, int_param(request, "index", 0, 0, 63), "attachment", variant)


async def download_url(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    row = await g.jobs.row(who, request.path_params["video_id"])
    body = await read_body(request, 16 << 10, json=False)
    if body.strip() and request.headers.get("content-type", "").split(";")[0].strip() not in ("application/json", ""):
        raise ValidationError("send the body as application/json", param="Content-Type")
    opts: DownloadURLRequest = decode(body, DownloadURLRequest)
    if not MIN_TTL <= opts.ttl_seconds <= MAX_TTL:
        raise ValidationError(f"ttl_seconds must be between {MIN_TTL} and {MAX_TTL}", param="ttl_seconds")
    out, _ = _variant(row, opts.index, opts.variant)
    expires = now_s() + opts.ttl_seconds
    url = await g.blobs.presign(out.key, opts.ttl_seconds) if not g.blobs.is_local else None
    if url is None:
        path = sign_path(g.settings.signing_secret, row.id, opts.index, opts.disposition, expires, opts.variant)
        url = g.settings.base_url.of(request.scope) + path
    link = DownloadURL(download_url=url, expires_at=expires, url=url, index=opts.index, disposition=opts.disposition)
    return json_response(link)


async def signed_download(request: Request) -> Response:
    """A signed link works without the API key; tampering, expiry or another job's link is 403."""
    g = services(request)
    job_id = request.path_params["video_id"]
    q = request.query_params
    try:
        index, expires = int(q["index"]), int(q["expires"])
        disposition, signature = q["disposition"], q["signature"]
    except (KeyError, ValueError):
        raise PermissionDeniedError("this download link is incomplete or malformed") from None
    variant = q.get("variant", "video")
    if (
        disposition not in ("attachment", "inline")
        or variant not in VARIANTS
        or not verify(g.settings.signing_secret, job_id, index, disposition, expires, signature, variant)
    ):
        raise PermissionDeniedError("this download link's signature does not match")
    if expires < now_s():
        raise PermissionDeniedError("this download link has expired; ask for a new one")
    row = await g.jobs.row_any_owner(job_id)
    return await serve(request, row, index, disposition, variant)


async def cancel_video(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    row = await g.jobs.cancel(who, request.path_params["video_id"])
    return json_response(g.jobs.view(row, g.settings.base_url.of(request.scope)))


async def delete_video(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    return json_response(await g.jobs.delete(who, request.path_params["video_id"]))
