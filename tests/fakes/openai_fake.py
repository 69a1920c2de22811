"""A fake OpenAI Videos API (Sora 2) speaking the wire format of providers.md §1.

Usage::

    fake = OpenAIFake(api_key="sk-test")
    server = FakeUpstream(fake.app).start()
    base_url = server.base_url + "/v1"

Each ``GET /v1/videos/{id}`` advances that job one step: ``queued`` (progress 0), then
``in_progress`` with rising progress, then ``completed`` (100) on the ``polls_to_complete``-th call,
or ``failed`` when ``fail_next`` was set before the job was created. ``GET /v1/videos`` lists jobs
newest first (``limit``, ``after``, ``order``). Whether the real API honours ``Idempotency-Key`` on
create is [unverified]: ``dedupe_idempotency_keys`` makes the fake answer a repeated key with the
first job; by default every create makes a job. An uploaded ``input_reference`` is decoded and must
be exactly ``size``, as the real API demands ("must match the requested width and height").
"""

from __future__ import annotations

import io
import secrets
import time
from typing import Any, NamedTuple

import av
import orjson
from fakes.server import Faults, OutputClock, small_mp4
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MODELS = ("sora-2", "sora-2-pro", "sora-2-2025-10-06", "sora-2-pro-2025-10-06", "sora-2-2025-12-08")
SECONDS = ("4", "8", "12")
SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
PRO_ONLY_SIZES = ("1024x1792", "1792x1024")
KNOWN_FIELDS = ("prompt", "model", "seconds", "size", "input_reference")

FAILURES = {
    "failed": {"code": "internal_error", "message": "Video generation failed due to an internal error."},
    "moderation": {
        "code": "moderation_blocked",
        "message": "Your request was blocked by our moderation system.",
    },
}

THUMBNAIL = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00/\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
SPRITESHEET = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


class Recorded(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class OpenAIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=_rid())


def _rid() -> dict[str, str]:
    return {"x-request-id": f"req_{secrets.token_hex(8)}"}


def _picture_size(data: bytes) -> tuple[int, int] | None:
    """The decoded width and height of an uploaded image, or None when it is no image."""
    try:
        with av.open(io.BytesIO(data)) as container:
            frame = next(container.decode(video=0))
    except (av.error.FFmpegError, StopIteration, IndexError, ValueError):
        return None
    return frame.width, frame.height


