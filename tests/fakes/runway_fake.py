"""A fake Runway API: Bearer key plus ``X-Runway-Version``, strict bodies, task state machine.

Each ``GET /v1/tasks/{id}`` advances the task one step (PENDING, optionally THROTTLED, RUNNING
with a rising 0..1 ``progress``, then SUCCEEDED or FAILED) so tests need no sleeps. Outputs are
served from ``/cdn/...`` on the same server, like Runway's signed CloudFront links; they expire
``outputs.ttl`` seconds after the task succeeded. Runway has no task list and no caller-chosen id,
so the fake has neither.

``POST /v1/video_to_video`` takes ``aleph2`` and ``gen4_aleph`` in the SDK's shapes; its video is an
https URL (taken as it is), a ``data:`` URI of at most 16 MB, or the ``runway://`` URI of an upload
made here, and one it can read must decode and last at most 30 s. ``POST /v1/uploads`` answers a
presigned form (``uploadUrl`` on this server, ``fields``, ``runwayUri``); the form POST to
``uploadUrl`` must carry every field and a ``file`` part, and no Authorization header (storage
does not take Runway's key). Received uploads are kept in ``uploads``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from fakes.media import decode_data_uri, probe
from fakes.server import BearerFake, serve_output
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

VERSION = "2024-11-06"
_LP = ["1280:720", "720:1280"]
_GEN4_I2V = ["1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672"]
_VEO = ["1280:720", "720:1280", "1080:1920", "1920:1080"]
_TWO_TO_TEN = list(range(2, 11))

# model -> (t2v ratios or None when i2v-only, i2v ratios, durations, extra body fields allowed)
MODELS: dict[str, tuple[list[str] | None, list[str], list[int], set[str]]] = {
    "gen4.5": (_LP, _GEN4_I2V, _TWO_TO_TEN, {"seed", "contentModeration"}),
    "gen4_turbo": (None, _GEN4_I2V, _TWO_TO_TEN, {"seed", "contentModeration"}),
    "veo3.1": (_VEO, _VEO, [4, 6, 8], {"audio", "negativePrompt"}),
    "veo3.1_fast": (_VEO, _VEO, [4, 6, 8], {"audio", "negativePrompt"}),
    "veo3": (_VEO, _VEO, [8], {"negativePrompt"}),
}
_LAST_FRAME_MODELS = {"veo3.1", "veo3.1_fast"}
V2V_RATIOS = ["1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672", "848:480", "640:480"]
V2V_FIELDS = {
    "aleph2": {
        "model",
        "videoUri",
        "promptText",
        "ratio",
        "seed",
        "keyframes",
        "targetAspectRatio",
        "contentModeration",
    },
    "gen4_aleph": {"model", "videoUri", "promptText", "ratio", "seed", "references", "contentModeration"},
}
MAX_VIDEO_DATA_URI = 16 * 1024 * 1024
MAX_INPUT_SECONDS = 30

_EXPIRED_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Request has expired</Message></Error>"
)


def _expired() -> Response:
    return Response(_EXPIRED_XML, status_code=403, media_type="application/xml")


def _err(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@dataclass
class Task:
    id: str
    body: dict[str, Any]
    endpoint: str
    polls: int = 0
    status: str = "PENDING"
    progress: float | None = None
    fail: tuple[str, str] | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)


class RunwayFake(BearerFake):
    """State and routes of one fake Runway; see the module docstring."""

    def __init__(self, api_key: str = "key_test", polls_to_complete: int = 3, throttle: bool = False) -> None:
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.throttle = throttle
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/v1/text_to_video", self.create, methods=["POST"]),
                Route("/v1/image_to_video", self.create, methods=["POST"]),
                Route("/v1/video_to_video", self.create, methods=["POST"]),
                Route("/v1/uploads", self.start_upload, methods=["POST"]),
                Route("/upload-bucket/{upload_id}", self.receive_upload, methods=["POST"]),
                Route("/v1/tasks/{task_id}", self.get_task, methods=["GET"]),
                Route("/v1/tasks/{task_id}", self.delete_task, methods=["DELETE"]),
                Route("/cdn/{task_id}/video.mp4", self.download, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Forget every task, recorded request, fault and failure switch (for a shared server)."""
        super().reset()
        self.tasks: dict[str, Task] = {}
        self.failure_message = "Your input did not pass moderation."
        self.failure_code = "SAFETY.INPUT.TEXT"
        self.pending_uploads: dict[str, dict[str, str]] = {}
        self.uploads: dict[str, bytes] = {}

    def unauthorized(self) -> Response:
        return _err("Invalid API key. Check the key and the host you are calling.", 401)

    def _auth(self, request: Request) -> Response | None:
        if denied := super()._auth(request):
            return denied
        # Best guess at Runway's answer when the version header is missing or wrong [unverified].
        if request.headers.get("x-runway-version") != VERSION:
            return _err("A valid X-Runway-Version header is required. The current version is 2024-11-06.", 400)
        return None

    async def create(self, request: Request) -> Response:
        body = await self._record(request)
        if stop := await self._gate(request, "create"):
            return stop
        endpoint = request.url.path.rsplit("/", 1)[-1]
        if problem := self._validate(endpoint, body):
            return _err(problem, 400)
        task = Task(id=str(uuid.uuid4()), body=body, endpoint=endpoint)
        if self.fail_next:
            task.fail, self.fail_next = (self.failure_message, self.failure_code), False
        self.tasks[task.id] = task
        return await self.faults.accepted("create", JSONResponse({"id": task.id}))

    def _validate(self, endpoint: str, body: Any) -> str | None:
        """Runway's checks, each answered as a 400 naming the field."""
        if not isinstance(body, dict):
            return "Request body must be a JSON object."
        if endpoint == "video_to_video":
            return self._check_v2v(body)
        model = body.get("model")
        if model not in MODELS:
            return f"model: Invalid enum value. Expected one of {sorted(MODELS)}, received {model!r}"
        t2v, i2v, durations, extras = MODELS[model]
        i2v_endpoint = endpoint == "image_to_video"
        if not i2v_endpoint and t2v is None:
            return f"model: {model} does not support text_to_video."
        allowed = {"model", "promptText", "ratio", "duration"} | extras | ({"promptImage"} if i2v_endpoint else set())
        unknown = sorted(set(body) - allowed)
        if unknown:
            return f"Unrecognized key(s) in object: {', '.join(repr(k) for k in unknown)}"
        text = body.get("promptText")
        if (text is not None or not i2v_endpoint) and (not isinstance(text, str) or not text.strip()):
            return "promptText: String must contain at least 1 character(s)"
        if isinstance(text, str) and len(text.encode("utf-16-le")) // 2 > 1000:
            return "promptText: String must contain at most 1000 character(s)"
        if i2v_endpoint and (problem := self._check_image(model, body.get("promptImage"))):
            return problem
        ratios = i2v if i2v_endpoint else t2v
        if body.get("ratio") not in (ratios or []):
            expected = " | ".join(ratios or [])
            return f"ratio: Invalid enum value. Expected {expected}, received {body.get('ratio')!r}"
        duration = body.get("duration")
        if type(duration) is not int or duration not in durations:
            return f"duration: Invalid value. Expected one of {durations}, received {duration!r}"
        seed = body.get("seed")
        if "seed" in body and (type(seed) is not int or not 0 <= seed <= 4294967295):
            return "seed: Number must be an integer between 0 and 4294967295"
        if "audio" in body and not isinstance(body["audio"], bool):
            return "audio: Expected boolean"
        return None

    @staticmethod
    def _check_image(model: str, image: Any) -> str | None:
        def ok(uri: Any) -> bool:
            return isinstance(uri, str) and (uri.startswith("https://") or uri.startswith("data:image/"))

        if isinstance(image, str):
            return None if ok(image) else "promptImage: Only HTTPS URLs are allowed."
        if isinstance(image, list) and image:
            for item in image:
                if not isinstance(item, dict) or not ok(item.get("uri")):
                    return "promptImage: Only HTTPS URLs are allowed."
                if item.get("position") not in ("first", "last"):
                    return "promptImage: position must be 'first' or 'last'"
                if item.get("position") == "last" and model not in _LAST_FRAME_MODELS:
                    return f"promptImage: {model} does not support a last frame"
            return None
        return "promptImage: Required"

    def _check_v2v(self, body: dict[str, Any]) -> str | None:
        model = body.get("model")
        if model not in V2V_FIELDS:
            return f"model: Invalid enum value. Expected one of {sorted(V2V_FIELDS)}, received {model!r}"
        if unknown := sorted(set(body) - V2V_FIELDS[model]):
            return f"Unrecognized key(s) in object: {', '.join(repr(k) for k in unknown)}"
        text = body.get("promptText")
        if (text is not None or model == "gen4_aleph") and (not isinstance(text, str) or not text.strip()):
            return "promptText: String must contain at least 1 character(s)"
        if isinstance(text, str) and len(text.encode("utf-16-le")) // 2 > 1000:
            return "promptText: String must contain at most 1000 character(s)"
        if model == "gen4_aleph" and body.get("ratio") not in V2V_RATIOS:
            return f"ratio: Invalid enum value. Expected {' | '.join(V2V_RATIOS)}, received {body.get('ratio')!r}"
        refs = body.get("references", [])
        if not isinstance(refs, list) or len(refs) > 1:
            return "references: Array must contain at most 1 element(s)"
        for ref in refs:
            uri = ref.get("uri") if isinstance(ref, dict) else None
            if (
                ref.get("type") != "image"
                or not isinstance(uri, str)
                or not uri.startswith(("https://", "data:image/"))
            ):
                return "references: Invalid input"
        seed = body.get("seed")
        if "seed" in body and (type(seed) is not int or not 0 <= seed <= 4294967295):
            return "seed: Number must be an integer between 0 and 4294967295"
        return self._check_video(body.get("videoUri"))

    def _check_video(self, uri: Any) -> str | None:
        if not isinstance(uri, str):
            return "videoUri: Required"
        if uri.startswith("https://"):
            return None
        if uri.startswith("runway://"):
            data = self.uploads.get(uri)
            if data is None:
                return "videoUri: The upload was not found or has expired."
        else:
            decoded = decode_data_uri(uri)
            if decoded is None or not decoded[0].startswith("video/"):
                return "videoUri: Invalid URI. Must be an HTTPS URL, a Runway upload URI or a data URI."
            if len(uri) > MAX_VIDEO_DATA_URI:
                return "videoUri: Data URIs must be at most 16MB."
            data = decoded[1]
        found = probe(data)
        if found is None or found.kind != "video":
            return "videoUri: The video could not be decoded."
        if found.seconds > MAX_INPUT_SECONDS:
            return f"videoUri: The video must be at most {MAX_INPUT_SECONDS} seconds long."
        return None

    async def start_upload(self, request: Request) -> Response:
        body = await self._record(request)
        if stop := await self._gate(request, "upload"):
            return stop
        if not isinstance(body, dict) or body.get("type") != "ephemeral" or not isinstance(body.get("filename"), str):
            return _err('filename: Required; type: Invalid literal value, expected "ephemeral"', 400)
        upload_id = uuid.uuid4().hex
        fields = {"key": f"uploads/{upload_id}/{body['filename']}", "policy": uuid.uuid4().hex}
        self.pending_uploads[upload_id] = fields
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {"uploadUrl": f"{base}/upload-bucket/{upload_id}", "fields": fields, "runwayUri": f"runway://{upload_id}"}
        )

    async def receive_upload(self, request: Request) -> Response:
        fields = self.pending_uploads.get(request.path_params["upload_id"])
        form = await request.form()
        self.requests.append(
            {"method": "POST", "path": request.url.path, "headers": dict(request.headers), "json": None}
        )
        if fields is None or "authorization" in request.headers:
            return Response(b"<Error><Code>AccessDenied</Code></Error>", status_code=403, media_type="application/xml")
        if any(form.get(k) != v for k, v in fields.items()) or not hasattr(form.get("file"), "read"):
            return Response(b"<Error><Code>InvalidPolicyDocument</Code></Error>", status_code=400)
        upload = form["file"]
        self.uploads[f"runway://{request.path_params['upload_id']}"] = await upload.read()  # type: ignore[union-attr]
        return Response(status_code=204)

    def _advance(self, task: Task) -> None:
        if task.status in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return
        task.polls += 1
        if task.polls >= self.polls_to_complete:
            task.status, task.progress = ("FAILED", None) if task.fail else ("SUCCEEDED", None)
            self.outputs.issue(task.id)
        elif task.polls == 1:
            task.status = "THROTTLED" if self.throttle else "PENDING"
        else:
            task.status = "RUNNING"
            task.progress = round((task.polls - 1) / max(1, self.polls_to_complete - 1), 4)

    def _view(self, request: Request, task: Task) -> dict[str, Any]:
        out: dict[str, Any] = {"id": task.id, "status": task.status, "createdAt": "2026-08-01T10:00:00.000Z"}
        if task.status == "RUNNING":
            out["progress"] = task.progress
        elif task.status == "SUCCEEDED":
            out["output"] = [f"{str(request.base_url).rstrip('/')}/cdn/{task.id}/video.mp4?_jwt={task.token}"]
        elif task.status == "FAILED" and task.fail:
            out["failure"], out["failureCode"] = task.fail
        return out

    async def get_task(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "poll"):
            return stop
        task = self.tasks.get(request.path_params["task_id"])
        if task is None:
            return _err("Not found", 404)
        self._advance(task)
        return JSONResponse(self._view(request, task))

    async def delete_task(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "cancel"):
            return stop
        task = self.tasks.get(request.path_params["task_id"])
        if task is None:
            return _err("Not found", 404)
        if task.status in ("SUCCEEDED", "FAILED", "CANCELLED"):
            del self.tasks[task.id]  # finished tasks are deleted, not cancelled
        else:
            task.status, task.progress = "CANCELLED", None
        return Response(status_code=204)

    async def download(self, request: Request) -> Response:
        await self._record(request)
        task = self.tasks.get(request.path_params["task_id"])
        signed = (
            not self.expire_outputs
            and task is not None
            and request.query_params.get("_jwt") == task.token
            and not self.outputs.expired(task.id)
        )
        return await serve_output(self.faults, signed, _expired())
