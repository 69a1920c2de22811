"""The OpenAI video dialect under ``/openai/v1``: ``openai.OpenAI(base_url=…/openai/v1)`` works unmodified.

Each route translates OpenAI's wire format onto the same job service ``/v1/videos`` uses, so
validation, billing, idempotency and ownership are one code path and a job made through either
mount is visible through both.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import AsyncGenerator
from typing import Any

import orjson
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response

from vidgate.errors import (
    ModelNotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    UnsupportedParameterError,
    ValidationError,
)
from vidgate.gateway.api.http import int_param, json_response, owner, read_body, request_id
from vidgate.gateway.api.videos import VARIANTS, serve
from vidgate.gateway.catalog.catalog import Catalog
from vidgate.gateway.services import services
from vidgate.types import Video

PREFIX = "/openai/v1"
DEFAULT_MODEL = "sora-2"  # what OpenAI assumes when the request names none
STATUS = {
    "queued": "queued",
    "processing": "in_progress",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "failed",
    "expired": "failed",
}
FORM_FIELDS = frozenset({"prompt", "model", "seconds", "size", "input_reference"})


def resolve_model(catalog: Catalog, name: str) -> str:
    """A catalogue id as is; a bare OpenAI name (``sora-2``) as ``openai/sora-2`` when we serve it."""
    if catalog.get(name) is not None or "/" in name:
        return name  # an unknown full id gets the validator's own error
    if catalog.get(f"openai/{name}") is not None:
        return f"openai/{name}"
    raise ModelNotFoundError(
        f"model {name!r} is not served here; use a catalogue id such as "
        f"{', '.join(repr(m.id) for m in catalog.models[:5])} (GET /v1/videos/models lists them all)",
        param="model",
    )


def openai_video(video: Video, retention_seconds: int) -> dict[str, Any]:
    """Our job as OpenAI's ``Video`` object."""
    status = STATUS[video.status]
    error: dict[str, str] | None = None
    if video.error is not None:
        error = {"code": video.error.code, "message": video.error.message}
    elif status == "failed":
        error = {"code": video.status, "message": f"the video was {video.status}"}
    seconds = video.seconds if isinstance(video.seconds, (int, float)) else 0
    expires_at = None
    if video.status == "completed" and video.completed_at is not None:
        expires_at = video.completed_at + retention_seconds
    return {
        "id": video.id,
        "object": "video",
        "model": video.model,
        "status": status,
        "progress": int(video.progress or 0),
        "created_at": video.created_at,
        "completed_at": video.completed_at,
        "expires_at": expires_at,
        "prompt": video.prompt if isinstance(video.prompt, str) else None,
        "seconds": f"{seconds:g}",
        "size": video.size if isinstance(video.size, str) else "",
        "error": error,
        "remixed_from_video_id": None,
    }


def _retention(request: Request) -> int:
    return int(services(request).settings.retention_days * 86_400)


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
        yield chunk


