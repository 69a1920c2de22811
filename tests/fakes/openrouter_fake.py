"""A fake OpenRouter video API (openrouter.ai/docs, "Video Generation API"): Bearer key, 202 create.

Usage::

    fake = OpenRouterFake(api_key="sk-or-test")
    server = FakeUpstream(fake.app).start()
    base_url = server.base_url + "/api/v1"

``POST /api/v1/videos`` answers 202 ``{id, polling_url, status: "pending"}``. Each
``GET /api/v1/videos/{id}`` advances the job one step (``pending``, then ``in_progress``) and the
``polls_to_complete``-th call answers ``completed`` with ``unsigned_urls`` (the authenticated
content proxy) and ``usage``, or what ``fail_next`` asks for: ``True`` (``failed`` with an
``error`` string), ``"cancelled"`` or ``"expired"``. The proxy
``GET /api/v1/videos/{id}/content?index=N`` needs the key and answers 404 once ``expire_outputs``
is set or ``outputs.ttl`` seconds after completion. Errors use OpenRouter's
``{"error": {"code", "message"}}`` body. There is no cancel and no job list, as in the docs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fakes.server import BearerFake, serve_output
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# What /api/v1/videos/models publishes for the models the fake serves (a subset, for the checks).
MODELS: dict[str, dict[str, Any]] = {
    "google/veo-3.1": {
        "supported_resolutions": ["720p", "1080p"],
        "supported_aspect_ratios": ["16:9", "9:16"],
        "supported_durations": [4, 6, 8],
        "supported_frame_images": ["first_frame", "last_frame"],
        "seed": True,
        "generate_audio": True,
    },
    "alibaba/wan-2.6": {
        "supported_resolutions": ["720p", "1080p"],
        "supported_aspect_ratios": ["16:9", "9:16", "1:1", "4:3", "3:4"],
        "supported_durations": [5, 10, 15],
        "supported_frame_images": ["first_frame"],
        "seed": True,
        "generate_audio": True,
    },
}
FIELDS = {
    "model",
    "prompt",
    "duration",
    "resolution",
    "aspect_ratio",
    "size",
    "generate_audio",
    "seed",
    "frame_images",
    "input_references",
    "provider",
    "callback_url",
}
FAILURE_MESSAGE = "The provider rejected the prompt: content policy violation."


def _err(code: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=code)


def _image_part_ok(part: Any) -> bool:
    url = part.get("image_url", {}).get("url") if isinstance(part, dict) else None
    return part.get("type") == "image_url" and isinstance(url, str) and url.startswith(("https://", "http://", "data:"))


@dataclass
class Job:
    id: str
    body: dict[str, Any]
    fail: Any = False
    polls: int = 0
    status: str = "pending"


class OpenRouterFake(BearerFake):
    """State and routes of one fake OpenRouter video API; see the module docstring."""

    def __init__(self, api_key: str = "sk-or-test", polls_to_complete: int = 3) -> None:
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/api/v1/videos", self.create, methods=["POST"]),
                Route("/api/v1/videos/{job_id}", self.get, methods=["GET"]),
                Route("/api/v1/videos/{job_id}/content", self.content, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        super().reset()
        self.jobs: dict[str, Job] = {}

    def unauthorized(self) -> Response:
        return _err(401, "No auth credentials found")

    @staticmethod
    def _validate(body: Any) -> str | None:
        """OpenRouter's checks against the model's published capabilities, answered as 400s."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        if unknown := sorted(set(body) - FIELDS):
            return f"Unrecognized key: {unknown[0]}"
        caps = MODELS.get(body.get("model"))  # type: ignore[arg-type]
        if caps is None:
            return f"{body.get('model')} is not a valid video model ID"
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return "prompt is required"
        for name, key in (
            ("resolution", "supported_resolutions"),
            ("aspect_ratio", "supported_aspect_ratios"),
            ("duration", "supported_durations"),
        ):
            if name in body and body[name] not in caps[key]:
                return f"{name} {body[name]} is not supported by {body['model']}; supported: {caps[key]}"
        for frame in body.get("frame_images", []):
            if not _image_part_ok(frame) or frame.get("frame_type") not in caps["supported_frame_images"]:
                return (
                    f"frame_images: unsupported frame {frame.get('frame_type') if isinstance(frame, dict) else frame}"
                )
        if not all(_image_part_ok(part) for part in body.get("input_references", [])):
            return "input_references: each entry must be an image_url part"
        return None

    def _view(self, request: Request, job: Job) -> dict[str, Any]:
        out: dict[str, Any] = {"id": job.id, "polling_url": f"/api/v1/videos/{job.id}", "status": job.status}
        if job.status == "completed":
            base = str(request.base_url).rstrip("/")
            out["generation_id"] = f"gen-{job.id}"
            out["unsigned_urls"] = [f"{base}/api/v1/videos/{job.id}/content?index=0"]
            out["usage"] = {"cost": 0.5, "is_byok": False}
        elif job.status == "failed":
            out["error"] = FAILURE_MESSAGE
        return out

    async def create(self, request: Request) -> Response:
        body = await self._record(request)
        if stop := await self._gate(request, "create"):
            return stop
        if problem := self._validate(body):
            return _err(400, problem)
        job = Job(id=f"job-{uuid.uuid4().hex[:12]}", body=body, fail=self.fail_next)
        self.fail_next = False
        self.jobs[job.id] = job
        return await self.faults.accepted("create", JSONResponse(self._view(request, job), status_code=202))

    async def get(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "poll"):
            return stop
        job = self.jobs.get(request.path_params["job_id"])
        if job is None:
            return _err(404, "Video generation job not found")
        if job.status in ("pending", "in_progress"):
            job.polls += 1
            if job.polls >= self.polls_to_complete:
                job.status = {True: "failed", "cancelled": "cancelled", "expired": "expired"}.get(job.fail, "completed")
                self.outputs.issue(job.id)
            elif job.polls >= 2:
                job.status = "in_progress"
        return JSONResponse(self._view(request, job))

    async def content(self, request: Request) -> Response:
        await self._record(request)
        if denied := self._auth(request):
            return denied
        job = self.jobs.get(request.path_params["job_id"])
        signed = (
            not self.expire_outputs
            and job is not None
            and job.status == "completed"
            and request.query_params.get("index") == "0"
            and not self.outputs.expired(job.id)
        )
        return await serve_output(self.faults, signed, _err(404, "Video content not found or expired"))
