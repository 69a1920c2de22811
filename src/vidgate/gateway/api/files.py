"""``/v1/files``: uploads, thin adapters onto ``jobs.files``.

An upload is ``multipart/form-data`` with a ``file`` field (and an optional ``purpose``), streamed
to a temporary file as it arrives (``storage.uploads``), found out from its bytes off the event loop,
then moved into the object store.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from vidgate.errors import ValidationError
from vidgate.gateway.api.http import int_param, json_response, owner
from vidgate.gateway.jobs.files import Files, checked
from vidgate.gateway.services import Gateway, services
from vidgate.gateway.storage import uploads


def files_of(g: Gateway) -> Files:
    return Files(g.db, g.blobs, ttl_ms=int(g.settings.upload_ttl_seconds * 1000))


async def create_file(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    if g.jobs.space is not None:
        g.jobs.space.check()
    declared = request.headers.get("content-length")
    received = await uploads.receive(
        request.stream(),
        request.headers.get("content-type", ""),
        g.settings.data_dir / "tmp" / "uploads",
        g.settings.upload_max_bytes,
        int(declared) if declared is not None and declared.isdigit() else None,
    )
    try:
        probed = checked(await asyncio.to_thread(uploads.sniff_file, received.path))
        stored = await files_of(g).create(who, received, probed)
    finally:
        received.path.unlink(missing_ok=True)  # gone already once stored; on a refusal, removed here
    base = g.settings.base_url.of(request.scope)
    return json_response(stored.public(), 201, {"Location": f"{base}/v1/files/{stored.id}"})


async def get_file(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    return json_response((await files_of(g).get(who, request.path_params["file_id"])).public())


async def list_files(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ValidationError("order must be asc or desc", param="order")
    after = request.query_params.get("after") or None
    limit = int_param(request, "limit", 20, 1, 100)
    return json_response(await files_of(g).list(who, limit=limit, after=after, order=order))


async def delete_file(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    return json_response(await files_of(g).delete(who, request.path_params["file_id"]))
