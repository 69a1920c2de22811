"""A fake Gemini Developer API for Veo speaking the wire format of providers.md §2.1.

Usage::

    fake = GoogleFake(api_key="g-test")
    server = FakeUpstream(fake.app).start()
    base_url = server.base_url + "/v1beta"

Each ``GET /v1beta/{operation name}`` advances that operation one step; the
``polls_to_complete``-th call answers ``done: true``. The file URI in a finished operation
answers a 302 to ``/_storage/{file}`` on the same fake, which serves ``small_mp4()``; a file is
gone ``outputs.ttl`` seconds after its operation finished. The Gemini API takes no caller-chosen
id and lists no Veo operations, so the fake has neither.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Any, NamedTuple

import orjson
from fakes.server import Faults, OutputClock, small_mp4
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

MODELS = (
    "veo-3.1-generate-preview",
    "veo-3.1-fast-generate-preview",
    "veo-3.1-generate-001",
    "veo-3.1-fast-generate-001",
    "veo-3.1-lite-generate-preview",
    "veo-3.0-generate-001",
    "veo-3.0-fast-generate-001",
    "veo-2.0-generate-001",
)
# The python SDK refuses these in Gemini mode (seed too); whether the server rejects them is
# [unverified], and this fake does (400 INVALID_ARGUMENT), as providers.md allows.
VERTEX_ONLY = ("seed", "generateAudio", "fps", "storageUri", "compressionQuality", "resizeMode", "pubsubTopic")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
VIDEO_TYPES = ("video/mp4", "video/webm", "video/quicktime")
RAI_REASON = (
    "We encountered an issue with the audio and video for your prompt. "
    "Please try rephrasing your prompt. Support code: 58061214"
)


class Recorded(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class GoogleError(Exception):
    def __init__(self, code: int, status: str, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.status, self.message, self.details = code, status, message, details

    def response(self) -> JSONResponse:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details:
            err["details"] = self.details
        return JSONResponse({"error": err}, status_code=self.code)


def _invalid(message: str) -> GoogleError:
    return GoogleError(400, "INVALID_ARGUMENT", message)


def _check_image(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise _invalid(f"Invalid value at '{where}': expected an Image object.")
    if "gcsUri" in value:
        raise _invalid(f"{where}.gcsUri isn't supported by the Gemini API; use bytesBase64Encoded.")
    data, mime = value.get("bytesBase64Encoded"), value.get("mimeType")
    if not isinstance(data, str) or not data:
        raise _invalid(f"{where}.bytesBase64Encoded is required.")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid(f"Invalid value at '{where}.bytes_base64_encoded': invalid base64 data.") from exc
    if mime not in IMAGE_TYPES:
        raise _invalid(f"Unsupported MIME type for {where}: {mime!r}.")


def _check_video(value: Any, where: str) -> None:
    """A video to extend: a file URI of an earlier output, or the bytes inline in Gemini's field names."""
    if not isinstance(value, dict):
        raise _invalid(f"Invalid value at '{where}': expected a Video object.")
    if "gcsUri" in value or "bytesBase64Encoded" in value:
        raise _invalid(f"{where}: gcsUri and bytesBase64Encoded aren't supported by the Gemini API.")
    if isinstance(value.get("uri"), str) and value["uri"]:
        return
    data = value.get("encodedVideo")
    if not isinstance(data, str) or not data:
        raise _invalid(f"{where} needs uri or encodedVideo.")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _invalid(f"Invalid value at '{where}.encoded_video': invalid base64 data.") from exc
    if value.get("encoding") not in VIDEO_TYPES:
        raise _invalid(f"Unsupported MIME type for {where}: {value.get('encoding')!r}.")


