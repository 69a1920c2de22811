"""A fake xAI video API (docs.x.ai REST reference, "Videos"): Bearer key, deferred requests.

Usage::

    fake = XaiFake(api_key="xai-test")
    server = FakeUpstream(fake.app).start()
    base_url = server.base_url + "/v1"

``POST /v1/videos/generations`` answers 200 ``{"request_id": …}``. Each ``GET /v1/videos/{id}``
advances the request one step: ``pending`` with ``progress`` 0, then rising, and the
``polls_to_complete``-th call answers ``done`` with ``video.url``, or what ``fail_next`` asks for:
``True`` (``failed`` with an ``error``), ``"moderation"`` (``done`` with ``respect_moderation``
false and no url) or ``"expired"``. Errors use xAI's ``{"code": …, "error": …}`` body; an unknown
key is a 400, as xAI documents. ``video.url`` points at ``/cdn/...`` on the same server, a
temporary link that answers 403 once ``expire_outputs`` is set or ``outputs.ttl`` seconds after
completion. The API has no cancel and no request list, so the fake has neither.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from fakes.server import BearerFake, serve_output
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MODELS = ("grok-imagine-video",)
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
RESOLUTIONS = ("480p", "720p")
FIELDS = {
    "model",
    "prompt",
    "duration",
    "aspect_ratio",
    "resolution",
    "image",
    "reference_images",
    "output",
    "user",
    "size",
}
INVALID_ARGUMENT = "Client specified an invalid argument"
FAILURE_MESSAGE = "Video generation failed due to an internal error."


def _err(code: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"code": code, "error": message}, status_code=status)


@dataclass
class VideoRequest:
    id: str
    body: dict[str, Any]
    fail: Any = False
    polls: int = 0
    status: str = "pending"
    progress: int = 0
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


def _image_ok(value: Any) -> bool:
    url = value.get("url") if isinstance(value, dict) else None
    return isinstance(url, str) and url.startswith(("https://", "http://", "data:image/"))


class XaiFake(BearerFake):
    """State and routes of one fake xAI video API; see the module docstring."""

    def __init__(self, api_key: str = "xai-test", polls_to_complete: int = 3) -> None:
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/v1/videos/generations", self.create, methods=["POST"]),
                Route("/v1/videos/{request_id}", self.get, methods=["GET"]),
                Route("/cdn/{request_id}.mp4", self.download, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        super().reset()
        self.videos: dict[str, VideoRequest] = {}

    def unauthorized(self) -> Response:
        # xAI answers a wrong key with a 400, not a 401.
        return _err(
            INVALID_ARGUMENT,
            "Incorrect API key provided: ***. You can obtain an API key from https://console.x.ai.",
            400,
        )

    @staticmethod
    def _validate(body: Any) -> str | None:
        """xAI's request checks, answered as a 400 naming the field."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        if unknown := sorted(set(body) - FIELDS):
            return f"Unknown field `{unknown[0]}`"
        if body.get("model", MODELS[0]) not in MODELS:
            return f"The model `{body.get('model')}` does not exist or your team does not have access to it."
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return "Field `prompt` is required"
        duration = body.get("duration", 8)
        if not isinstance(duration, int) or isinstance(duration, bool) or not 1 <= duration <= 15:
            return "Field `duration` must be an integer in [1, 15]"
        for name, allowed in (("aspect_ratio", ASPECT_RATIOS), ("resolution", RESOLUTIONS)):
            if name in body and body[name] not in allowed:
                return f"Field `{name}` must be one of {', '.join(allowed)}"
        if "image" in body and not _image_ok(body["image"]):
            return "Field `image.url` must be a URL or a data URI"
        refs = body.get("reference_images")
        if refs is not None:
            if "image" in body:
                return "Fields `image` and `reference_images` cannot be used together"
            if not isinstance(refs, list) or not 1 <= len(refs) <= 7 or not all(_image_ok(r) for r in refs):
                return "Field `reference_images` must hold 1 to 7 images with a `url`"
        return None

    def _view(self, request: Request, video: VideoRequest) -> dict[str, Any]:
        model = video.body.get("model", MODELS[0])
        if video.status == "pending":
            return {"status": "pending", "progress": video.progress}
        if video.status == "failed":
            return {
                "status": "failed",
                "video": {"duration": 0, "respect_moderation": True},
                "model": "",
                "error": {"code": "internal_error", "message": FAILURE_MESSAGE},
                "progress": 100,
            }
        if video.status == "expired":
            return {"status": "expired"}
        seconds = video.body.get("duration", 8)
        if video.fail == "moderation":
            return {"status": "done", "video": {"duration": 0, "respect_moderation": False}, "model": model}
        base = str(request.base_url).rstrip("/")
        return {
            "status": "done",
            "video": {
                "url": f"{base}/cdn/{video.id}.mp4?token={video.token}",
                "duration": seconds,
                "respect_moderation": True,
            },
            "model": model,
            "usage": {"cost_in_usd_ticks": seconds * 500_000_000},
            "progress": 100,
        }

    async def create(self, request: Request) -> Response:
        body = await self._record(request)
        if stop := await self._gate(request, "create"):
            return stop
        if problem := self._validate(body):
            return _err(INVALID_ARGUMENT, problem, 400)
        video = VideoRequest(id=str(uuid.uuid4()), body=body, fail=self.fail_next)
        self.fail_next = False
        self.videos[video.id] = video
        return await self.faults.accepted("create", JSONResponse({"request_id": video.id}))

    async def get(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "poll"):
            return stop
        video = self.videos.get(request.path_params["request_id"])
        if video is None:
            return _err("Some requested entity was not found", "Deferred request not found", 404)
        if video.status == "pending":
            video.polls += 1
            if video.polls >= self.polls_to_complete:
                video.status = {True: "failed", "expired": "expired"}.get(video.fail, "done")
                video.progress = 100
                self.outputs.issue(video.id)
            else:
                video.progress = (video.polls - 1) * 100 // max(1, self.polls_to_complete - 1)
        return JSONResponse(self._view(request, video))

    async def download(self, request: Request) -> Response:
        await self._record(request)
        video = self.videos.get(request.path_params["request_id"])
        signed = (
            not self.expire_outputs
            and video is not None
            and request.query_params.get("token") == video.token
            and not self.outputs.expired(video.id)
        )
        refusal = Response(b"<Error><Code>AccessDenied</Code></Error>", status_code=403, media_type="application/xml")
        return await serve_output(self.faults, signed, refusal)
