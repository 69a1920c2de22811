"""A fake LTX API, asynchronous v2 (docs.ltx.video "Async Jobs"): Bearer key, 202 create, job states.

Usage::

    fake = LtxFake(api_key="ltx-test")
    server = FakeUpstream(fake.app).start()
    base_url = server.base_url

``POST /v2/text-to-video`` and ``POST /v2/image-to-video`` answer 202 ``{id, created_at}``. Each
``GET /v2/{endpoint}/{id}`` advances the job one step (``pending``, then ``processing``) and the
``polls_to_complete``-th call answers ``completed`` with ``result.video_url``, or ``failed`` with an
``error`` when ``fail_next`` was set (``"moderation"`` for LTX's ``content_filtered_error``, any other
true value for an ``api_error``). A job polled under the wrong endpoint is a 404, as are jobs past
their retention. Errors use LTX's ``{"type": "error", "error": {"type", "message"}}`` body.
``result.video_url`` points at ``/cdn/...`` on the same server, a signed link that answers 403 once
``expire_outputs`` is set or ``outputs.ttl`` seconds after completion. LTX has no cancel and no job
list, so the fake has neither.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fakes.server import Faults, OutputClock, Recorder, serve_output
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MODELS = ("ltx-2-3-fast", "ltx-2-3-pro", "ltx-2-fast", "ltx-2-pro")
PORTRAIT = ("1080x1920", "1440x2560", "2160x3840")
RESOLUTIONS = ("1920x1080", "2560x1440", "3840x2160", *PORTRAIT)
DURATIONS = (6, 8, 10, 12, 14, 16, 18, 20)
CAMERA_MOTIONS = ("dolly_in", "dolly_out", "dolly_left", "dolly_right", "jib_up", "jib_down", "static", "focus_shift")
COMMON = {"prompt", "model", "duration", "fps", "resolution", "generate_audio", "camera_motion"}
FIELDS = {"text-to-video": COMMON, "image-to-video": COMMON | {"image_uri", "last_frame_uri"}}
FAILURE_MESSAGE = "An unexpected error occurred while generating the video."
MODERATION_MESSAGE = "The generated content was rejected by our safety filters."


def _err(kind: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status_code=status)


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp % 1 * 1000):03d}Z"


@dataclass
class Job:
    id: str
    endpoint: str
    body: dict[str, Any]
    fail: Any = False
    polls: int = 0
    status: str = "pending"
    created: float = field(default_factory=time.time)
    completed: float | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


def _uri_ok(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("https://", "http://", "data:image/"))


class LtxFake(Recorder):
    """State and routes of one fake LTX API; see the module docstring."""

    def __init__(self, api_key: str = "ltx-test", polls_to_complete: int = 3) -> None:
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/v2/{endpoint}", self.create, methods=["POST"]),
                Route("/v2/{endpoint}/{job_id}", self.get, methods=["GET"]),
                Route("/cdn/{job_id}/video.mp4", self.download, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        self.faults = Faults()
        self.jobs: dict[str, Job] = {}
        self.requests: list[dict[str, Any]] = []
        self.fail_next: Any = False
        self.expire_outputs = False
        self.outputs = OutputClock()

    def _auth(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _err("authentication_error", "Invalid API key", 401)
        return None

    @staticmethod
    def _validate(endpoint: str, body: Any) -> str | None:
        """LTX's request checks, answered as 400 ``invalid_request_error`` texts naming the field."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        if unknown := sorted(set(body) - FIELDS[endpoint]):
            return f"Unknown parameter: {unknown[0]}"
        required = ("prompt", "model", "duration", "resolution")
        for name in required + (("image_uri",) if endpoint == "image-to-video" else ()):
            if name not in body:
                return f"Missing required parameter: {name}"
        if not isinstance(body["prompt"], str) or not body["prompt"]:
            return "prompt must be a non-empty string"
        if body["model"] not in MODELS:
            return f"Unsupported model: {body['model']}"
        if body["duration"] not in DURATIONS:
            return f"Unsupported duration: {body['duration']}"
        if body["resolution"] not in RESOLUTIONS:
            return f"Unsupported resolution: {body['resolution']}"
        if body["resolution"] in PORTRAIT and "-3-" not in body["model"]:
            return f"Resolution {body['resolution']} is not supported by {body['model']}"
        if "generate_audio" in body and not isinstance(body["generate_audio"], bool):
            return "generate_audio must be a boolean"
        if "camera_motion" in body and body["camera_motion"] not in CAMERA_MOTIONS:
            return f"Unsupported camera_motion: {body['camera_motion']}"
        for name in ("image_uri", "last_frame_uri"):
            if name in body and not _uri_ok(body[name]):
                return f"{name} must be an HTTPS URL or a data URI"
        if "last_frame_uri" in body and "-3-" not in body["model"]:
            return "last_frame_uri is only supported by ltx-2-3 models"
        return None

    def _view(self, request: Request, job: Job) -> dict[str, Any]:
        out: dict[str, Any] = {"id": job.id, "status": job.status, "created_at": _iso(job.created)}
        if job.status == "completed":
            base = str(request.base_url).rstrip("/")
            out["completed_at"] = _iso(job.completed or time.time())
            out["result"] = {"video_url": f"{base}/cdn/{job.id}/video.mp4?token={job.token}"}
        elif job.status == "failed":
            out["completed_at"] = _iso(job.completed or time.time())
            if job.fail == "moderation":
                out["error"] = {"type": "content_filtered_error", "message": MODERATION_MESSAGE}
            else:
                out["error"] = {"type": "api_error", "message": FAILURE_MESSAGE}
        return out

    async def create(self, request: Request) -> Response:
        body = await self._record(request)
        endpoint = request.path_params["endpoint"]
        if fault := await self.faults.apply("create"):
            return fault
        if denied := self._auth(request):
            return denied
        if endpoint not in FIELDS:
            return _err("not_found_error", f"Unknown endpoint: {endpoint}", 404)
        if problem := self._validate(endpoint, body):
            return _err("invalid_request_error", problem, 400)
        job = Job(id=str(uuid.uuid4()), endpoint=endpoint, body=body, fail=self.fail_next)
        self.fail_next = False
        self.jobs[job.id] = job
        answer = JSONResponse({"id": job.id, "created_at": _iso(job.created)}, status_code=202)
        return await self.faults.accepted("create", answer)

    async def get(self, request: Request) -> Response:
        await self._record(request)
        if fault := await self.faults.apply("poll"):
            return fault
        if denied := self._auth(request):
            return denied
        job = self.jobs.get(request.path_params["job_id"])
        if job is None or job.endpoint != request.path_params["endpoint"]:
            return _err("not_found_error", "Resource not found", 404)
        if job.status in ("pending", "processing"):
            job.polls += 1
            if job.polls >= self.polls_to_complete:
                job.status = "failed" if job.fail else "completed"
                job.completed = time.time()
                self.outputs.issue(job.id)
            elif job.polls >= 2:
                job.status = "processing"
        return JSONResponse(self._view(request, job))

    async def download(self, request: Request) -> Response:
        await self._record(request)
        job = self.jobs.get(request.path_params["job_id"])
        signed = (
            not self.expire_outputs
            and job is not None
            and request.query_params.get("token") == job.token
            and not self.outputs.expired(job.id)
        )
        refusal = Response(b"<Error><Code>ExpiredToken</Code></Error>", status_code=400, media_type="application/xml")
        return await serve_output(self.faults, signed, refusal)
