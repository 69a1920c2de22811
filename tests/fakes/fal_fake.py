"""A fake fal.ai queue: ``Key`` auth, submit to the full model path, status/result/cancel on
``{owner}/{app}/requests/{id}`` only (the model sub-path is dropped, as on the real queue).

Each status call advances the request one step: ``queue_polls`` times IN_QUEUE (with a falling
0-based ``queue_position``), then IN_PROGRESS (with ``logs`` when ``?logs=1``), then COMPLETED
on the ``polls_to_complete``-th call. Outputs are served from ``/files/...`` on the same server.

Real fal may answer a bad model input at submit or only on the result fetch; the fake checks the
input at submit against the endpoint's enums (422 with a ``detail`` list) and models the late form
with ``fail_mode="result"``. A model that failed with a 5xx (``fail_mode="model-5xx"``) shows
COMPLETED and its result replays that answer, marked ``x-fal-request-id`` like every answer of
fal's own server; a fault injected on ``result`` stands for fal's edge and carries no such header.
The queue offers no request list and no caller-chosen id, so the fake has neither. Output files
expire ``outputs.ttl`` seconds after the request completed.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from fakes.server import FakeState, serve_output, small_mp4
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_NAMESPACES = ("workflows", "comfy")
_VEO = ("4s", "6s", "8s")
_FIVE_TEN = ("5", "10")
_SEEDANCE_ASPECTS = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")


@dataclass(frozen=True)
class Endpoint:
    """One endpoint's input enums (None: the field is not checked) and the image fields it requires."""

    durations: tuple[str, ...]
    aspect_ratios: tuple[str, ...] | None
    resolutions: tuple[str, ...] | None = None
    images: tuple[str, ...] = ()


# fal's schemas of the endpoints the gateway uses, by endpoint id.
ENDPOINTS: tuple[tuple[re.Pattern[str], Endpoint], ...] = (
    (re.compile(r"fal-ai/veo3\.1(/fast)?"), Endpoint(_VEO, ("16:9", "9:16"), ("720p", "1080p", "4k"))),
    (
        re.compile(r"fal-ai/veo3\.1(/fast)?/image-to-video"),
        Endpoint(_VEO, ("auto", "16:9", "9:16"), ("720p", "1080p", "4k"), ("image_url",)),
    ),
    (
        re.compile(r"fal-ai/veo3\.1(/fast)?/first-last-frame-to-video"),
        Endpoint(_VEO, ("auto", "16:9", "9:16"), ("720p", "1080p", "4k"), ("first_frame_url", "last_frame_url")),
    ),
    (re.compile(r"fal-ai/veo3(/fast)?"), Endpoint(_VEO, ("16:9", "9:16"), ("720p", "1080p"))),
    (
        re.compile(r"fal-ai/veo3(/fast)?/image-to-video"),
        Endpoint(_VEO, ("auto", "16:9", "9:16"), ("720p", "1080p"), ("image_url",)),
    ),
    (re.compile(r"fal-ai/kling-video/.+/text-to-video"), Endpoint(_FIVE_TEN, ("16:9", "9:16", "1:1"))),
    (re.compile(r"fal-ai/kling-video/.+/image-to-video"), Endpoint(_FIVE_TEN, None, images=("image_url",))),
    (
        re.compile(r"fal-ai/wan-25-preview/text-to-video"),
        Endpoint(_FIVE_TEN, ("16:9", "9:16", "1:1"), ("480p", "720p", "1080p")),
    ),
    (
        re.compile(r"fal-ai/wan-25-preview/image-to-video"),
        Endpoint(_FIVE_TEN, None, ("480p", "720p", "1080p"), ("image_url",)),
    ),
    (
        re.compile(r"fal-ai/bytedance/seedance/v1/pro/text-to-video"),
        Endpoint(tuple(str(d) for d in range(2, 13)), _SEEDANCE_ASPECTS, ("480p", "720p", "1080p")),
    ),
    (
        re.compile(r"fal-ai/bytedance/seedance/v1/pro/image-to-video"),
        Endpoint(
            tuple(str(d) for d in range(2, 13)), (*_SEEDANCE_ASPECTS, "auto"), ("480p", "720p", "1080p"), ("image_url",)
        ),
    ),
)
_OTHER = Endpoint(_FIVE_TEN, ("16:9", "9:16", "1:1", "auto"))


def endpoint_of(model: str) -> Endpoint:
    return next((e for pattern, e in ENDPOINTS if pattern.fullmatch(model)), _OTHER)


