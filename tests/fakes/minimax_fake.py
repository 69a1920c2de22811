"""A fake MiniMax Hailuo v1 video API: Bearer key, ``base_resp`` envelopes inside HTTP 200, task
state machine, file retrieval.

MiniMax reports errors (bad key, rate limit, invalid parameters) as HTTP 200 with a non-zero
``base_resp.status_code``; the fake does the same. Each ``GET /v1/query/video_generation`` advances
the task one step (``Preparing``, ``Queueing`` for ``queue_polls`` calls, ``Processing``, then
``Success`` or ``Fail`` on the ``polls_to_complete``-th call). A succeeded task names a ``file_id``
that ``GET /v1/files/retrieve`` turns into a ``download_url`` under ``/cdn/...`` on the same server.

Fault ops: ``create``, ``poll``, ``retrieve``, ``download``. ``inband(op, code, msg)`` queues an
HTTP 200 ``base_resp`` error for ``create``/``poll``/``retrieve`` (e.g. 1002 rate limit). The v1 API
lists no tasks and takes no caller-chosen id, so the fake has neither. Download URLs expire
``outputs.ttl`` seconds after the task succeeded.
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from fakes.server import Faults, OutputClock, Recorder, serve_output, small_mp4
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# model -> {resolution: durations}; image needs: "t2v" (text alone ok), "i2v" (first frame needed)
MODELS: dict[str, tuple[dict[str, list[int]], str, bool]] = {
    "MiniMax-Hailuo-02": ({"512P": [6, 10], "768P": [6, 10], "1080P": [6]}, "t2v", True),
    "MiniMax-Hailuo-2.3": ({"768P": [6, 10], "1080P": [6]}, "t2v", False),
    "MiniMax-Hailuo-2.3-Fast": ({"768P": [6, 10], "1080P": [6]}, "i2v", False),
    "T2V-01": ({"720P": [6]}, "t2v", False),
    "I2V-01": ({"720P": [6]}, "i2v", False),
}
_FIELDS = {
    "model",
    "prompt",
    "prompt_optimizer",
    "fast_pretreatment",
    "duration",
    "resolution",
    "first_frame_image",
    "last_frame_image",
    "subject_reference",
    "callback_url",
    "aigc_watermark",
}
_EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)


def _expired() -> Response:
    return Response(_EXPIRED_XML, status_code=403, media_type="application/xml")


def base_resp(code: int = 0, msg: str = "success", **fields: Any) -> JSONResponse:
    """MiniMax's envelope: always HTTP 200, the outcome in ``base_resp``."""
    return JSONResponse({**fields, "base_resp": {"status_code": code, "status_msg": msg}})


def invalid(msg: str) -> JSONResponse:
    return base_resp(2013, f"invalid params, {msg}")


@dataclass
class Task:
    id: str
    body: dict[str, Any]
    polls: int = 0
    status: str = "Preparing"
    file_id: str = ""
    fail: tuple[int, str] | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


