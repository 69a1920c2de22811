"""A fake LTX API, asynchronous v2 (docs.ltx.video "Async Jobs"): Bearer key, 202 create, job states.

Usage::

    fake = LtxFake(api_key="ltx-test")
    server = FakeUpstream(fake.app).start()
    base_url = server.base_url

``POST /v2/text-to-video``, ``/v2/image-to-video``, ``/v2/audio-to-video``, ``/v2/extend`` and
``/v2/retake`` answer 202 ``{id, created_at}``. Inputs given as ``data:`` URIs are decoded and
checked as LTX documents (a video of at least 73 frames, 16:9 or 9:16; audio of 2 to 20 s; extend's
``context`` + ``duration`` within 505 frames; the data URI caps); an https URL cannot be fetched on
loopback and is taken as it is. Each
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

from fakes.media import decode_data_uri, probe
from fakes.server import BearerFake, serve_output
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
FIELDS = {
    "text-to-video": COMMON,
    "image-to-video": COMMON | {"image_uri", "last_frame_uri"},
    "audio-to-video": {"audio_uri", "image_uri", "prompt", "resolution", "guidance_scale", "model"},
    "extend": {"video_uri", "duration", "prompt", "mode", "model", "context"},
    "retake": {"video_uri", "start_time", "duration", "prompt", "mode", "resolution", "model"},
}
# Which models the operations on an input take is not listed in the pages read; the fake takes the
# documented default only [unverified].
INPUT_MODELS = ("ltx-2-3-pro",)
MEDIA_INLINE_CAP = 15 * 1024 * 1024
MIN_FRAMES = 73
MAX_EXTEND_FRAMES = 505
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


class LtxFake(BearerFake):
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
        super().reset()
        self.jobs: dict[str, Job] = {}

    def unauthorized(self) -> Response:
        return _err("authentication_error", "Invalid API key", 401)

    @staticmethod
    def _validate(endpoint: str, body: Any) -> str | None:
        """LTX's request checks, answered as 400 ``invalid_request_error`` texts naming the field."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        if unknown := sorted(set(body) - FIELDS[endpoint]):
            return f"Unknown parameter: {unknown[0]}"
        if endpoint in ("audio-to-video", "extend", "retake"):
            return _validate_input_job(endpoint, body)
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
        if stop := await self._gate(request, "create"):
            return stop
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
        if stop := await self._gate(request, "poll"):
            return stop
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


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _media(name: str, uri: Any, kind: str) -> tuple[str | None, Any]:
    """A refusal of the ``name`` input, or the probe of its bytes (None for an https URL)."""
    if not isinstance(uri, str):
        return f"Missing required parameter: {name}", None
    if uri.startswith("https://"):
        return None, None
    decoded = decode_data_uri(uri)
    if decoded is None or not decoded[0].startswith(f"{kind}/"):
        return f"{name} must be an HTTPS URL or a data URI", None
    if len(uri) > MEDIA_INLINE_CAP:
        return f"{name} exceeds the maximum data URI size of 15 MB", None
    found = probe(decoded[1])
    if found is None or found.kind != kind:
        return f"{name} could not be decoded as {kind}", None
    return None, found


def _validate_input_job(endpoint: str, body: dict[str, Any]) -> str | None:
    """The checks of the endpoints that work on an input video or audio."""
    if body.get("model", INPUT_MODELS[0]) not in INPUT_MODELS:
        return f"Unsupported model: {body['model']}"
    if "prompt" in body and (not isinstance(body["prompt"], str) or len(body["prompt"]) > 5000):
        return "prompt must be a string of at most 5000 characters"
    if endpoint == "audio-to-video":
        problem, audio = _media("audio_uri", body.get("audio_uri"), "audio")
        if problem:
            return problem
        if audio is not None and not 2 <= audio.seconds <= 20:
            return f"Audio duration must be between 2 and 20 seconds, got {audio.seconds:.2f}"
        if not body.get("prompt") and "image_uri" not in body:
            return "prompt is required when image_uri is not provided"
        if "image_uri" in body and not _uri_ok(body["image_uri"]):
            return "image_uri must be an HTTPS URL or a data URI"
        if body.get("resolution", "1920x1080") not in ("1920x1080", "1080x1920"):
            return f"Unsupported resolution: {body['resolution']}"
        return None
    problem, video = _media("video_uri", body.get("video_uri"), "video")
    if problem:
        return problem
    duration = body.get("duration")
    if not _number(duration):
        return "Missing required parameter: duration"
    if video is not None:
        if video.frames < MIN_FRAMES:
            return f"Input video must have at least {MIN_FRAMES} frames, got {video.frames}"
        shape = video.width / video.height
        if min(abs(shape - 16 / 9), abs(shape - 9 / 16)) > 0.02:
            return "Input video aspect ratio must be 16:9 or 9:16"
    if endpoint == "extend":
        if not 2 <= duration <= 20:
            return "duration must be between 2 and 20 seconds"
        if body.get("mode", "end") not in ("start", "end"):
            return f"Unsupported mode: {body['mode']}"
        context = body.get("context")
        if context is not None and (not _number(context) or not 1 <= context <= 20):
            return "context must be between 1 and 20 seconds"
        fps = video.fps if video is not None else 24.0
        if context is not None and (context + duration) * fps > MAX_EXTEND_FRAMES:
            return f"context + duration exceeds {MAX_EXTEND_FRAMES} frames"
        return None
    if duration < 2:
        return "duration must be at least 2 seconds"
    start = body.get("start_time")
    if not _number(start) or start < 0:
        return "start_time must be a number >= 0"
    if body.get("mode", "replace_audio_and_video") not in ("replace_audio", "replace_video", "replace_audio_and_video"):
        return f"Unsupported mode: {body['mode']}"
    return None