def _permitted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def app_of(model_id: str) -> str:
    segments = model_id.strip("/").split("/")
    return "/".join(segments[: 3 if segments[0] in _NAMESPACES else 2])


def _detail(status: int, detail: Any, error_type: str | None = None) -> JSONResponse:
    headers = {"x-fal-error-type": error_type} if error_type else {}
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _loc_error(field: str, msg: str, kind: str) -> dict[str, Any]:
    return {"loc": ["body", field], "msg": msg, "type": kind}


@dataclass
class FalRequest:
    id: str
    app: str
    model: str
    body: dict[str, Any]
    polls: int = 0
    status: str = "IN_QUEUE"
    cancelled: bool = False
    fail: tuple[str, str, str] | None = None  # (mode, message, error_type)


class FalFake(FakeState):
    """State and routes of one fake fal queue; see the module docstring."""

    record_query = True

    def __init__(
        self,
        api_key: str = "fal_test",
        polls_to_complete: int = 3,
        queue_polls: int = 1,
        honour_cancel: bool = True,
    ) -> None:
        assert 0 <= queue_polls < polls_to_complete
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.queue_polls = queue_polls
        self.honour_cancel = honour_cancel
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/files/{request_id}/output.mp4", self.download, methods=["GET"]),
                Route("/{path:path}", self.submit, methods=["POST"]),
                Route("/{path:path}", self.query, methods=["GET"]),
                Route("/{path:path}", self.cancel, methods=["PUT"]),
            ]
        )

    def reset(self) -> None:
        """Forget every request, recorded call, fault and failure switch (for a shared server)."""
        super().reset()
        self.tasks: dict[str, FalRequest] = {}
        # "status": COMPLETED + error; "result": 422 on the result fetch; "model-5xx": the model's 500
        # replayed on the result fetch
        self.fail_mode = "status"
        self.failure_message = "Runner disconnected"
        self.failure_type = "runner_disconnected"

    def _auth(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Key {self.api_key}":
            return _detail(
                401,
                "Invalid or missing credentials. Use 'Authorization: Key <FAL_KEY>'.",
                "authentication_error",
            )
        return None

    async def submit(self, request: Request) -> Response:
        body = await self._record(request)
        if stop := await self._gate(request, "create"):
            return stop
        model = request.path_params["path"].strip("/")
        if len(model.split("/")) < 2:
            return _detail(404, f"Application '{model}' not found")
        if not isinstance(body, dict):
            return _detail(422, [_loc_error("__root__", "value is not a valid dict", "type_error.dict")])
        if errors := self._validate(model, body):
            return _detail(422, errors, "validation_error")
        task = FalRequest(id=str(uuid.uuid4()), app=app_of(model), model=model, body=body)
        if self.fail_next:
            task.fail, self.fail_next = (self.fail_mode, self.failure_message, self.failure_type), False
        self.tasks[task.id] = task
        base = f"{str(request.base_url).rstrip('/')}/{task.app}/requests/{task.id}"
        answer = {
            "request_id": task.id,
            "gateway_request_id": task.id,
            "status": "IN_QUEUE",
            "queue_position": self.queue_polls,
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }
        return await self.faults.accepted("create", JSONResponse(answer))

    @staticmethod
    def _validate(model: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Pydantic-style checks of the endpoint's input, with its own enums."""
        errors = []
        schema = endpoint_of(model)
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            errors.append(_loc_error("prompt", "field required", "value_error.missing"))
        enums = {"duration": schema.durations, "aspect_ratio": schema.aspect_ratios, "resolution": schema.resolutions}
        for key, allowed in enums.items():
            if allowed is not None and key in body and body[key] not in allowed:
                errors.append(
                    _loc_error(key, f"unexpected value; permitted: {_permitted(allowed)}", "value_error.const")
                )
        if "seed" in body and type(body["seed"]) is not int:
            errors.append(_loc_error("seed", "value is not a valid integer", "type_error.integer"))
        if "generate_audio" in body and not isinstance(body["generate_audio"], bool):
            errors.append(_loc_error("generate_audio", "value could not be parsed to a boolean", "type_error.bool"))
        for key in ("image_url", "tail_image_url", "first_frame_url", "last_frame_url"):
            value = body.get(key)
            if key in body and not (isinstance(value, str) and value.startswith(("http://", "https://", "data:"))):
                errors.append(_loc_error(key, "invalid or missing URL scheme", "value_error.url.scheme"))
        for key in schema.images:
            if key not in body:
                errors.append(_loc_error(key, "field required", "value_error.missing"))
        return errors

    def _find(self, path: str, suffix: str) -> FalRequest | None:
        """The request addressed by ``{owner}/{app}/requests/{id}{suffix}``, app matching exactly."""
        app, sep, rest = path.strip("/").partition("/requests/")
        if not sep:
            return None
        request_id = rest.removesuffix(suffix) if suffix else rest
        if (suffix and not rest.endswith(suffix)) or "/" in request_id:
            return None
        task = self.tasks.get(request_id)
        return task if task is not None and task.app == app else None

    def _advance(self, task: FalRequest) -> None:
        if task.status == "COMPLETED":
            return
        task.polls += 1
        if task.cancelled or task.polls >= self.polls_to_complete:
            task.status = "COMPLETED"
            self.outputs.issue(task.id)
        elif task.polls > self.queue_polls:
            task.status = "IN_PROGRESS"

    async def query(self, request: Request) -> Response:
        await self._record(request)
        path = request.path_params["path"]
        is_status = path.rstrip("/").endswith("/status")
        if stop := await self._gate(request, "poll" if is_status else "result"):
            return stop
        task = self._find(path, "/status" if is_status else "")
        if task is None:
            answer: Response = _detail(404, "Request not found")
        elif is_status:
            answer = self._status(request, task)
        else:
            answer = self._result(request, task)
        answer.headers["x-fal-request-id"] = task.id if task is not None else str(uuid.uuid4())
        return answer

    def _result(self, request: Request, task: FalRequest) -> Response:
        """What the model answered, replayed: its video, or its own error with its status code."""
        if task.status != "COMPLETED":
            return _detail(400, "Request is still in progress")
        if task.cancelled:
            return _detail(400, "Request was cancelled", "request_cancelled")
        if task.fail and task.fail[0] == "result":
            return _detail(422, [{"loc": ["body"], "msg": task.fail[1], "type": task.fail[2]}], task.fail[2])
        if task.fail and task.fail[0] == "model-5xx":
            detail = [{"loc": ["body"], "msg": task.fail[1], "type": task.fail[2]}]
            return JSONResponse({"detail": detail}, status_code=500, headers={"x-fal-retryable": "false"})
        if task.fail:
            return _detail(500, task.fail[1], task.fail[2])
        data = small_mp4()
        return JSONResponse(
            {
                "video": {
                    "url": f"{str(request.base_url).rstrip('/')}/files/{task.id}/output.mp4",
                    "content_type": "video/mp4",
                    "file_name": "output.mp4",
                    "file_size": len(data),
                },
                "seed": task.body.get("seed", 42),
            }
        )

    def _status(self, request: Request, task: FalRequest) -> Response:
        self._advance(task)
        response_url = f"{str(request.base_url).rstrip('/')}/{task.app}/requests/{task.id}"
        logs = request.query_params.get("logs") == "1"
        if task.status == "IN_QUEUE":
            return JSONResponse(
                {
                    "status": "IN_QUEUE",
                    "queue_position": self.queue_polls - task.polls,
                    "response_url": response_url,
                },
                status_code=202,
            )
        if task.status == "IN_PROGRESS":
            step = f"step {task.polls}/{self.polls_to_complete}"
            entry = {"message": step, "level": "INFO", "timestamp": "2026-08-01T10:00:05Z"}
            return JSONResponse(
                {"status": "IN_PROGRESS", "logs": [entry] if logs else None, "response_url": response_url},
                status_code=202,
            )
        out: dict[str, Any] = {
            "status": "COMPLETED",
            "logs": [] if logs else None,
            "metrics": {},
            "response_url": response_url,
        }
        # What status says after a cancel is not documented [unverified]; the fake reports a
        # COMPLETED request carrying a cancellation error, which the adapter maps to cancelled.
        if task.cancelled:
            out.update(error="Request was cancelled", error_type="request_cancelled")
        elif task.fail and task.fail[0] == "status":
            out.update(error=task.fail[1], error_type=task.fail[2])
        else:
            out["metrics"] = {"inference_time": 61.2}
        return JSONResponse(out)

    async def cancel(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "cancel"):
            return stop
        task = self._find(request.path_params["path"], "/cancel")
        if task is None:
            return JSONResponse({"status": "NOT_FOUND"}, status_code=404)
        if task.status == "COMPLETED":
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        if task.status == "IN_QUEUE" or self.honour_cancel:
            task.cancelled = True
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    async def download(self, request: Request) -> Response:
        await self._record(request)
        request_id = request.path_params["request_id"]
        signed = not self.expire_outputs and request_id in self.tasks and not self.outputs.expired(request_id)
        refusal = JSONResponse({"detail": "File has expired or does not exist"}, status_code=403)
        return await serve_output(self.faults, signed, refusal)
