"""A fake Luma Dream Machine API v1 (providers.md §4): Bearer key, 201 create, state machine.

Usage::

    fake = LumaFake(api_key="luma-test")
    server = FakeUpstream(fake.app).start()
    base_url = server.base_url + "/dream-machine/v1"

Each ``GET /dream-machine/v1/generations/{id}`` advances the generation one step (``queued``,
then ``dreaming``) and the ``polls_to_complete``-th call answers ``completed`` (or ``failed``
with a ``failure_reason`` when ``fail_next`` was set). ``assets.video`` points at ``/cdn/...`` on
the same server, a signed link that answers 403 once ``expire_outputs`` is set or ``outputs.ttl``
seconds after completion. Errors use Luma's ``{"detail": "..."}`` body. ``GET
/dream-machine/v1/generations?limit=&offset=`` lists generations newest first (the real order is
[unverified]), each echoing its ``request``.

``POST /dream-machine/v1/generations/video/modify`` takes a ``modify_video`` body (``media.url``,
``mode``, ``model``, optional ``first_frame.url`` and ``prompt``), as the official SDK types it. A
keyframe ``{"type": "generation", "id": …}`` (an extend) must name a completed generation of this
fake, else 400: Luma continues only what it made.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fakes.server import BearerFake, serve_output
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MODELS = ("ray-2", "ray-flash-2", "ray-1-6")
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
RESOLUTIONS = ("540p", "720p", "1080p", "4k")
DURATIONS = ("5s", "9s")
FIELDS = {
    "generation_type",
    "model",
    "prompt",
    "aspect_ratio",
    "resolution",
    "duration",
    "loop",
    "keyframes",
    "concepts",
    "callback_url",
}
MODIFY_FIELDS = {"generation_type", "model", "prompt", "media", "first_frame", "mode", "callback_url"}
MODIFY_MODELS = ("ray-2", "ray-flash-2")
MODIFY_MODES = tuple(f"{kind}_{n}" for kind in ("adhere", "flex", "reimagine") for n in (1, 2, 3))
FAILURE_REASON = "Prompt not allowed because it contains content that violates our policy."
_EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)


def _expired() -> Response:
    return Response(_EXPIRED_XML, status_code=403, media_type="application/xml")


def _detail(message: str, status: int) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)


@dataclass
class Generation:
    id: str
    body: dict[str, Any]
    polls: int = 0
    state: str = "queued"
    fail: bool = False
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    created: float = field(default_factory=time.time)


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp % 1 * 1000):03d}Z"


class LumaFake(BearerFake):
    """State and routes of one fake Luma API; see the module docstring."""

    def __init__(self, api_key: str = "luma-test", polls_to_complete: int = 3) -> None:
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.reset()
        prefix = "/dream-machine/v1"
        self.app = Starlette(
            routes=[
                Route(f"{prefix}/generations/video", self.create, methods=["POST"]),
                Route(f"{prefix}/generations/video/modify", self.modify, methods=["POST"]),
                Route(f"{prefix}/generations", self.create, methods=["POST"]),  # legacy create path
                Route(f"{prefix}/generations", self.list_generations, methods=["GET"]),
                Route(f"{prefix}/generations/{{gen_id}}", self.get, methods=["GET"]),
                Route(f"{prefix}/generations/{{gen_id}}", self.delete, methods=["DELETE"]),
                Route("/cdn/{gen_id}/video.mp4", self.download, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        super().reset()
        self.generations: dict[str, Generation] = {}
        self.failure_reason = FAILURE_REASON

    def unauthorized(self) -> Response:
        return _detail("Invalid API key is provided", 401)

    def _validate(self, body: Any) -> str | None:
        """Luma's request checks, answered as 400 ``detail`` texts naming the field."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        unknown = sorted(set(body) - FIELDS)
        if unknown:
            return f"{unknown[0]}: Extra inputs are not permitted"
        if body.get("generation_type", "video") != "video":
            return "generation_type: Input should be 'video'"
        if body.get("model", "ray-1-6") not in MODELS:
            return f"model: Input should be {', '.join(repr(m) for m in MODELS)}"
        prompt = body.get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            return "prompt: Input should be a valid string"
        if not prompt and not body.get("keyframes"):
            return "prompt: Field required"
        for name, allowed in (("aspect_ratio", ASPECT_RATIOS), ("resolution", RESOLUTIONS), ("duration", DURATIONS)):
            if name not in body:
                continue
            value = body[name]
            if not isinstance(value, str):
                return f"{name}: Input should be a valid string"
            if value not in allowed:
                return f"{name}: {value!r} is not supported; use one of {', '.join(allowed)}"
        if "loop" in body and not isinstance(body["loop"], bool):
            return "loop: Input should be a valid boolean"
        keyframes = body.get("keyframes")
        if keyframes is not None:
            if not isinstance(keyframes, dict) or not set(keyframes) <= {"frame0", "frame1"}:
                return "keyframes: only frame0 and frame1 are allowed"
            for name, frame in keyframes.items():
                if not isinstance(frame, dict) or frame.get("type") not in ("image", "generation"):
                    return f"keyframes.{name}.type: Input should be 'image' or 'generation'"
                if frame["type"] == "image" and not str(frame.get("url", "")).startswith("https://"):
                    return f"keyframes.{name}.url: Input should be a valid URL"
                if frame["type"] == "generation":
                    if not isinstance(frame.get("id"), str):
                        return f"keyframes.{name}.id: Field required"
                    made = self.generations.get(frame["id"])
                    if made is None or made.state != "completed":
                        return f"keyframes.{name}.id: no completed generation {frame['id']}"
        return None

    @staticmethod
    def _validate_modify(body: Any) -> str | None:
        """The modify-video request's checks (the SDK's ``VideoModifyParams``)."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        if unknown := sorted(set(body) - MODIFY_FIELDS):
            return f"{unknown[0]}: Extra inputs are not permitted"
        if body.get("generation_type") != "modify_video":
            return "generation_type: Input should be 'modify_video'"
        if body.get("model") not in MODIFY_MODELS:
            return f"model: Input should be {', '.join(repr(m) for m in MODIFY_MODELS)}"
        if body.get("mode") not in MODIFY_MODES:
            return f"mode: Input should be one of {', '.join(MODIFY_MODES)}"
        for name in ("media", "first_frame"):
            if name not in body and name == "first_frame":
                continue
            media = body.get(name)
            if not isinstance(media, dict) or not str(media.get("url", "")).startswith("https://"):
                return f"{name}.url: Input should be a valid URL"
        if "prompt" in body and not isinstance(body["prompt"], str):
            return "prompt: Input should be a valid string"
        return None

    def _view(self, request: Request, gen: Generation) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": gen.id,
            "generation_type": gen.body.get("generation_type", "video"),
            "state": gen.state,
            "failure_reason": None,
            "created_at": _iso(gen.created),
            "assets": None,
            "model": gen.body.get("model", "ray-1-6"),
            "request": gen.body,
        }
        if gen.state == "completed":
            base = str(request.base_url).rstrip("/")
            out["assets"] = {
                "video": f"{base}/cdn/{gen.id}/video.mp4?token={gen.token}",
                "image": f"{base}/cdn/{gen.id}/thumb.jpg",
            }
        elif gen.state == "failed":
            out["failure_reason"] = self.failure_reason
        return out

    async def create(self, request: Request) -> Response:
        return await self._make(request, self._validate)

    async def modify(self, request: Request) -> Response:
        return await self._make(request, self._validate_modify)

    async def _make(self, request: Request, validate: Any) -> Response:
        body = await self._record(request)
        if stop := await self._gate(request, "create"):
            return stop
        if problem := validate(body):
            return _detail(problem, 400)
        gen = Generation(id=str(uuid.uuid4()), body=body, fail=self.fail_next)
        self.fail_next = False
        self.generations[gen.id] = gen
        return await self.faults.accepted("create", JSONResponse(self._view(request, gen), status_code=201))

    async def list_generations(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "list"):
            return stop
        limit = int(request.query_params.get("limit", "100"))
        offset = int(request.query_params.get("offset", "0"))
        newest = sorted(self.generations.values(), key=lambda g: -g.created)
        page = [self._view(request, g) for g in newest[offset : offset + limit]]
        more = offset + limit < len(newest)
        body = {"generations": page, "count": len(page), "has_more": more, "limit": limit, "offset": offset}
        return JSONResponse(body)

    async def get(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "poll"):
            return stop
        gen = self.generations.get(request.path_params["gen_id"])
        if gen is None:
            return _detail("Generation not found", 404)
        if gen.state not in ("completed", "failed"):
            gen.polls += 1
            if gen.polls >= self.polls_to_complete:
                gen.state = "failed" if gen.fail else "completed"
                self.outputs.issue(gen.id)
            elif gen.polls >= 2:
                gen.state = "dreaming"
        return JSONResponse(self._view(request, gen))

    async def delete(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "cancel"):
            return stop
        if self.generations.pop(request.path_params["gen_id"], None) is None:
            return _detail("Generation not found", 404)
        return Response(status_code=204)

    async def download(self, request: Request) -> Response:
        await self._record(request)
        gen = self.generations.get(request.path_params["gen_id"])
        signed = (
            not self.expire_outputs
            and gen is not None
            and request.query_params.get("token") == gen.token
            and not self.outputs.expired(gen.id)
        )
        return await serve_output(self.faults, signed, _expired())
