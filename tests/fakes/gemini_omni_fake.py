"""A fake Gemini API Interactions endpoint serving Gemini Omni Flash video, from Google's docs
(ai.google.dev/gemini-api/docs/omni, the Interactions API reference) and the official SDK's types.

Usage::

    fake = GeminiOmniFake(api_key="g-test")
    server = FakeUpstream(fake.app).start()
    base_url = server.base_url + "/v1beta"

``POST /v1beta/interactions`` validates the body as the API does (known fields, a model it serves,
content blocks, ``response_format`` with a ``"8s"``-style duration, ``video_config.task`` matching
the media given) and answers the interaction: ``in_progress`` with ``background: true``, or already
finished without it. Each ``GET /v1beta/interactions/{id}`` advances a running interaction one step;
the ``polls_to_complete``-th answers ``completed`` with a ``model_output`` step holding the video
(``delivery: uri``: a Files API download URI on this server; ``inline``: base64 ``data``), or what
``fail_next`` asks for: ``True`` (``failed`` with ``errors``) or ``"moderation"`` (``completed`` with
a text-only answer). ``POST .../cancel`` stops a running background interaction. A download answers
403 once ``expire_outputs`` is set or ``outputs.ttl`` seconds after completion. Interactions
endpoints answer errors as ``{"error": {"code": "<string>", "message"}}``; the key check in front of
them answers Google's numeric envelope, as for every Gemini API call.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from fakes.media import probe
from fakes.server import FakeState, serve_output, small_mp4
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MODELS = ("gemini-omni-1.1-flash", "gemini-omni-flash-preview")
CREATE_FIELDS = {
    "model",
    "input",
    "background",
    "environment",
    "generation_config",
    "labels",
    "previous_interaction_id",
    "response_format",
    "response_mime_type",
    "response_modalities",
    "safety_settings",
    "service_tier",
    "store",
    "stream",
    "system_instruction",
    "tools",
    "webhook_config",
}
TASKS = ("text_to_video", "image_to_video", "reference_to_video", "edit", "extend")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")
VIDEO_TYPES = ("video/mp4", "video/mpeg", "video/mov", "video/webm", "video/quicktime", "video/3gpp")
RESOLUTIONS = ("360p", "720p", "1080p", "4k")
DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
INTERACTION_ID = re.compile(r"^[A-Za-z0-9_-]{16,}$")
MAX_IMAGES = 10
FAILURE_MESSAGE = "Video generation failed due to an internal error."
REFUSAL_TEXT = "I can't generate that video. It may go against our policies on harmful content."


class ApiError(Exception):
    """An Interactions error: a string ``code`` and a message, with its HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> JSONResponse:
        return JSONResponse({"error": {"code": self.code, "message": self.message}}, status_code=self.status)


def _invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


@dataclass
class Interaction:
    id: str
    body: dict[str, Any]
    fail: Any = False
    polls: int = 0
    status: str = "in_progress"
    file_id: str = field(default_factory=lambda: secrets.token_hex(6))


def _new_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(24)).decode().rstrip("=")