class GoogleFake:
    """State and routes of one fake Gemini API upstream."""

    def __init__(self, api_key: str = "g-test", polls_to_complete: int = 3) -> None:
        self.api_key = api_key
        self.polls_to_complete = polls_to_complete
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/v1beta/models/{model}:predictLongRunning", self.create, methods=["POST"]),
                Route("/v1beta/models/{model}/operations/{op_id}", self.poll, methods=["GET"]),
                Route("/v1beta/files/{file_id}:download", self.download, methods=["GET"]),
                Route("/_storage/{file_id}", self.storage, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Forget every operation, file, recorded request, fault and failure switch."""
        self.faults = Faults()
        self.jobs: dict[str, dict[str, Any]] = {}  # operation id -> state
        self.files: dict[str, str] = {}  # file id -> operation id
        self.requests: list[Recorded] = []
        self.fail_next: str | None = None  # "failed" | "moderation", applies to the next created job
        self.expired = False  # generated files are gone: download answers 403 PERMISSION_DENIED
        self.outputs = OutputClock()
        self.storage_requests: list[Recorded] = []
        self._tokens: dict[str, str] = {}

    def _check_auth(self, request: Request) -> None:
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if not key:
            raise GoogleError(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers "
                "without established identity). Please use API Key or other form of API "
                "consumer identity to call this API.",
            )
        if key != self.api_key:
            # The real API answers a bad key with 400, not 401.
            raise GoogleError(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                    }
                ],
            )

    def _record(self, request: Request, body: Any) -> None:
        self.requests.append(Recorded(request.method, request.url.path, dict(request.headers), body))

    @staticmethod
    def _validate(model: str, body: Any) -> dict[str, Any]:
        """Check a create body the way the API does; returns the parameters object."""
        if not isinstance(body, dict):
            raise _invalid("Invalid JSON payload received. Expected an object.")
        for key in body:
            if key not in ("instances", "parameters", "webhookConfig"):
                raise _invalid(f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
        instances = body.get("instances")
        if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
            raise _invalid("instances must be a list holding exactly one instance object.")
        inst = instances[0]
        if "prompt" in inst and not isinstance(inst["prompt"], str):
            raise _invalid("Invalid value at 'instances[0].prompt': expected a string.")
        if not inst.get("prompt") and "image" not in inst:
            raise _invalid("A prompt or an image is required.")
        for field in ("image", "lastFrame"):
            if field in inst:
                _check_image(inst[field], f"instances[0].{field}")
        if "lastFrame" in inst and "image" not in inst:
            raise _invalid("lastFrame requires image (the first frame).")
        if "video" in inst:
            _check_video(inst["video"], "instances[0].video")
            if not model.startswith("veo-3.1"):
                raise _invalid(f"Video extension isn't supported by {model}.")
            if "image" in inst or "lastFrame" in inst:
                raise _invalid("video cannot be combined with image or lastFrame.")
        params = body.get("parameters", {})
        if not isinstance(params, dict):
            raise _invalid("Invalid value at 'parameters': expected an object.")
        refs = inst.get("referenceImages")
        if refs is not None:
            if not isinstance(refs, list) or not 1 <= len(refs) <= 3:
                raise _invalid("referenceImages must hold between 1 and 3 images.")
            if any(k in inst for k in ("image", "lastFrame", "video")):
                raise _invalid("referenceImages cannot be combined with image, lastFrame or video.")
            for i, ref in enumerate(refs):
                if not isinstance(ref, dict):
                    raise _invalid(f"Invalid value at 'instances[0].referenceImages[{i}]'.")
                _check_image(ref.get("image"), f"instances[0].referenceImages[{i}].image")
                if ref.get("referenceType") != "asset":
                    raise _invalid("Only referenceType 'asset' is supported by the Gemini API.")
        for key in VERTEX_ONLY:
            if key in params:
                raise _invalid(
                    f"`{key}` isn't supported by this model. Please remove it or refer to the "
                    "Gemini API documentation for supported usage."
                )
        veo2 = model.startswith("veo-2")
        duration = params.get("durationSeconds", 8)
        if isinstance(duration, str) and duration.isdigit():
            duration = int(duration)
        allowed = (5, 6, 7, 8) if veo2 else (4, 6, 8)
        if isinstance(duration, bool) or duration not in allowed:
            raise _invalid(
                f"The number value for `durationSeconds` is out of bound. Please provide a value "
                f"between {allowed[0]} and {allowed[-1]}, inclusive. Allowed: {list(allowed)}."
            )
        if params.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
            raise _invalid(f"Aspect ratio {params['aspectRatio']!r} is not supported; use 16:9 or 9:16.")
        if veo2 and "resolution" in params:
            raise _invalid(f"`resolution` isn't supported by {model}.")
        resolution = params.get("resolution", "720p")
        four_k_ok = model.startswith("veo-3.1")
        if resolution not in ("720p", "1080p", "4k") or (resolution == "4k" and not four_k_ok):
            raise _invalid(f"Resolution {resolution!r} is not supported by {model}.")
        if resolution in ("1080p", "4k") and duration != 8:
            raise _invalid(f"Resolution {resolution} requires durationSeconds 8.")
        if refs is not None and duration != 8:
            raise _invalid("referenceImages require durationSeconds 8.")
        if "video" in inst and resolution != "720p":
            raise _invalid("Video extension supports 720p only.")
        checks = {
            "negativePrompt": lambda v: isinstance(v, str),
            "personGeneration": lambda v: v in ("allow_all", "allow_adult", "dont_allow"),
            "sampleCount": lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 4,
            "enhancePrompt": lambda v: isinstance(v, bool),
        }
        for key, ok in checks.items():
            if key in params and not ok(params[key]):
                raise _invalid(f"Invalid value at 'parameters.{key}': {params[key]!r}.")
        return params

    async def create(self, request: Request) -> Response:
        if fault := await self.faults.apply("create"):
            return fault
        model = request.path_params["model"]
        try:
            self._check_auth(request)
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError as exc:
                raise _invalid("Invalid JSON payload received.") from exc
            self._record(request, body)
            if model not in MODELS:
                raise GoogleError(
                    404,
                    "NOT_FOUND",
                    f"models/{model} is not found for API version v1beta, or is not supported for predictLongRunning.",
                )
            params = self._validate(model, body)
        except GoogleError as exc:
            return exc.response()
        op_id = secrets.token_hex(6)
        name = f"models/{model}/operations/{op_id}"
        self.jobs[op_id] = {
            "name": name,
            "model": model,
            "polls": 0,
            "done": False,
            "fail": self.fail_next,
            "samples": params.get("sampleCount", 1),
            "result": None,
        }
        self.fail_next = None
        return await self.faults.accepted("create", JSONResponse({"name": name}))

    async def poll(self, request: Request) -> Response:
        if fault := await self.faults.apply("poll"):
            return fault
        try:
            self._check_auth(request)
        except GoogleError as exc:
            return exc.response()
        self._record(request, None)
        job = self.jobs.get(request.path_params["op_id"])
        if job is None or job["model"] != request.path_params["model"]:
            return GoogleError(404, "NOT_FOUND", "Operation not found.").response()
        if not job["done"]:
            job["polls"] += 1
            if job["polls"] >= self.polls_to_complete:
                job["done"], job["result"] = True, self._finish(request, job)
        if not job["done"]:
            return JSONResponse({"name": job["name"]})
        return JSONResponse({"name": job["name"], "done": True, **job["result"]})

    def _finish(self, request: Request, job: dict[str, Any]) -> dict[str, Any]:
        rtype = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
        if job["fail"] == "failed":
            return {"error": {"code": 13, "message": "Video generation failed due to an internal error."}}
        if job["fail"] == "moderation":
            video = {"raiMediaFilteredCount": job["samples"], "raiMediaFilteredReasons": [RAI_REASON]}
            return {"response": {"@type": rtype, "generateVideoResponse": video}}
        base = str(request.base_url).rstrip("/")
        samples = []
        for _ in range(job["samples"]):
            file_id = secrets.token_hex(6)
            self.files[file_id] = job["name"]
            self.outputs.issue(file_id)
            samples.append({"video": {"uri": f"{base}/v1beta/files/{file_id}:download?alt=media"}})
        return {"response": {"@type": rtype, "generateVideoResponse": {"generatedSamples": samples}}}

    async def download(self, request: Request) -> Response:
        if fault := await self.faults.apply("download"):
            return fault
        try:
            self._check_auth(request)
        except GoogleError as exc:
            return exc.response()
        self._record(request, dict(request.query_params))
        file_id = request.path_params["file_id"]
        if file_id not in self.files or self.expired or self.outputs.expired(file_id):
            # Files API wording for a missing or deleted file; kept ~2 days upstream [unverified].
            return GoogleError(
                403,
                "PERMISSION_DENIED",
                f"You do not have permission to access the File {file_id} or it may not exist.",
            ).response()
        if request.query_params.get("alt") != "media":
            return _invalid("Downloads need alt=media.").response()
        token = secrets.token_hex(8)
        self._tokens[file_id] = token
        base = str(request.base_url).rstrip("/")
        # The redirect status upstream is [unverified]; a public fake test uses 302.
        return RedirectResponse(f"{base}/_storage/{file_id}?token={token}", status_code=302)

    async def storage(self, request: Request) -> Response:
        """The signed storage URL the download redirects to; needs no API key."""
        self.storage_requests.append(Recorded(request.method, request.url.path, dict(request.headers), None))
        file_id = request.path_params["file_id"]
        if self._tokens.get(file_id) != request.query_params.get("token"):
            xml = b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code></Error>"
            return Response(xml, status_code=403, media_type="application/xml")
        return Response(small_mp4(), media_type="video/mp4")
