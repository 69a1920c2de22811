"""The OpenAI video dialect under ``/openai/v1``: ``openai.OpenAI(base_url=…/openai/v1)`` works unmodified.

Each route translates OpenAI's wire format onto the same job service ``/v1/videos`` uses, so
validation, billing, idempotency and ownership are one code path and a job made through either
mount is visible through both.

A remix (``POST /videos/{id}/remix``) and an edit (``POST /videos/edits``) are ``edit`` jobs, an
extension (``POST /videos/extensions``) an ``extend`` job, each on a source video: one of the caller's
completed videos by id (its first output, read from the store) on that video's model, size and (but
for an extension, which says its own ``seconds``) duration; or an uploaded file, on the ``model`` the
body names. ``remixed_from_video_id`` names that source video where a job has one.
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import AsyncGenerator
from dataclasses import dataclass
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
from vidgate.gateway.api.conditional import CACHE_CONTROL, etag, matches
from vidgate.gateway.api.http import int_param, json_response, owner, read_body, request_id
from vidgate.gateway.api.videos import VARIANTS, serve
from vidgate.gateway.catalog.catalog import Catalog
from vidgate.gateway.jobs.assets import JOB_PREFIX
from vidgate.gateway.jobs.spec import VideoSpec
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
# The fields of each operation on a source video (``model`` is ours: OpenAI takes the source's).
REMIX_FIELDS = frozenset({"prompt"})
EDIT_FIELDS = frozenset({"prompt", "video", "model"})
EXTEND_FIELDS = frozenset({"prompt", "video", "seconds", "model"})


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


def openai_video(video: Video, retention_seconds: int, source: str | None = None) -> dict[str, Any]:
    """Our job as OpenAI's ``Video`` object; ``source`` is the video it was made from, if any."""
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
        "remixed_from_video_id": source,
    }


def source_video(spec: VideoSpec) -> str | None:
    """The id of the caller's video a job extends or edits, where it names one that way."""
    return next(
        (r.asset for r in spec.references if r.role == "source" and r.asset and r.asset.startswith(JOB_PREFIX)),
        None,
    )


def _retention(request: Request) -> int:
    return int(services(request).settings.retention_days * 86_400)


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
        yield chunk


async def _fields(
    request: Request, limit: int, allowed: frozenset[str] = FORM_FIELDS, file_field: str = "input_reference"
) -> dict[str, Any]:
    """The fields of ``allowed``, from OpenAI's multipart form or from a JSON body; the form's
    ``file_field`` is an uploaded file or an object flattened to ``name[key]`` fields."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "application/json":
        try:
            body = orjson.loads(await read_body(request, limit))
        except orjson.JSONDecodeError as exc:
            raise ValidationError(f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ValidationError("the body must be a JSON object")
        if unknown := sorted(set(body) - allowed):
            raise UnsupportedParameterError(f"{unknown[0]!r} is not a parameter of this request", param=unknown[0])
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
        return await _form_fields(form, allowed, file_field)
    finally:
        await form.close()


async def _form_fields(form: FormData, allowed: frozenset[str], file_field: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    flattened: dict[str, str] = {}
    kind = "image" if file_field == "input_reference" else "video"
    for name, value in form.multi_items():
        if name.startswith(f"{file_field}[") and name.endswith("]") and isinstance(value, str):
            flattened[name[len(file_field) + 1 : -1]] = value
        elif name == file_field and isinstance(value, UploadFile):
            out[file_field] = Uploaded(await _data_url(value, kind))
        elif name in allowed and isinstance(value, str):
            out[name] = value
        else:
            raise UnsupportedParameterError(f"{name!r} is not a parameter of this request", param=name)
    if flattened:
        out[file_field] = flattened
    return out


@dataclass(frozen=True, slots=True)
class Uploaded:
    """A file part of the form, as a ``data:`` URL (only a form carries one: JSON cannot)."""

    data_url: str


async def _data_url(upload: UploadFile, kind: str) -> str:
    """An uploaded part as a ``data:`` URL, its type from the part or its file name."""
    fallback = "image/png" if kind == "image" else "video/mp4"
    guessed = mimetypes.guess_type(upload.filename or "")[0]
    mime = upload.content_type or guessed or fallback
    if mime == "application/octet-stream":
        mime = guessed or fallback
    return f"data:{mime};base64,{base64.b64encode(await upload.read()).decode()}"


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
        body["duration"] = _seconds(seconds)
    if (size := fields.get("size")) is not None:
        body["size"] = str(size)
    if (ref := fields.get("input_reference")) is not None:
        if isinstance(ref, Uploaded):
            ref = {"image_url": ref.data_url}
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


async def remix_video(request: Request) -> Response:
    """``POST /videos/{id}/remix`` ``{prompt}``: an edit of the caller's completed video ``id``."""
    g = services(request)
    fields = await _fields(request, g.settings.max_body_bytes, REMIX_FIELDS)
    return await _on_source(request, "edit", {**fields, "video": {"id": request.path_params["video_id"]}})