def _check_block(block: Any, i: int) -> str:
    """One content block of ``input``; returns its type."""
    where = f"input[{i}]"
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise _invalid(f"{where}: a content block needs a type")
    kind = block["type"]
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise _invalid(f"{where}.text must be a string")
        return kind
    if kind not in ("image", "video"):
        raise _invalid(f"{where}: content of type {kind!r} is not supported by this model")
    has_data, has_uri = isinstance(block.get("data"), str), isinstance(block.get("uri"), str)
    if has_data == has_uri:
        raise _invalid(f"{where}: exactly one of data and uri is required")
    if has_data:
        try:
            base64.b64decode(block["data"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _invalid(f"{where}.data: invalid base64") from exc
        allowed = IMAGE_TYPES if kind == "image" else VIDEO_TYPES
        if block.get("mime_type") not in allowed:
            raise _invalid(f"{where}.mime_type {block.get('mime_type')!r} is not supported for {kind}")
        if kind == "video":  # the model reads the video itself, not what the request calls it
            found = probe(base64.b64decode(block["data"]))
            if found is None or found.kind != "video":
                raise _invalid(f"{where}: the input video could not be processed")
    return kind


def _seconds(value: Any) -> float:
    match = DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise _invalid(f"response_format.duration: invalid google.protobuf.Duration value {value!r}")
    return float(match[1])


def validate(body: Any) -> None:
    """The create's checks, answered as the API's 400 (or 404 for a model it does not serve)."""
    if not isinstance(body, dict):
        raise _invalid("Request body must be a JSON object")
    if unknown := sorted(set(body) - CREATE_FIELDS):
        raise _invalid(f"Unknown field: {unknown[0]}")
    if body.get("model") not in MODELS:
        raise ApiError(404, "not_found", f"Model {body.get('model')!r} not found or not supported for interactions")
    data = body.get("input")
    if isinstance(data, str):
        kinds = ["text"] if data else []
    elif isinstance(data, list):
        kinds = [_check_block(b, i) for i, b in enumerate(data)]
    else:
        raise _invalid("input is required: a string or a list of content blocks")
    if "text" not in kinds:
        raise _invalid("input needs a text prompt")
    if kinds.count("image") > MAX_IMAGES:
        raise _invalid(f"At most {MAX_IMAGES} images are supported per request")
    if kinds.count("video") > 1:
        raise _invalid("At most one input video is supported for video generation")
    fmt = body.get("response_format", {})
    formats = fmt if isinstance(fmt, list) else [fmt]
    video = next((f for f in formats if isinstance(f, dict) and f.get("type") == "video"), {})
    checks = {
        "delivery": ("inline", "uri"),
        "aspect_ratio": ("16:9", "9:16"),
        "resolution": RESOLUTIONS,
    }
    for key, allowed in checks.items():
        if key in video and video[key] not in allowed:
            raise _invalid(f"response_format.{key} must be one of {', '.join(allowed)}")
    config = body.get("generation_config", {})
    task = config.get("video_config", {}).get("task") if isinstance(config, dict) else None
    if task is not None and task not in TASKS:
        raise _invalid(f"generation_config.video_config.task must be one of {', '.join(TASKS)}")
    if "duration" in video:
        seconds = _seconds(video["duration"])
        if task == "edit":
            raise _invalid("response_format.duration cannot be set for an edit; it follows the input video")
        if not 3 <= seconds <= 10:
            raise _invalid("response_format.duration must be between 3s and 10s")
    needs = {"image_to_video": "image", "reference_to_video": "image", "edit": "video", "extend": "video"}
    if task in needs and needs[task] not in kinds:
        raise _invalid(f"The {task} task needs an input {needs[task]}")
    if task in ("text_to_video", "image_to_video", "reference_to_video") and "video" in kinds:
        raise _invalid(f"The {task} task takes no input video")
    if task == "image_to_video" and kinds.count("image") != 1:
        raise _invalid("The image_to_video task takes exactly one image")


class GeminiOmniFake(FakeState):
    """State and routes of one fake Interactions endpoint; see the module docstring."""

    def __init__(self, api_key: str = "g-test", polls_to_complete: int = 3) -> None:
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/v1beta/interactions", self.create, methods=["POST"]),
                Route("/v1beta/interactions/{id}", self.get, methods=["GET"]),
                Route("/v1beta/interactions/{id}/cancel", self.cancel, methods=["POST"]),
                Route("/v1beta/files/{file_id}:download", self.download, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        super().reset()
        self.interactions: dict[str, Interaction] = {}

    def _auth(self, request: Request) -> Response | None:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if key == self.api_key:
            return None
        if not key:
            err = {"code": 403, "message": "Method doesn't allow unregistered callers.", "status": "PERMISSION_DENIED"}
            return JSONResponse({"error": err}, status_code=403)
        err = {"code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT"}
        return JSONResponse({"error": err}, status_code=400)

    def _lookup(self, request: Request) -> Interaction:
        interaction_id = request.path_params["id"]
        if not INTERACTION_ID.match(interaction_id):
            raise _invalid(f"Invalid interaction name: {interaction_id}")
        if (found := self.interactions.get(interaction_id)) is None:
            raise ApiError(404, "not_found", f"Interaction {interaction_id} not found")
        return found

    def _view(self, request: Request, it: Interaction) -> dict[str, Any]:
        data = it.body["input"]
        given = [{"type": "text", "text": data}] if isinstance(data, str) else data
        view: dict[str, Any] = {
            "id": it.id,
            "model": it.body["model"],
            "status": it.status,
            "created": "2026-12-04T10:00:00Z",
            "updated": "2026-12-04T10:00:00Z",
            "steps": [{"type": "user_input", "content": given}],
        }
        if it.status == "failed":
            view["errors"] = [{"code": "internal", "message": FAILURE_MESSAGE}]
        elif it.status == "completed" and it.fail == "moderation":
            view["steps"].append({"type": "model_output", "content": [{"type": "text", "text": REFUSAL_TEXT}]})
        elif it.status == "completed":
            view["steps"].append({"type": "model_output", "content": [self._video(request, it)]})
        return view

    def _video(self, request: Request, it: Interaction) -> dict[str, Any]:
        fmt = it.body.get("response_format", {})
        formats = fmt if isinstance(fmt, list) else [fmt]
        video = next((f for f in formats if isinstance(f, dict) and f.get("type") == "video"), {})
        if video.get("delivery", "inline") == "inline":
            return {"type": "video", "data": base64.b64encode(small_mp4()).decode(), "mime_type": "video/mp4"}
        base = str(request.base_url).rstrip("/")
        uri = f"{base}/v1beta/files/{it.file_id}:download?alt=media"
        return {"type": "video", "uri": uri, "mime_type": "video/mp4"}

    def _finish(self, it: Interaction) -> None:
        it.status = "failed" if it.fail is True else "completed"
        self.outputs.issue(it.file_id)

    async def create(self, request: Request) -> Response:
        body = await self._record(request)
        if stop := await self._gate(request, "create"):
            return stop
        try:
            validate(body)
        except ApiError as exc:
            return exc.response()
        it = Interaction(id=_new_id(), body=body, fail=self.fail_next)
        self.fail_next = False
        self.interactions[it.id] = it
        if body.get("background") is not True:  # the call itself waits for the generation
            self._finish(it)
        return await self.faults.accepted("create", JSONResponse(self._view(request, it)))

    async def get(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "poll"):
            return stop
        try:
            it = self._lookup(request)
        except ApiError as exc:
            return exc.response()
        if it.status == "in_progress":
            it.polls += 1
            if it.polls >= self.polls_to_complete:
                self._finish(it)
        return JSONResponse(self._view(request, it))

    async def cancel(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "cancel"):
            return stop
        try:
            it = self._lookup(request)
            if it.status != "in_progress" or it.body.get("background") is not True:
                raise _invalid("Only background interactions that are in progress can be cancelled")
        except ApiError as exc:
            return exc.response()
        it.status = "cancelled"
        return JSONResponse(self._view(request, it))

    async def download(self, request: Request) -> Response:
        await self._record(request)
        if denied := self._auth(request):
            return denied
        file_id = request.path_params["file_id"]
        known = any(it.file_id == file_id and it.status == "completed" for it in self.interactions.values())
        signed = known and not self.expire_outputs and not self.outputs.expired(file_id)
        if signed and request.query_params.get("alt") != "media":
            return _invalid("Downloads need alt=media").response()
        refusal = JSONResponse(
            {
                "error": {
                    "code": 403,
                    "message": f"You do not have permission to access the File {file_id} or it may not exist.",
                    "status": "PERMISSION_DENIED",
                }
            },
            status_code=403,
        )
        return await serve_output(self.faults, signed, refusal)