class OpenAIFake:
    """State and routes of one fake OpenAI upstream."""

    def __init__(self, api_key: str = "sk-test", polls_to_complete: int = 3) -> None:
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/v1/videos", self.create, methods=["POST"]),
                Route("/v1/videos", self.list_videos, methods=["GET"]),
                Route("/v1/videos/{video_id}", self.retrieve, methods=["GET"]),
                Route("/v1/videos/{video_id}/content", self.content, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Forget every job, recorded request, fault and failure switch (for a shared server)."""
        self.faults = Faults()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.idempotency_keys: list[str | None] = []
        self.fail_next: str | None = None  # "failed" | "moderation", applies to the next created job
        self.expired: set[str] = set()  # video ids whose content has expired
        self.expire_all = False
        self.outputs = OutputClock()  # content expires ``outputs.ttl`` seconds after completion
        self.dedupe_idempotency_keys = False
        self._by_key: dict[str, str] = {}  # idempotency key -> the video it made

    # -- helpers -----------------------------------------------------------------------------
    def _check_auth(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer ") or not header[7:]:
            raise OpenAIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        key = header[7:]
        if key != self.api_key:
            masked = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "***"
            raise OpenAIError(401, f"Incorrect API key provided: {masked}.", code="invalid_api_key")

    def _record(self, request: Request, body: Any) -> None:
        self.requests.append(Recorded(request.method, request.url.path, dict(request.headers), body))

    async def _admit(self, request: Request, op: str, recorded: Any) -> Response | None:
        """What every read route does first: a queued fault or a bad key answers; otherwise the
        request is recorded (with ``recorded`` as its body) and None lets the route answer."""
        if fault := await self.faults.apply(op):
            return fault
        try:
            self._check_auth(request)
        except OpenAIError as exc:
            return exc.response()
        self._record(request, recorded)
        return None

    @staticmethod
    def _video(job: dict[str, Any]) -> dict[str, Any]:
        return {
            k: job[k]
            for k in (
                "id",
                "object",
                "model",
                "status",
                "progress",
                "created_at",
                "completed_at",
                "expires_at",
                "prompt",
                "size",
                "seconds",
                "remixed_from_video_id",
                "error",
            )
        }

    async def _parse_create(self, request: Request) -> dict[str, Any]:
        """Fields of a multipart or JSON create, with file parts as dicts describing the upload."""
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            form = await request.form()
            fields: dict[str, Any] = {}
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    data = await value.read()
                    fields[key] = {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "size": len(data),
                        "data": data,
                    }
                elif key.startswith("input_reference[") and key.endswith("]"):
                    fields.setdefault("input_reference", {})[key[16:-1]] = value
                else:
                    fields[key] = value
            return fields
        if ctype.startswith("application/json"):
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError as exc:
                raise OpenAIError(400, "We could not parse the JSON body of your request.") from exc
            if not isinstance(body, dict):
                raise OpenAIError(400, "The request body must be a JSON object.")
            ref = body.get("input_reference")
            if ref is not None and not isinstance(ref, dict):
                raise OpenAIError(
                    400,
                    "Invalid type for 'input_reference': expected an object.",
                    param="input_reference",
                    code="invalid_type",
                )
            return body
        raise OpenAIError(400, "Unsupported content type; send multipart/form-data or application/json.")

    def _validate(self, fields: dict[str, Any]) -> None:
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            raise OpenAIError(
                400, "Missing required parameter: 'prompt'.", param="prompt", code="missing_required_parameter"
            )
        if len(prompt) > 32000:
            raise OpenAIError(400, "'prompt' is too long.", param="prompt", code="string_above_max_length")
        model = fields.get("model", "sora-2")
        if model not in MODELS:
            raise OpenAIError(
                400,
                f"Invalid value for 'model': '{model}' is not a supported video model.",
                param="model",
                code="invalid_value",
            )
        seconds = fields.get("seconds", "4")
        if not isinstance(seconds, str):
            raise OpenAIError(
                400,
                "Invalid type for 'seconds': expected one of '4', '8', '12', but got "
                f"{type(seconds).__name__} instead.",
                param="seconds",
                code="invalid_type",
            )
        if seconds not in SECONDS:
            raise OpenAIError(
                400,
                f"Invalid value: '{seconds}'. Supported values are: '4', '8', and '12'.",
                param="seconds",
                code="invalid_value",
            )
        size = fields.get("size", "720x1280")
        if size not in SIZES:
            raise OpenAIError(
                400,
                f"Invalid value: '{size}'. Supported values are: {', '.join(SIZES)}.",
                param="size",
                code="invalid_value",
            )
        if size in PRO_ONLY_SIZES and not model.startswith("sora-2-pro"):
            # Which error the real API returns here is [unverified].
            raise OpenAIError(
                400, f"Size '{size}' is not supported by model '{model}'.", param="size", code="invalid_value"
            )
        ref = fields.get("input_reference")
        if (
            isinstance(ref, dict)
            and "data" not in ref
            and len([k for k in ("image_url", "file_id") if ref.get(k)]) != 1
        ):
            raise OpenAIError(
                400,
                "'input_reference' must have exactly one of 'image_url' or 'file_id'.",
                param="input_reference",
                code="invalid_value",
            )
        if (
            isinstance(ref, dict)
            and "data" in ref
            and ref.get("content_type") not in ("image/jpeg", "image/png", "image/webp")
        ):
            raise OpenAIError(
                400,
                "Invalid file format for 'input_reference'. Supported: jpeg, png, webp.",
                param="input_reference",
                code="invalid_value",
            )

        if isinstance(ref, dict) and "data" in ref:
            shown = _picture_size(ref["data"])
            if shown is None:
                raise OpenAIError(400, "The input_reference image could not be read.", param="input_reference")
            if f"{shown[0]}x{shown[1]}" != size:
                raise OpenAIError(
                    400,
                    "Inpaint image must match the requested width and height",
                    param="input_reference",
                    code="invalid_value",
                )

    # -- routes ------------------------------------------------------------------------------
    async def create(self, request: Request) -> Response:
        if fault := await self.faults.apply("create"):
            return fault
        try:
            self._check_auth(request)
            key = request.headers.get("idempotency-key")
            self.idempotency_keys.append(key)
            fields = await self._parse_create(request)
            self._record(request, fields)
            self._validate(fields)
        except OpenAIError as exc:
            return exc.response()
        if self.dedupe_idempotency_keys and key in self._by_key:
            return JSONResponse(self._video(self.jobs[self._by_key[key]]), headers=_rid())
        video_id = f"video_{secrets.token_hex(12)}"
        job = {
            "id": video_id,
            "object": "video",
            "model": fields.get("model", "sora-2"),
            "status": "queued",
            "progress": 0,
            "created_at": int(time.time()),
            "completed_at": None,
            "expires_at": None,
            "prompt": fields["prompt"],
            "size": fields.get("size", "720x1280"),
            "seconds": fields.get("seconds", "4"),
            "remixed_from_video_id": None,
            "error": None,
            "polls": 0,
            "fail": self.fail_next,
            "extra": {k: v for k, v in fields.items() if k not in KNOWN_FIELDS},
        }
        self.fail_next = None
        self.jobs[video_id] = job
        if key:
            self._by_key.setdefault(key, video_id)
        return await self.faults.accepted("create", JSONResponse(self._video(job), headers=_rid()))

    async def list_videos(self, request: Request) -> Response:
        """Recent jobs, newest first by default, paged with ``after`` (a video id) and ``limit``."""
        if refusal := await self._admit(request, "list", dict(request.query_params)):
            return refusal
        params = request.query_params
        jobs = list(self.jobs.values())  # creation order
        if params.get("order", "desc") == "desc":
            jobs.reverse()
        if after := params.get("after"):
            ids = [j["id"] for j in jobs]
            jobs = jobs[ids.index(after) + 1 :] if after in ids else []
        limit = max(0, min(100, int(params.get("limit", "20"))))
        page = [self._video(j) for j in jobs[:limit]]
        body = {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(jobs) > limit,
        }
        return JSONResponse(body, headers=_rid())

    async def retrieve(self, request: Request) -> Response:
        if refusal := await self._admit(request, "poll", None):
            return refusal
        job = self.jobs.get(request.path_params["video_id"])
        if job is None:
            return OpenAIError(404, "Video not found.", code="not_found").response()
        self._advance(job)
        headers = {**_rid(), "openai-poll-after-ms": "10"}
        return JSONResponse(self._video(job), headers=headers)

    def _advance(self, job: dict[str, Any]) -> None:
        if job["status"] in ("completed", "failed"):
            return
        job["polls"] += 1
        n, k = self.polls_to_complete, job["polls"]
        if k >= n:
            now = int(time.time())
            if job["fail"]:
                job.update(status="failed", error=dict(FAILURES[job["fail"]]), completed_at=now)
            else:
                job.update(status="completed", progress=100, completed_at=now, expires_at=now + 3600)
                self.outputs.issue(job["id"])
        elif k == 1:
            job.update(status="queued", progress=0)
        else:
            job.update(status="in_progress", progress=round(100 * (k - 1) / (n - 1)))

    async def content(self, request: Request) -> Response:
        if refusal := await self._admit(request, "download", dict(request.query_params)):
            return refusal
        video_id = request.path_params["video_id"]
        job = self.jobs.get(video_id)
        if job is None:
            return OpenAIError(404, "Video not found.", code="not_found").response()
        if job["status"] != "completed":
            # The exact answer before completion is [unverified]; some 4xx in OpenAI's shape.
            return OpenAIError(
                400, "Video is not ready yet; its status is " + job["status"] + ".", code="video_not_ready"
            ).response()
        if self.expire_all or video_id in self.expired or self.outputs.expired(video_id):
            # [unverified] how the real API reports expired assets; a 404 in its envelope.
            expired = OpenAIError(404, "The content for this video has expired.", code="video_expired")
            return expired.response()
        variant = request.query_params.get("variant", "video")
        if variant == "video":
            return Response(small_mp4(), media_type="video/mp4", headers=_rid())
        if variant == "thumbnail":
            return Response(THUMBNAIL, media_type="image/webp", headers=_rid())
        if variant == "spritesheet":
            return Response(SPRITESHEET, media_type="image/jpeg", headers=_rid())
        return OpenAIError(
            400, f"Invalid value for 'variant': '{variant}'.", param="variant", code="invalid_value"
        ).response()