async def edit_video(request: Request) -> Response:
    """``POST /videos/edits`` ``{prompt, video}``: an edit of a video (``{id}`` or an uploaded file)."""
    fields = await _fields(request, services(request).settings.max_body_bytes, EDIT_FIELDS, "video")
    return await _on_source(request, "edit", fields)


async def extend_video(request: Request) -> Response:
    """``POST /videos/extensions`` ``{prompt, seconds, video}``: ``seconds`` more of a video."""
    fields = await _fields(request, services(request).settings.max_body_bytes, EXTEND_FIELDS, "video")
    if fields.get("seconds") is None:
        raise ValidationError("seconds is required: how many seconds the extension adds", param="seconds")
    return await _on_source(request, "extend", fields)


async def _on_source(request: Request, operation: str, fields: dict[str, Any]) -> Response:
    """Make the ``operation`` job the fields describe, as the create route makes any job."""
    g = services(request)
    who = await owner(request)
    prompt = fields.get("prompt")
    if not isinstance(prompt, str):
        raise ValidationError("prompt is required", param="prompt")
    video = fields.get("video")
    if not isinstance(video, Uploaded) and not (isinstance(video, dict) and set(video) == {"id"}):
        raise ValidationError("video is required: {id} of one of your completed videos, or a video file", param="video")
    model = fields.get("model")
    if model is not None and not isinstance(model, str):
        raise ValidationError("model must be a string", param="model")
    body: dict[str, Any] = {"prompt": prompt, "operation": operation}
    if isinstance(video, dict):
        source = await g.jobs.row(who, str(video["id"]))
        spec = source.spec
        body["model"] = resolve_model(g.catalog, model) if model else source.model
        reference = {"type": "video", "role": "source", "asset_id": source.id}
        made_by = g.catalog.get(source.model)
        if body["model"] == source.model and made_by is not None:  # the source's own shape, which its model made
            if spec.resolution in made_by.resolutions and spec.aspect_ratio in made_by.aspect_ratios:
                body.update(resolution=spec.resolution, aspect_ratio=spec.aspect_ratio)
            else:
                body["size"] = spec.size
            if operation == "edit":
                body["duration"] = spec.duration
    else:
        body["model"] = resolve_model(g.catalog, model or DEFAULT_MODEL)
        reference = {"type": "video", "role": "source", "data": video.data_url}
    body["input_references"] = [reference]
    if (seconds := fields.get("seconds")) is not None:
        body["duration"] = _seconds(seconds)
    row, created = await g.jobs.create(
        who,
        orjson.dumps(body),
        idempotency_key=request.headers.get("idempotency-key"),
        request_id=request_id(request.scope),
        base=g.settings.base_url.of(request.scope),
    )
    headers = None if created else {"Idempotent-Replayed": "true"}
    view = openai_video(g.jobs.view(row), _retention(request), source_video(row.spec))
    return json_response(view, headers=headers)


def _seconds(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise ValidationError(f"seconds must be a whole number, as a string (got {value!r})", param="seconds") from None


async def retrieve_video(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    row = await g.jobs.row(who, request.path_params["video_id"])
    video = g.jobs.view(row)
    headers = {"ETag": etag(row.id, row.version), "Cache-Control": CACHE_CONTROL}  # this body has no signed links
    if isinstance(video.poll_after_seconds, int) and video.status in ("queued", "processing"):
        # The openai SDK's create_and_poll sleeps for exactly this long between retrieves.
        headers["openai-poll-after-ms"] = str(video.poll_after_seconds * 1000)
    if matches(request.headers.get("if-none-match"), headers["ETag"]):
        return Response(status_code=304, headers=headers)
    return json_response(openai_video(video, _retention(request), source_video(row.spec)), headers=headers)


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