class MiniMaxFake(Recorder):
    """State and routes of one fake MiniMax; see the module docstring."""

    record_query = True

    def __init__(self, api_key: str = "mm-test", polls_to_complete: int = 3, queue_polls: int = 1) -> None:
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.queue_polls = queue_polls
        self._defaults = (polls_to_complete, queue_polls)
        self.faults = Faults()
        self.inband_faults: dict[str, deque[tuple[int, str]]] = defaultdict(deque)
        self.tasks: dict[str, Task] = {}
        self.files: dict[str, Task] = {}
        self.requests: list[dict[str, Any]] = []
        self.fail_next = False
        self.failure = (1027, "output video contains sensitive content")
        self.expire_outputs = False
        self.outputs = OutputClock()
        self._ids = itertools.count(106916112212032)
        self.app = Starlette(
            routes=[
                Route("/v1/video_generation", self.create, methods=["POST"]),
                Route("/v1/query/video_generation", self.query, methods=["GET"]),
                Route("/v1/files/retrieve", self.retrieve, methods=["GET"]),
                Route("/cdn/{file_id}/output_aigc.mp4", self.download, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Forget recorded requests, faults and injected behaviour (not tasks) between tests."""
        self.faults = Faults()
        self.requests = []
        self.inband_faults.clear()
        self.fail_next = False
        self.expire_outputs = False
        self.outputs = OutputClock()
        self.polls_to_complete, self.queue_polls = self._defaults

    def inband(self, op: str, code: int, msg: str, times: int = 1) -> None:
        """Queue an HTTP 200 ``base_resp`` error for ``op``."""
        self.inband_faults[op].extend([(code, msg)] * times)

    async def _gate(self, request: Request, op: str) -> Response | None:
        """Faults first (as a proxy in front would answer), then MiniMax's own checks."""
        if fault := await self.faults.apply(op):
            return fault
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return base_resp(
                1004, "login fail: Please carry the API secret key in the 'Authorization' field of the request header"
            )
        if self.inband_faults.get(op):
            code, msg = self.inband_faults[op].popleft()
            return base_resp(code, msg)
        return None

    async def create(self, request: Request) -> Response:
        body = await self._record(request)
        if denied := await self._gate(request, "create"):
            return denied
        if problem := self._validate(body):
            return invalid(problem)
        task = Task(id=str(next(self._ids)), body=body)
        if self.fail_next:
            task.fail, self.fail_next = self.failure, False
        self.tasks[task.id] = task
        return await self.faults.accepted("create", base_resp(task_id=task.id))

    @staticmethod
    def _validate(body: Any) -> str | None:
        if not isinstance(body, dict):
            return "request body must be a JSON object"
        model = body.get("model")
        if model not in MODELS:
            return f"model {model!r} is not supported"
        durations, kind, last_ok = MODELS[model]
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            return f"unknown field(s): {', '.join(unknown)}"
        prompt = body.get("prompt")
        if prompt is not None and (not isinstance(prompt, str) or len(prompt) > 2000):
            return "prompt must be a string of at most 2000 characters"
        first = body.get("first_frame_image")
        if kind == "i2v" and first is None:
            return f"first_frame_image is required for {model}"
        if kind == "t2v" and not first and not prompt:
            return "prompt is required"
        for key in ("first_frame_image", "last_frame_image"):
            value = body.get(key)
            if key in body and not (
                isinstance(value, str) and value.startswith(("http://", "https://", "data:image/"))
            ):
                return f"{key} must be a URL or a data:image/ base64 URL"
        if "last_frame_image" in body and not last_ok:
            return f"last_frame_image is not supported by {model}"
        resolution = body.get("resolution", "768P" if "768P" in durations else next(iter(durations)))
        if resolution not in durations:
            return f"resolution {resolution!r} is not supported by {model}; use {', '.join(durations)}"
        if resolution == "512P" and first is None:
            return "512P is only available for image-to-video"
        if resolution == "512P" and "last_frame_image" in body:
            return "last_frame_image is only available at 768P and 1080P"
        duration = body.get("duration", 6)
        if type(duration) is not int or duration not in durations[resolution]:
            return f"duration {duration!r} is not supported by {model} at {resolution}"
        if "prompt_optimizer" in body and not isinstance(body["prompt_optimizer"], bool):
            return "prompt_optimizer must be a boolean"
        return None

    def _advance(self, task: Task) -> None:
        if task.status in ("Success", "Fail"):
            return
        task.polls += 1
        if task.polls >= self.polls_to_complete:
            if task.fail:
                task.status = "Fail"
            else:
                task.status, task.file_id = "Success", str(next(self._ids) + 98342414093000)
                self.files[task.file_id] = task
                self.outputs.issue(task.file_id)
        elif task.polls == 1:
            task.status = "Preparing"
        elif task.polls <= 1 + self.queue_polls:
            task.status = "Queueing"
        else:
            task.status = "Processing"

    async def query(self, request: Request) -> Response:
        await self._record(request)
        if denied := await self._gate(request, "poll"):
            return denied
        task = self.tasks.get(request.query_params.get("task_id", ""))
        if task is None:
            return invalid("task_id not found")
        self._advance(task)
        out: dict[str, Any] = {"task_id": task.id, "status": task.status, "file_id": task.file_id}
        if task.status == "Success":
            out.update(video_width=64, video_height=64)
        if task.status == "Fail" and task.fail:
            return base_resp(*task.fail, **out)
        return base_resp(**out)

    async def retrieve(self, request: Request) -> Response:
        await self._record(request)
        if denied := await self._gate(request, "retrieve"):
            return denied
        task = self.files.get(request.query_params.get("file_id", ""))
        if task is None:
            return invalid("file_id not found")
        base = str(request.base_url).rstrip("/")
        return base_resp(
            file={
                "file_id": int(task.file_id),
                "bytes": len(small_mp4()),
                "created_at": 1767000000,
                "filename": "output_aigc.mp4",
                "purpose": "video_generation",
                "download_url": f"{base}/cdn/{task.file_id}/output_aigc.mp4?Expires=1767003600&Signature={task.token}",
            }
        )

    async def download(self, request: Request) -> Response:
        await self._record(request)
        task = self.files.get(request.path_params["file_id"])
        signed = (
            not self.expire_outputs
            and task is not None
            and request.query_params.get("Signature") == task.token
            and not self.outputs.expired(task.file_id)
        )
        return await serve_output(self.faults, signed, _expired())
