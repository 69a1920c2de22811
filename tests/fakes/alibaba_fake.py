"""A fake DashScope (Alibaba Model Studio) Wan video API: Bearer key, ``X-DashScope-Async: enable``
required on create, top-level ``code``/``message``/``request_id`` errors, task state machine.

Each ``GET /tasks/{id}`` advances the task one step: ``PENDING`` for ``queue_polls`` calls, then
``RUNNING``, then ``SUCCEEDED`` or ``FAILED`` on the ``polls_to_complete``-th call. An unknown id
answers ``UNKNOWN`` like DashScope does for expired tasks. ``POST /tasks/{id}/cancel`` cancels a
PENDING task and refuses any other. Outputs are served from ``/cdn/...`` on the same server, like
DashScope's pre-signed OSS links.

Fault ops: ``create``, ``poll``, ``cancel``, ``download``. ``inband(op, code, msg)`` queues an
HTTP 200 answer carrying ``code``/``message`` and no ``output`` (DashScope does that at times) for
``create`` or ``poll``. Routes live under ``/api/v1``. Output links expire ``outputs.ttl`` seconds
after the task succeeded.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from fakes.server import BearerFake, serve_output
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_480 = ["832*480", "480*832", "624*624"]
_720 = ["1280*720", "720*1280", "960*960", "1088*832", "832*1088"]
_1080 = ["1920*1080", "1080*1920", "1440*1440", "1632*1248", "1248*1632"]
# model -> (kind, durations, tiers, audio)
MODELS: dict[str, tuple[str, list[int], list[str], bool]] = {
    "wan2.5-t2v-preview": ("t2v", [5, 10], ["480P", "720P", "1080P"], True),
    "wan2.5-i2v-preview": ("i2v", [5, 10], ["480P", "720P", "1080P"], True),
    "wan2.6-t2v": ("t2v", [5, 10, 15], ["720P", "1080P"], True),
    "wan2.6-i2v": ("i2v", [5, 10, 15], ["720P", "1080P"], True),
    "wan2.2-t2v-plus": ("t2v", [5], ["480P", "1080P"], False),
    "wan2.2-i2v-plus": ("i2v", [5], ["480P", "1080P"], False),
    "wan2.2-kf2v-flash": ("kf2v", [5], ["480P", "720P", "1080P"], False),
}
TIER_SIZES = {"480P": _480, "720P": _720, "1080P": _1080}
_INPUT = {"prompt", "negative_prompt", "img_url", "first_frame_url", "last_frame_url", "audio_url", "template"}
_PARAMS = {"size", "resolution", "duration", "prompt_extend", "seed", "watermark", "audio", "shot_type"}
_EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired.</Message></Error>"
)


def _expired() -> Response:
    return Response(_EXPIRED_XML, status_code=403, media_type="application/xml")


def ds_error(status: int, code: str, message: str) -> JSONResponse:
    rid = str(uuid.uuid4())
    return JSONResponse({"request_id": rid, "code": code, "message": message}, status_code=status)


def invalid(message: str) -> JSONResponse:
    return ds_error(400, "InvalidParameter", message)


def _stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S.000")


@dataclass
class Task:
    id: str
    body: dict[str, Any]
    polls: int = 0
    status: str = "PENDING"
    fail: tuple[str, str] | None = None
    submit_time: str = field(default_factory=_stamp)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


class AlibabaFake(BearerFake):
    """State and routes of one fake DashScope; see the module docstring."""

    def __init__(self, api_key: str = "sk-ds-test", polls_to_complete: int = 3, queue_polls: int = 1) -> None:
        assert 0 <= queue_polls < polls_to_complete
        self.api_key = api_key
        self._defaults = (polls_to_complete, queue_polls)
        self.inband_faults: dict[str, deque[tuple[str, str]]] = defaultdict(deque)
        self.tasks: dict[str, Task] = {}
        self.failure = ("DataInspectionFailed", "Output data may contain inappropriate content.")
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/api/v1/services/aigc/video-generation/video-synthesis", self.create, methods=["POST"]),
                Route("/api/v1/tasks/{task_id}", self.get_task, methods=["GET"]),
                Route("/api/v1/tasks/{task_id}/cancel", self.cancel, methods=["POST"]),
                Route("/cdn/{task_id}/video.mp4", self.download, methods=["GET"]),
            ]
        )

    def inband(self, op: str, code: str, message: str, times: int = 1) -> None:
        """Queue an HTTP 200 answer with ``code``/``message`` and no ``output`` for ``op``."""
        self.inband_faults[op].extend([(code, message)] * times)

    def _inband(self, op: str) -> Response | None:
        if not self.inband_faults.get(op):
            return None
        code, message = self.inband_faults[op].popleft()
        return JSONResponse({"request_id": str(uuid.uuid4()), "code": code, "message": message})

    def reset(self) -> None:
        """Forget recorded requests, faults and injected behaviour (not tasks) between tests."""
        super().reset()
        self.inband_faults.clear()
        self.polls_to_complete, self.queue_polls = self._defaults

    def unauthorized(self) -> Response:
        return ds_error(401, "InvalidApiKey", "Invalid API-key provided.")

    async def create(self, request: Request) -> Response:
        body = await self._record(request)
        if stop := await self._gate(request, "create"):
            return stop
        if request.headers.get("x-dashscope-async") != "enable":
            return ds_error(403, "AccessDenied", "current user api does not support synchronous calls")
        if answer := self._inband("create"):
            return answer
        if problem := self._validate(body):
            return invalid(problem)
        task = Task(id=str(uuid.uuid4()), body=body)
        if self.fail_next:
            task.fail, self.fail_next = self.failure, False
        self.tasks[task.id] = task
        answer = {"output": {"task_id": task.id, "task_status": "PENDING"}, "request_id": str(uuid.uuid4())}
        return await self.faults.accepted("create", JSONResponse(answer))

    @staticmethod
    def _validate(body: Any) -> str | None:
        """DashScope's checks, each answered as a 400 ``InvalidParameter``."""
        if not isinstance(body, dict):
            return "The request body is not a JSON object."
        model = body.get("model")
        if model not in MODELS:
            return f"Model not exist: {model}"
        kind, durations, tiers, audio = MODELS[model]
        inputs, params = body.get("input"), body.get("parameters", {})
        if not isinstance(inputs, dict) or not isinstance(params, dict):
            return "input must be an object and parameters an object"
        unknown = sorted(set(inputs) - _INPUT) + sorted(set(params) - _PARAMS)
        if unknown:
            return f"Unrecognized field(s): {', '.join(unknown)}"
        prompt = inputs.get("prompt")
        if kind == "t2v" and (not isinstance(prompt, str) or not prompt):
            return "input.prompt is required"
        images = {"t2v": set(), "i2v": {"img_url"}, "kf2v": {"first_frame_url", "last_frame_url"}}[kind]
        for key in ("img_url", "first_frame_url", "last_frame_url"):
            if key in inputs and key not in images:
                return f"input.{key} is not supported by {model}"
            value = inputs.get(key)
            if key in inputs and not (isinstance(value, str) and value.startswith(("http", "data:image/"))):
                return f"input.{key} must be a URL or a base64 data URL"
        if kind == "i2v" and "img_url" not in inputs:
            return f"input.img_url is required for {model}"
        if kind == "kf2v" and "first_frame_url" not in inputs:
            return f"input.first_frame_url is required for {model}"
        if kind == "t2v":
            if "resolution" in params:
                return f"parameters.resolution is not supported by {model}; use size"
            allowed = [s for t in tiers for s in TIER_SIZES[t]]
            if params.get("size", allowed[0]) not in allowed:
                return f"parameters.size must be one of {', '.join(allowed)} for {model}"
        else:
            if "size" in params:
                return f"parameters.size is not supported by {model}; use resolution"
            if params.get("resolution", tiers[-1]) not in tiers:
                return f"parameters.resolution must be one of {', '.join(tiers)}"
        duration = params.get("duration", durations[0])
        if type(duration) is not int or duration not in durations:
            return f"parameters.duration must be one of {durations} for {model}"
        seed = params.get("seed", 0)
        if type(seed) is not int or not 0 <= seed <= 2147483647:
            return "parameters.seed must be an integer in [0, 2147483647]"
        for key in ("prompt_extend", "watermark", "audio"):
            if key in params and not isinstance(params[key], bool):
                return f"parameters.{key} must be a boolean"
        if ("audio" in params or "audio_url" in inputs) and not audio:
            return f"audio is not supported by {model}"
        track = inputs.get("audio_url")
        if track is not None and (not isinstance(track, str) or not track.startswith(("http://", "https://"))):
            return "input.audio_url must be a public http(s) URL of a wav or mp3 file"
        negative = inputs.get("negative_prompt")
        if negative is not None and (not isinstance(negative, str) or len(negative) > 500):
            return "input.negative_prompt must be a string of at most 500 characters"
        return None

    def _advance(self, task: Task) -> None:
        if task.status not in ("PENDING", "RUNNING"):
            return
        task.polls += 1
        if task.polls >= self.polls_to_complete:
            task.status = "FAILED" if task.fail else "SUCCEEDED"
            self.outputs.issue(task.id)
        elif task.polls > self.queue_polls:
            task.status = "RUNNING"

    async def get_task(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "poll"):
            return stop
        if answer := self._inband("poll"):
            return answer
        rid = str(uuid.uuid4())
        task = self.tasks.get(request.path_params["task_id"])
        if task is None:
            return JSONResponse(
                {"request_id": rid, "output": {"task_id": request.path_params["task_id"], "task_status": "UNKNOWN"}}
            )
        self._advance(task)
        output: dict[str, Any] = {"task_id": task.id, "task_status": task.status, "submit_time": task.submit_time}
        out: dict[str, Any] = {"request_id": rid, "output": output}
        if task.status != "PENDING":
            output["scheduled_time"] = task.submit_time
        if task.status == "SUCCEEDED":
            base = str(request.base_url).rstrip("/")
            output.update(
                end_time=_stamp(),
                video_url=f"{base}/cdn/{task.id}/video.mp4?Expires=1767003600&Signature={task.token}",
                orig_prompt=task.body["input"].get("prompt", ""),
                actual_prompt=task.body["input"].get("prompt", ""),
            )
            params = task.body.get("parameters", {})
            out["usage"] = {
                "video_duration": 1,  # what the fake really renders
                "video_ratio": params.get("size", params.get("resolution", "1280*720")),
                "video_count": 1,
            }
        elif task.status == "FAILED" and task.fail:
            output.update(code=task.fail[0], message=task.fail[1], end_time=_stamp())
        return JSONResponse(out)

    async def cancel(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "cancel"):
            return stop
        task = self.tasks.get(request.path_params["task_id"])
        if task is None:
            return ds_error(404, "NotFound", "Task not found.")
        if task.status != "PENDING":
            return ds_error(
                400,
                "UnsupportedOperation",
                "Failed to cancel the task, please confirm if the task is in PENDING status.",
            )
        task.status = "CANCELED"
        return JSONResponse({"request_id": str(uuid.uuid4())})

    async def download(self, request: Request) -> Response:
        await self._record(request)
        task = self.tasks.get(request.path_params["task_id"])
        signed = (
            not self.expire_outputs
            and task is not None
            and request.query_params.get("Signature") == task.token
            and not self.outputs.expired(task.id)
        )
        return await serve_output(self.faults, signed, _expired())
