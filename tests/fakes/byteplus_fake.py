"""A fake BytePlus ModelArk (Seedance) task API: Bearer key, OpenAI-like ``error`` envelopes with Ark
codes, ``content`` arrays whose settings come as ``--flag value`` text or top-level fields.

Each ``GET /contents/generations/tasks/{id}`` advances the task one step: ``queued`` for
``queue_polls`` calls, then ``running``, then ``succeeded`` or ``failed`` on the
``polls_to_complete``-th call. ``DELETE`` cancels a queued task, deletes a finished one and refuses a
running one. Outputs are served from ``/cdn/...`` on the same server, like Ark's signed TOS links.

``GET /contents/generations/tasks?page_num=&page_size=&filter.model=&filter.status=&filter.task_ids=``
lists tasks newest first as ``{"items", "total"}``. Outputs also expire ``outputs.ttl`` seconds after
the task succeeded.

Fault ops: ``create``, ``poll``, ``list``, ``cancel``, ``download``. Routes live under ``/api/v3``.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fakes.server import BearerFake, serve_output
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# model -> (duration range, needs image, takes audio, image roles)
MODELS: dict[str, tuple[tuple[int, int], bool, bool, set[str]]] = {
    "seedance-1-0-pro-250528": ((2, 12), False, False, {"first_frame", "last_frame"}),
    "seedance-1-0-pro-fast-251015": ((2, 12), False, False, {"first_frame"}),
    "seedance-1-0-lite-t2v-250428": ((2, 12), False, False, set()),
    "seedance-1-0-lite-i2v-250428": ((2, 12), True, False, {"first_frame", "last_frame", "reference_image"}),
    "seedance-1-5-pro-251215": ((4, 12), False, True, {"first_frame", "last_frame"}),
    "dreamina-seedance-2-0-260128": ((4, 15), False, True, {"first_frame", "last_frame", "reference_image"}),
    "dreamina-seedance-2-0-fast-260128": ((4, 15), False, True, {"first_frame", "last_frame", "reference_image"}),
}
# The models that take reference videos and audios (``video_url`` / ``audio_url`` content items, by
# URL only: a data: URI is refused [unverified]), at most 3 of each, audio only beside an image or a
# video, and neither with a first or last frame.
MEDIA_MODELS = {"dreamina-seedance-2-0-260128", "dreamina-seedance-2-0-fast-260128"}
MAX_MEDIA = 3
MAX_IMAGES = 9
RESOLUTIONS = ("480p", "720p", "1080p")
RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive")
_FLAG_NAMES = {
    "resolution": "resolution",
    "rs": "resolution",
    "ratio": "ratio",
    "rt": "ratio",
    "duration": "duration",
    "dur": "duration",
    "seed": "seed",
    "camerafixed": "camera_fixed",
    "cf": "camera_fixed",
    "watermark": "watermark",
    "wm": "watermark",
    "frames": "frames",
    "fps": "framespersecond",
}
_TOP_LEVEL = {
    "model",
    "content",
    "callback_url",
    "resolution",
    "ratio",
    "duration",
    "frames",
    "seed",
    "camera_fixed",
    "watermark",
    "generate_audio",
    "return_last_frame",
    "service_tier",
    "execution_expires_after",
    "draft",
    "priority",
}
_FLAG_RE = re.compile(r"--(\w+)\s+(\S+)")
_EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)


def _expired() -> Response:
    return Response(_EXPIRED_XML, status_code=403, media_type="application/xml")


def ark_error(status: int, code: str, message: str, param: str = "", kind: str = "BadRequest") -> JSONResponse:
    rid = f"0217{uuid.uuid4().hex[:24]}"
    return JSONResponse(
        {"error": {"code": code, "message": f"{message} Request id: {rid}", "param": param, "type": kind}},
        status_code=status,
        headers={"x-request-id": rid},
    )


def invalid(message: str, param: str = "content") -> JSONResponse:
    return ark_error(400, "InvalidParameter", message, param)


@dataclass
class Task:
    id: str
    body: dict[str, Any]
    settings: dict[str, Any]
    polls: int = 0
    status: str = "queued"
    fail: tuple[str, str] | None = None
    created_at: int = field(default_factory=lambda: int(time.time()))
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


class BytePlusFake(BearerFake):
    """State and routes of one fake Ark; see the module docstring."""

    def __init__(self, api_key: str = "ark-test", polls_to_complete: int = 3, queue_polls: int = 1) -> None:
        assert 0 <= queue_polls < polls_to_complete
        self.api_key = api_key
        self._defaults = (polls_to_complete, queue_polls)
        self.tasks: dict[str, Task] = {}
        self.failure = (
            "OutputVideoSensitiveContentDetected",
            "The request failed because the output video may contain sensitive information.",
        )
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/api/v3/contents/generations/tasks", self.create, methods=["POST"]),
                Route("/api/v3/contents/generations/tasks", self.list_tasks, methods=["GET"]),
                Route("/api/v3/contents/generations/tasks/{task_id}", self.get_task, methods=["GET"]),
                Route("/api/v3/contents/generations/tasks/{task_id}", self.delete_task, methods=["DELETE"]),
                Route("/cdn/{task_id}/video.mp4", self.download, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Forget recorded requests, faults and injected behaviour (not tasks) between tests."""
        super().reset()
        self.polls_to_complete, self.queue_polls = self._defaults

    def unauthorized(self) -> Response:
        return ark_error(
            401,
            "AuthenticationError",
            "The API key or AK/SK in the request is missing or invalid.",
            kind="Unauthorized",
        )

    async def create(self, request: Request) -> Response:
        body = await self._record(request)
        if stop := await self._gate(request, "create"):
            return stop
        if not isinstance(body, dict):
            return invalid("The request body is not valid JSON.", "body")
        model = body.get("model")
        if model not in MODELS:
            return ark_error(
                404,
                "InvalidEndpointOrModel.NotFound",
                f"The model or endpoint {model} does not exist or you do not have access to it.",
                "model",
                "NotFound",
            )
        settings, problem = self._settings(model, body)
        if problem:
            return invalid(*problem)
        task = Task(id=f"cgt-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:5]}", body=body, settings=settings)
        if self.fail_next:
            task.fail, self.fail_next = self.failure, False
        self.tasks[task.id] = task
        return await self.faults.accepted("create", JSONResponse({"id": task.id}))

    async def list_tasks(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "list"):
            return stop
        query = request.query_params
        ids = {i for v in query.getlist("filter.task_ids") for i in v.split(",") if i}
        chosen = [
            t
            for t in sorted(self.tasks.values(), key=lambda t: -t.created_at)
            if query.get("filter.model") in (None, t.body["model"])
            and query.get("filter.status") in (None, t.status)
            and (not ids or t.id in ids)
        ]
        number, size = int(query.get("page_num", "1")), int(query.get("page_size", "10"))
        page = chosen[(number - 1) * size : number * size]
        return JSONResponse({"items": [self._view(request, t) for t in page], "total": len(chosen)})

    @staticmethod
    def _settings(model: str, body: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...] | None]:
        """Parse and check the content and the settings; both flag and field forms are accepted."""
        durations, needs_image, audio, roles = MODELS[model]
        unknown = sorted(set(body) - _TOP_LEVEL)
        if unknown:
            return {}, (f"The parameter `{unknown[0]}` specified in the request is not valid.", unknown[0])
        content = body.get("content")
        if not isinstance(content, list) or not content:
            return {}, ("The parameter `content` specified in the request is not valid: must be a non-empty list.",)
        texts = [c for c in content if isinstance(c, dict) and c.get("type") == "text"]
        images = [c for c in content if isinstance(c, dict) and c.get("type") == "image_url"]
        media = [c for c in content if isinstance(c, dict) and c.get("type") in ("video_url", "audio_url")]
        if len(texts) + len(images) + len(media) != len(content) or len(texts) > 1:
            return {}, ("The parameter `content` specified in the request is not valid: unknown or repeated items.",)
        if media and (problem := _check_media(model, media, images)):
            return {}, problem
        settings: dict[str, Any] = {}
        if texts:
            text = texts[0].get("text")
            if not isinstance(text, str):
                return {}, ("The parameter `content.text` specified in the request is not valid.", "content.text")
            for name, value in _FLAG_RE.findall(text):
                if name not in _FLAG_NAMES:
                    return {}, (f"The text command `--{name}` is not supported.", "content.text")
                settings[_FLAG_NAMES[name]] = value
            for key in ("duration", "seed", "frames"):
                if isinstance(settings.get(key), str):
                    try:
                        settings[key] = int(settings[key])
                    except ValueError:
                        return {}, (f"The parameter `{key}` specified in the request is not valid.", key)
            for key in ("camera_fixed", "watermark"):
                if key in settings:
                    settings[key] = settings[key] == "true"
            settings["prompt"] = _FLAG_RE.sub("", text).strip()
        # Top-level fields win over text flags (the fake's choice: which wins upstream is unverified).
        settings.update({k: body[k] for k in ("resolution", "ratio", "duration", "seed", "camera_fixed") if k in body})
        if not settings.get("prompt") and not images:
            return {}, ("The parameter `content` specified in the request is not valid: a text prompt is required.",)
        if needs_image and not images:
            return {}, (f"The model {model} requires an image input.",)
        if images and not roles:
            return {}, (f"The model {model} does not support image input.",)
        for image in images:
            url = (image.get("image_url") or {}).get("url") if isinstance(image.get("image_url"), dict) else None
            if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:image/")):
                return {}, ("The parameter `image_url.url` specified in the request is not valid.", "image_url")
            if "role" not in image and len(images) > 1:
                return {}, ("role must be specified for image contents",)
            if image.get("role", "first_frame") not in roles:
                return {}, (f"The role `{image.get('role')}` is not supported by {model}.", "role")
        if settings.get("resolution", "720p") not in RESOLUTIONS:
            return {}, (f"The parameter `resolution` must be one of {', '.join(RESOLUTIONS)}.", "resolution")
        if settings.get("ratio", "16:9") not in RATIOS:
            return {}, (f"The parameter `ratio` must be one of {', '.join(RATIOS)}.", "ratio")
        duration = settings.get("duration", 5)
        lo, hi = durations
        if type(duration) is not int or not (lo <= duration <= hi or (duration == -1 and audio)):
            return {}, (f"The parameter `duration` must be an integer between {lo} and {hi}.", "duration")
        seed = settings.get("seed", -1)
        if type(seed) is not int or not -1 <= seed <= 4294967295:
            return {}, ("The parameter `seed` must be an integer between -1 and 4294967295.", "seed")
        if "generate_audio" in body and (not audio or not isinstance(body["generate_audio"], bool)):
            return {}, (f"The parameter `generate_audio` is not supported by {model}.", "generate_audio")
        return settings, None

    def _advance(self, task: Task) -> None:
        if task.status not in ("queued", "running"):
            return
        task.polls += 1
        if task.polls >= self.polls_to_complete:
            task.status = "failed" if task.fail else "succeeded"
            self.outputs.issue(task.id)
        elif task.polls > self.queue_polls:
            task.status = "running"

    def _view(self, request: Request, task: Task) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": task.id,
            "model": task.body["model"],
            "status": task.status,
            "error": None,
            "created_at": task.created_at,
            "updated_at": int(time.time()),
        }
        if task.status == "succeeded":
            base = str(request.base_url).rstrip("/")
            out.update(
                content={"video_url": f"{base}/cdn/{task.id}/video.mp4?X-Tos-Signature={task.token}"},
                usage={"completion_tokens": 108900, "total_tokens": 108900},
                seed=task.settings.get("seed", 78674),
                resolution=task.settings.get("resolution", "720p"),
                ratio=task.settings.get("ratio", "16:9"),
                duration=1,  # what the fake really renders
                framespersecond=24,
                service_tier="default",
                execution_expires_after=172800,
            )
        elif task.status == "failed" and task.fail:
            out["error"] = {"code": task.fail[0], "message": task.fail[1]}
        return out

    async def get_task(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "poll"):
            return stop
        task = self.tasks.get(request.path_params["task_id"])
        if task is None:
            return ark_error(404, "ResourceNotFound", "The specified task is not found.", "id", "NotFound")
        self._advance(task)
        return JSONResponse(self._view(request, task))

    async def delete_task(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "cancel"):
            return stop
        task = self.tasks.get(request.path_params["task_id"])
        if task is None:
            return ark_error(404, "ResourceNotFound", "The specified task is not found.", "id", "NotFound")
        if task.status == "running":
            # The exact refusal is [unverified]; the fake answers a 400 naming the state.
            return ark_error(400, "InvalidAction", "A running task cannot be cancelled.", "id")
        if task.status == "queued":
            task.status = "cancelled"
        else:
            del self.tasks[task.id]
        return Response(status_code=200)

    async def download(self, request: Request) -> Response:
        await self._record(request)
        task = self.tasks.get(request.path_params["task_id"])
        signed = (
            not self.expire_outputs
            and task is not None
            and request.query_params.get("X-Tos-Signature") == task.token
            and not self.outputs.expired(task.id)
        )
        return await serve_output(self.faults, signed, _expired())


