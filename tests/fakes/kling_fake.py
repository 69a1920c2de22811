"""A fake Kling API (providers.md §7): HS256 JWT auth, text2video / image2video tasks.

Usage::

    fake = KlingFake(access_key="ak-test", secret_key="sk-test")
    server = FakeUpstream(fake.app).start()
    base_url = server.base_url

Every call must carry ``Authorization: Bearer <jwt>`` signed HS256 with the secret key, whose
``iss`` is the access key, ``nbf`` is not in the future and ``exp`` not in the past (401 with
codes 1000-1004 otherwise). Each ``GET /v1/videos/{endpoint}/{task_id}`` advances the task one
step (``submitted``, then ``processing``) and the ``polls_to_complete``-th call answers
``succeed`` with ``task_result.videos[].url`` on ``/kcdn/...`` of the same server (or ``failed``
with a ``task_status_msg`` when ``fail_next`` was set). Errors use Kling's
``{"code", "message", "request_id"}`` body.

A create reusing an ``external_task_id`` is refused (400, code 1201; Kling's wording for it is
[unverified]) and makes no task. The single-task query takes a task id or an external task id in
the path, as Kling documents; ``GET /v1/videos/{endpoint}?pageNum=&pageSize=`` lists tasks newest
first [parameter names unverified]. Output links expire ``outputs.ttl`` seconds after the task
succeeded.

``POST /v1/videos/video-extend`` takes ``video_id`` (the id of a video in a succeeded task's
``task_result``, not a task id), ``prompt``, ``negative_prompt``, ``cfg_scale`` and ``callback_url``
and nothing else; an unknown video, one still being made, one of a model Kling cannot extend
(``EXTENDABLE``), or one whose total would pass 3 minutes (counting each task's requested length,
plus 4.5 s per extend) is a 400 (code 1201). Every task serves the same one-second file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from fakes.server import FakeState, serve_output
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

MODELS = (
    "kling-v1",
    "kling-v1-6",
    "kling-v2-master",
    "kling-v2-1",
    "kling-v2-1-master",
    "kling-v2-5-turbo",
    "kling-v2-6",
    "kling-v3-0",
)
I2V_ONLY = ("kling-v2-1",)
SOUND_MODELS = ("kling-v2-6", "kling-v3-0")
# Kling's capability map: models with no std mode, and models whose last frame needs pro mode.
PRO_ONLY = ("kling-v2-master", "kling-v2-1-master", "kling-v2-5-turbo")
TAIL_PRO_ONLY = ("kling-v1-5", "kling-v1-6", "kling-v2-1", "kling-v2-5-turbo", "kling-v2-6")
NO_TAIL = ("kling-v2-master", "kling-v2-1-master")
# Models whose videos the fake extends: hosts of Kling's API advise Kling 1.x (1.5 excepted).
EXTENDABLE = ("kling-v1", "kling-v1-6")
EXTEND_FIELDS = {"video_id", "prompt", "negative_prompt", "cfg_scale", "callback_url"}
EXTEND_SECONDS = 4.5
MAX_TOTAL_SECONDS = 180.0
FAILURE_MESSAGE = "Failure to pass the risk control system"
_EXPIRED_XML = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code></Error>'


def _expired() -> Response:
    return Response(_EXPIRED_XML, status_code=403, media_type="application/xml")


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def kling_error(http: int, code: int, message: str) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "request_id": str(uuid.uuid4())}, status_code=http)


@dataclass
class Task:
    id: str
    endpoint: str
    body: dict[str, Any]
    polls: int = 0
    status: str = "submitted"
    fail: bool = False
    created_at: int = field(default_factory=lambda: int(time.time() * 1000))
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    video_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    model: str = "kling-v1"
    seconds: float = 5.0


class KlingFake(FakeState):
    """State and routes of one fake Kling API; see the module docstring."""

    def __init__(self, access_key: str = "ak-test", secret_key: str = "sk-test", polls_to_complete: int = 3) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.polls_to_complete = polls_to_complete
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/v1/videos/{endpoint}", self.create, methods=["POST"]),
                Route("/v1/videos/{endpoint}", self.list_tasks, methods=["GET"]),
                Route("/v1/videos/{endpoint}/{task_id}", self.get, methods=["GET"]),
                Route("/kcdn/{task_id}/v.mp4", self.download, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        super().reset()
        self.tasks: dict[str, Task] = {}
        self.failure_message = FAILURE_MESSAGE
        self.jwt_payloads: list[dict[str, Any]] = []

    def _auth(self, request: Request) -> Response | None:
        """Verify the HS256 JWT like Kling: signature, issuer, not-before and expiry."""
        header = request.headers.get("authorization", "")
        if not header:
            return kling_error(401, 1001, "Authorization is empty")
        scheme, _, token = header.partition(" ")
        parts = token.split(".")
        if scheme != "Bearer" or len(parts) != 3:
            return kling_error(401, 1002, "Authorization is invalid")
        try:
            head = json.loads(_b64url_decode(parts[0]))
            payload = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            return kling_error(401, 1002, "Authorization is invalid")
        expected = hmac.new(self.secret_key.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if head.get("alg") != "HS256" or not hmac.compare_digest(signature, expected):
            return kling_error(401, 1000, "Authentication failed")
        if payload.get("iss") != self.access_key:
            return kling_error(401, 1000, "Authentication failed")
        now = time.time()
        if not isinstance(payload.get("nbf"), int) or payload["nbf"] > now:
            return kling_error(401, 1003, "Authorization is not yet valid")
        if not isinstance(payload.get("exp"), int) or payload["exp"] <= now:
            return kling_error(401, 1004, "Authorization has expired")
        self.jwt_payloads.append(payload)
        return None

    @staticmethod
    def _validate(endpoint: str, body: Any) -> str | None:
        """Kling's parameter checks (answered 400 with code 1201)."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object"
        model = body.get("model_name", "kling-v1")
        if model not in MODELS:
            return f"model_name is invalid: {model}"
        if endpoint == "text2video" and model in I2V_ONLY:
            return f"{model} does not support text2video"
        prompt = body.get("prompt")
        if not isinstance(prompt, str) or (endpoint == "text2video" and not prompt.strip()):
            return "prompt is required"
        if len(prompt) > 2500:
            return "prompt must not exceed 2500 characters"
        duration = body.get("duration", "5")
        if not isinstance(duration, str) or duration not in ("5", "10"):
            return f'duration is invalid: {duration!r} (expected "5" or "10")'
        if body.get("mode", "std") not in ("std", "pro"):
            return f"mode is invalid: {body.get('mode')!r}"
        if "aspect_ratio" in body and body["aspect_ratio"] not in ("16:9", "9:16", "1:1"):
            return f"aspect_ratio is invalid: {body['aspect_ratio']!r}"
        if "negative_prompt" in body and not isinstance(body["negative_prompt"], str):
            return "negative_prompt must be a string"
        if "cfg_scale" in body:
            cfg = body["cfg_scale"]
            if isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0 <= cfg <= 1:
                return "cfg_scale must be between 0 and 1"
        if "sound" in body:
            if model not in SOUND_MODELS:
                return f"{model} does not support sound"
            if body["sound"] not in ("on", "off"):
                return f"sound is invalid: {body['sound']!r}"
            if body["sound"] == "on" and body.get("mode", "std") != "pro":
                return "sound requires mode pro"
        # Which answer Kling gives a combination its capability map lacks is [unverified]: a 1201.
        mode = body.get("mode", "std")
        if model in PRO_ONLY and mode != "pro":
            return f"{model} does not support mode {mode}"
        if "image_tail" in body:
            if model in NO_TAIL:
                return f"{model} does not support image_tail"
            if model in TAIL_PRO_ONLY and mode != "pro":
                return f"image_tail is not supported in mode {mode} for {model}"
            if body.get("sound") == "on":
                return "sound is not supported with image_tail"
        if "external_task_id" in body and not isinstance(body["external_task_id"], str):
            return "external_task_id must be a string"
        if endpoint == "image2video":
            for name in ("image", "image_tail"):
                if name not in body:
                    if name == "image":
                        return "image is required"
                    continue
                value = body[name]
                if not isinstance(value, str) or not value:
                    return f"{name} is invalid"
                if value.startswith("data:"):
                    return f"{name}: base64 must not carry a data: prefix"
                if not value.startswith("http"):
                    try:
                        base64.b64decode(value, validate=True)
                    except (binascii.Error, ValueError):
                        return f"{name} is not valid base64"
        elif "image" in body or "image_tail" in body:
            return "text2video takes no image"
        return None

    async def create(self, request: Request) -> Response:
        body = await self._record(request)
        if stop := await self._gate(request, "create"):
            return stop
        endpoint = request.path_params["endpoint"]
        if endpoint == "video-extend":
            source, problem = self._extendable(body)
            if source is None:
                return kling_error(400, 1201, problem)
            model, seconds = source.model, source.seconds + EXTEND_SECONDS
        elif endpoint in ("text2video", "image2video"):
            if problem := self._validate(endpoint, body):
                return kling_error(400, 1201, problem)
            model, seconds = body.get("model_name", "kling-v1"), float(body.get("duration", "5"))
        else:
            return kling_error(404, 1202, "Invalid request method")
        external = body.get("external_task_id")
        if external and any(t.body.get("external_task_id") == external for t in self.tasks.values()):
            return kling_error(400, 1201, f"external_task_id {external} already exists")
        task = Task(
            id=str(secrets.randbelow(10**18) + 10**17),
            endpoint=endpoint,
            body=body,
            fail=self.fail_next,
            model=model,
            seconds=seconds,
        )
        self.fail_next = False
        self.tasks[task.id] = task
        answer = {"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": self._view(request, task)}
        return await self.faults.accepted("create", JSONResponse(answer))

    def _extendable(self, body: Any) -> tuple[Task | None, str]:
        """The succeeded task whose video an extend names, or None and why it cannot be extended."""
        if not isinstance(body, dict):
            return None, "Request body must be a JSON object"
        if unknown := sorted(set(body) - EXTEND_FIELDS):
            return None, f"{unknown[0]} is not a parameter of video-extend"
        video_id = body.get("video_id")
        if not isinstance(video_id, str) or not video_id:
            return None, "video_id is required"
        prompt = body.get("prompt", "")
        if not isinstance(prompt, str) or len(prompt) > 2500:
            return None, "prompt must be a string of at most 2500 characters"
        cfg = body.get("cfg_scale", 0.5)
        if isinstance(cfg, bool) or not isinstance(cfg, int | float) or not 0 <= cfg <= 1:
            return None, "cfg_scale must be between 0 and 1"
        source = next((t for t in self.tasks.values() if t.video_id == video_id), None)
        if source is None or source.status != "succeed":
            return None, f"video_id {video_id} is not a finished video of this account"
        if source.model not in EXTENDABLE:
            return None, f"videos made by {source.model} cannot be extended"
        if source.seconds + EXTEND_SECONDS > MAX_TOTAL_SECONDS:
            return None, "an extended video cannot pass 3 minutes"
        return source, ""

    def _task(self, endpoint: str, task_id: str) -> Task | None:
        """A task of ``endpoint`` by its id or by the external id it was created with."""
        task = self.tasks.get(task_id) or next(
            (t for t in self.tasks.values() if t.body.get("external_task_id") == task_id), None
        )
        return task if task is not None and task.endpoint == endpoint else None

    async def list_tasks(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "list"):
            return stop
        endpoint = request.path_params["endpoint"]
        page, size = int(request.query_params.get("pageNum", "1")), int(request.query_params.get("pageSize", "30"))
        tasks = sorted((t for t in self.tasks.values() if t.endpoint == endpoint), key=lambda t: -t.created_at)
        chosen = tasks[(page - 1) * size : page * size]
        data = [self._view(request, t) for t in chosen]
        return JSONResponse({"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data})

    def _view(self, request: Request, task: Task) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task_id": task.id,
            "task_status": task.status,
            "task_status_msg": "",
            "task_info": {"external_task_id": task.body.get("external_task_id", "")},
            "created_at": task.created_at,
            "updated_at": int(time.time() * 1000),
        }
        if task.status == "succeed":
            base = str(request.base_url).rstrip("/")
            url = f"{base}/kcdn/{task.id}/v.mp4?sig={task.token}"
            video = {"id": task.video_id, "url": url, "duration": "1.0"}  # what the served file lasts
            out["task_result"] = {"videos": [video]}
        elif task.status == "failed":
            out["task_status_msg"] = self.failure_message
        return out

    async def get(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "poll"):
            return stop
        task = self._task(request.path_params["endpoint"], request.path_params["task_id"])
        if task is None:
            return kling_error(404, 1203, "Task not found")
        if task.status in ("submitted", "processing"):
            task.polls += 1
            if task.polls >= self.polls_to_complete:
                task.status = "failed" if task.fail else "succeed"
                self.outputs.issue(task.id)
            elif task.polls >= 2:
                task.status = "processing"
        return JSONResponse(
            {"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": self._view(request, task)}
        )

    async def download(self, request: Request) -> Response:
        await self._record(request)
        task = self.tasks.get(request.path_params["task_id"])
        signed = (
            not self.expire_outputs
            and task is not None
            and request.query_params.get("sig") == task.token
            and not self.outputs.expired(task.id)
        )
        return await serve_output(self.faults, signed, _expired())