async def _fields(request: Request, limit: int) -> dict[str, Any]:
    """The create fields, from OpenAI's multipart form or from a JSON body."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        try:
            body = orjson.loads(await read_body(request, limit))
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ValidationError("the body must be a JSON object")
        return body
    if ctype != "multipart/form-data":
        raise UnsupportedMediaTypeError(
            f"send the body as multipart/form-data or application/json (got {ctype or 'no content type'})",
            param="Content-Type",
        )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
    parser = MultiPartParser(request.headers, _limited(request, limit), max_files=1, max_fields=16, max_part_size=limit)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ValidationError(f"the multipart body is malformed: {exc.message}") from None
    try:
        return await _form_fields(form)
    finally:
        await form.close()


async def _form_fields(form: FormData) -> dict[str, Any]:
    out: dict[str, Any] = {}
    reference: dict[str, str] = {}
    for name, value in form.multi_items():
        if name.startswith("input_reference[") and name.endswith("]") and isinstance(value, str):
            reference[name[len("input_reference[") : -1]] = value
        elif name == "input_reference" and isinstance(value, UploadFile):
            data = await value.read()
            mime = value.content_type or mimetypes.guess_type(value.filename or "")[0] or "image/png"
            if mime == "application/octet-stream":
                mime = mimetypes.guess_type(value.filename or "")[0] or "image/png"
            out["input_reference"] = {"image_url": f"data:{mime};base64,{base64.b64encode(data).decode()}"}
        elif name in FORM_FIELDS and isinstance(value, str):
            out[name] = value
        else:
            raise UnsupportedParameterError(f"{name!r} is not a parameter of video creation", param=name)
    if reference:
        out["input_reference"] = reference
    return out


def _translate(fields: dict[str, Any], catalog: Catalog) -> bytes:
    """OpenAI create fields as our ``VideoGenerationRequest`` JSON."""
    unknown = sorted(set(fields) - FORM_FIELDS)
    if unknown:
        raise UnsupportedParameterError(f"{unknown[0]!r} is not a parameter of video creation", param=unknown[0])
    prompt = fields.get("prompt")
    if not isinstance(prompt, str):
        raise ValidationError("prompt is required", param="prompt")
    model = fields.get("model") or DEFAULT_MODEL
    if not isinstance(model, str):
        raise ValidationError("model must be a string", param="model")
    body: dict[str, Any] = {"model": resolve_model(catalog, model), "prompt": prompt}
    if (seconds := fields.get("seconds")) is not None:
        try:
            body["duration"] = int(str(seconds))
        except ValueError:
            raise ValidationError(
                f"seconds must be a whole number, as a string (got {seconds!r})", param="seconds"
            ) from None
    if (size := fields.get("size")) is not None:
        body["size"] = str(size)
    if (ref := fields.get("input_reference")) is not None:
        if not isinstance(ref, dict) or "file_id" in ref or not isinstance(ref.get("image_url"), str):
            raise UnsupportedParameterError(
                "input_reference must be an uploaded image or {image_url}; file ids are not supported here",
                param="input_reference",
            )
        url = ref["image_url"]
        body["input_references"] = [{"type": "image_url", "role": "first_frame", "image_url": {"url": url}}]
    return orjson.dumps(body)


async def create_video(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    body = _translate(await _fields(request, g.settings.max_body_bytes), g.catalog)
    row, created = await g.jobs.create(
        who,
        body,
        idempotency_key=request.headers.get("idempotency-key"),
        request_id=request_id(request.scope),
        base=g.settings.base_url.of(request.scope),  # the job's events and webhooks show absolute URLs
    )
    headers = None if created else {"Idempotent-Replayed": "true"}
    return json_response(openai_video(g.jobs.view(row), _retention(request)), headers=headers)


async def retrieve_video(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    video = g.jobs.view(await g.jobs.row(who, request.path_params["video_id"]))
    headers = None
    if isinstance(video.poll_after_seconds, int) and video.status in ("queued", "processing"):
        # The openai SDK's create_and_poll sleeps for exactly this long between retrieves.
        headers = {"openai-poll-after-ms": str(video.poll_after_seconds * 1000)}
    return json_response(openai_video(video, _retention(request)), headers=headers)


async def list_videos(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    order = request.query_params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise ValidationError("order must be asc or desc", param="order")
    page = await g.jobs.list(
        who,
        status=None,
        limit=int_param(request, "limit", 20, 1, 100),
        after=request.query_params.get("after") or None,
        order=order,
    )
    retention = _retention(request)
    return json_response(
        {
            "object": "list",
            "data": [openai_video(v, retention) for v in page.data],
            "first_id": page.first_id,
            "last_id": page.last_id,
            "has_more": page.has_more,
        }
    )


async def delete_video(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    deleted = await g.jobs.delete(who, request.path_params["video_id"])
    return json_response({"id": deleted.id, "object": "video.deleted", "deleted": True})


async def video_content(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    variant = request.query_params.get("variant", "video")
    if variant not in VARIANTS:  # OpenAI's names: the MP4, a WebP poster frame, a JPEG spritesheet
        raise UnsupportedParameterError(
            f"variant {variant!r} is not available here; use one of {', '.join(VARIANTS)}", param="variant"
        )
    row = await g.jobs.row(who, request.path_params["video_id"])
    return await serve(request, row, 0, "attachment", variant)