def _check_media(model: str, media: list[dict[str, Any]], images: list[dict[str, Any]]) -> tuple[str, ...] | None:
    """Ark's checks of reference video and audio items, each a refusal naming the parameter."""
    if model not in MEDIA_MODELS:
        return (f"The model {model} does not support video or audio input.", "content")
    if any(i.get("role") in ("first_frame", "last_frame") for i in images):
        return ("Reference videos and audios cannot be combined with first_frame or last_frame.", "role")
    if len(images) > MAX_IMAGES:
        return (f"At most {MAX_IMAGES} reference images are supported.", "content")
    for kind in ("video", "audio"):
        items = [m for m in media if m["type"] == f"{kind}_url"]
        if len(items) > MAX_MEDIA:
            return (f"At most {MAX_MEDIA} reference {kind}s are supported.", "content")
        for item in items:
            holder = item.get(f"{kind}_url")
            url = holder.get("url") if isinstance(holder, dict) else None
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                return (f"The parameter `{kind}_url.url` specified in the request is not valid.", f"{kind}_url")
            if item.get("role") != f"reference_{kind}":
                return (f"The role `{item.get('role')}` is not supported for {kind} content.", "role")
    if not images and all(m["type"] == "audio_url" for m in media):
        return ("Reference audio requires at least one reference image or video.", "content")
    return None
