"""A fake Vertex AI Veo endpoint speaking the wire format of providers.md §2.2.

Usage::

    fake = VertexFake(token="ya29.test", project="proj-test")
    server = FakeUpstream(fake.app).start()
    base_url = server.base_url + "/v1"          # and extra.storage_base_url = server.base_url

Create is ``POST /v1/projects/P/locations/L/publishers/google/models/M:predictLongRunning``; each
``POST …/M:fetchPredictOperation`` with ``{"operationName": …}`` advances that operation one
step and the ``polls_to_complete``-th answers ``done: true``. Videos come back inline as
``bytesBase64Encoded`` unless the request set ``parameters.storageUri``, in which case they are
``gs://`` objects served by the Cloud Storage JSON API route ``/storage/v1/b/{bucket}/o/{object}``
on the same fake (Bearer token required, like the real one).

``POST /token`` is Google's OAuth token endpoint for a service account: it takes the JWT-bearer
grant, checks the RS256-signed assertion against ``service_account`` (its email and public key)
and its claims (issuer, audience, scope, lifetime), and answers an access token that expires
``token_lifetime`` seconds later; the API then takes that token (or the fixed ``token``) until it
expires. Failures answer like Google's, ``{"error": "invalid_grant", "error_description": …}``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import secrets
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson
from fakes.google_fake import GoogleError, Recorded
from fakes.server import Faults, OutputClock, small_mp4
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

MODELS = (
    "veo-3.1-generate-001",
    "veo-3.1-fast-generate-001",
    "veo-3.1-generate-preview",
    "veo-3.1-fast-generate-preview",
    "veo-3.0-generate-001",
    "veo-3.0-fast-generate-001",
    "veo-2.0-generate-001",
)
IMAGE_TYPES = ("image/png", "image/jpeg")
VIDEO_TYPES = ("video/mp4", "video/webm", "video/quicktime")
RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
RAI_REASON = (
    "Veo could not generate videos because the input image violates Vertex AI's usage guidelines. "
    "Support codes: 29310472"
)
FAILURE_MESSAGE = "Video generation failed due to an internal error. Please try again."
MODEL_PATH = "/v1/projects/{project}/locations/{location}/publishers/google/models/{model}"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
# A grant's assertion names Google's token endpoint as its audience, wherever it is sent.
TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _invalid(message: str) -> GoogleError:
    return GoogleError(400, "INVALID_ARGUMENT", message)


def _grant_error(description: str, error: str = "invalid_grant") -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=400)


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_image(value: Any, where: str) -> None:
    """Vertex images are ``{bytesBase64Encoded | gcsUri, mimeType}``."""
    if not isinstance(value, dict):
        raise _invalid(f"Invalid value at '{where}': expected an Image object.")
    data, uri, mime = value.get("bytesBase64Encoded"), value.get("gcsUri"), value.get("mimeType")
    if (data is None) == (uri is None):
        raise _invalid(f"{where} needs exactly one of bytesBase64Encoded or gcsUri.")
    if data is not None:
        if not isinstance(data, str) or not data:
            raise _invalid(f"Invalid value at '{where}.bytes_base64_encoded'.")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _invalid(f"Invalid value at '{where}.bytes_base64_encoded': invalid base64 data.") from exc
    if uri is not None and (not isinstance(uri, str) or not uri.startswith("gs://")):
        raise _invalid(f"{where}.gcsUri must be a gs:// URI.")
    if mime not in IMAGE_TYPES:
        raise _invalid(f"Unsupported MIME type for {where}: {mime!r}.")


def _check_video(value: Any, where: str) -> None:
    """A video to extend: ``{bytesBase64Encoded | gcsUri, mimeType}``, as Vertex images are."""
    if not isinstance(value, dict):
        raise _invalid(f"Invalid value at '{where}': expected a Video object.")
    data, uri, mime = value.get("bytesBase64Encoded"), value.get("gcsUri"), value.get("mimeType")
    if (data is None) == (uri is None):
        raise _invalid(f"{where} needs exactly one of bytesBase64Encoded or gcsUri.")
    if data is not None:
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise _invalid(f"Invalid value at '{where}.bytes_base64_encoded': invalid base64 data.") from exc
    if uri is not None and (not isinstance(uri, str) or not uri.startswith("gs://")):
        raise _invalid(f"{where}.gcsUri must be a gs:// URI.")
    if mime not in VIDEO_TYPES:
        raise _invalid(f"Unsupported MIME type for {where}: {mime!r}.")


class VertexFake:
    """State and routes of one fake Vertex AI (Veo) upstream plus its Cloud Storage bucket."""

    def __init__(self, token: str = "ya29.test", project: str = "proj-test", polls_to_complete: int = 3) -> None:
        self.token = token
        self.project = project
        self.polls_to_complete = polls_to_complete
        self.reset()
        self.app = Starlette(
            routes=[
                Route(MODEL_PATH + ":predictLongRunning", self.create, methods=["POST"]),
                Route(MODEL_PATH + ":fetchPredictOperation", self.fetch, methods=["POST"]),
                Route("/storage/v1/b/{bucket}/o/{name:path}", self.storage, methods=["GET"]),
                Route("/token", self.grant, methods=["POST"]),
            ]
        )

    def reset(self) -> None:
        """Forget every operation, object, recorded request, fault and failure switch."""
        self.faults = Faults()
        self.operations: dict[str, dict[str, Any]] = {}  # full operation name -> state
        self.objects: dict[str, bytes] = {}  # "bucket/name" -> bytes
        self.requests: list[Recorded] = []
        self.fail_next: str | None = None  # "failed" | "moderation", for the next created operation
        self.expired = False  # stored outputs are gone: storage answers 404
        self.outputs = OutputClock()  # or gone ``outputs.ttl`` seconds after they were written
        self.service_account: tuple[str, RSAPublicKey] | None = None  # (client email, public key)
        self.token_lifetime = 3600
        self.token_asked = 0  # grants asked for, counted as each arrives
        self.token_hold: threading.Event | None = None  # when set: grants wait until it is set
        self.grants: list[dict[str, Any]] = []  # the claims of each assertion it granted
        self.issued: dict[str, float] = {}  # access token -> when it expires (epoch seconds)

    def _record(self, request: Request, body: Any) -> None:
        self.requests.append(Recorded(request.method, request.url.path, dict(request.headers), body))

    def _check_auth(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if not header:
            raise GoogleError(
                401,
                "UNAUTHENTICATED",
                "Request is missing required authentication credential. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
            )
        scheme, _, token = header.partition(" ")
        issued = self.issued.get(token) if scheme == "Bearer" else None
        if token != self.token and (issued is None or issued <= time.time()):
            raise GoogleError(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
                "cookie or other valid authentication credential.",
            )

    def _check_path(self, request: Request) -> str:
        p = request.path_params
        if p["project"] != self.project:
            raise GoogleError(
                403,
                "PERMISSION_DENIED",
                f"Permission 'aiplatform.endpoints.predict' denied on resource "
                f"'//aiplatform.googleapis.com/projects/{p['project']}/locations/{p['location']}/"
                f"publishers/google/models/{p['model']}' (or it may not exist).",
            )
        if p["model"] not in MODELS:
            raise GoogleError(
                404,
                "NOT_FOUND",
                f"Publisher Model `projects/{p['project']}/locations/{p['location']}/publishers/google/"
                f"models/{p['model']}` not found.",
            )
        return f"projects/{p['project']}/locations/{p['location']}/publishers/google/models/{p['model']}"

    @staticmethod
    async def _json(request: Request) -> Any:
        try:
            return orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            raise _invalid("Invalid JSON payload received.") from exc

    @staticmethod
    def _validate(model: str, body: Any) -> dict[str, Any]:
        """Check a create body the way Vertex does; returns the parameters object."""
        if not isinstance(body, dict):
            raise _invalid("Invalid JSON payload received. Expected an object.")
        for key in body:
            if key not in ("instances", "parameters", "labels"):
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
        if "lastFrame" in inst and model.startswith("veo-3.0"):
            raise _invalid(f"lastFrame isn't supported by {model}.")
        if "video" in inst:
            _check_video(inst["video"], "instances[0].video")
            if not model.startswith("veo-3.1"):
                raise _invalid(f"Video extension isn't supported by {model}.")
            if "image" in inst or "lastFrame" in inst:
                raise _invalid("video cannot be combined with image or lastFrame.")
        refs = inst.get("referenceImages")
        if refs is not None:
            if not isinstance(refs, list) or not 1 <= len(refs) <= 3:
                raise _invalid("referenceImages must hold between 1 and 3 images.")
            if any(k in inst for k in ("image", "lastFrame", "video")):
                raise _invalid("referenceImages cannot be combined with image, lastFrame or video.")
            for i, ref in enumerate(refs):
                if not isinstance(ref, dict) or ref.get("referenceType") not in ("asset", "style"):
                    raise _invalid(f"Invalid value at 'instances[0].referenceImages[{i}].referenceType'.")
                _check_image(ref.get("image"), f"instances[0].referenceImages[{i}].image")
        params = body.get("parameters", {})
        if not isinstance(params, dict):
            raise _invalid("Invalid value at 'parameters': expected an object.")
        veo2, veo31 = model.startswith("veo-2"), model.startswith("veo-3.1")
        duration = params.get("durationSeconds", 8)
        if isinstance(duration, str) and duration.isdigit():
            duration = int(duration)
        allowed = (5, 6, 7, 8) if veo2 else (4, 6, 8)
        if not _is_int(duration) or duration not in allowed:
            raise _invalid(
                f"The number value for `durationSeconds` is out of bound. Please provide a value between "
                f"{allowed[0]} and {allowed[-1]}, inclusive. Allowed: {list(allowed)}."
            )
        if params.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
            raise _invalid(f"Aspect ratio {params['aspectRatio']!r} is not supported; use 16:9 or 9:16.")
        resolution = params.get("resolution", "720p")
        supported = ("720p",) if veo2 else ("720p", "1080p", "4k") if veo31 else ("720p", "1080p")
        if resolution not in supported:
            raise _invalid(f"Resolution {resolution!r} is not supported by {model}.")
        if resolution in ("1080p", "4k") and duration != 8:
            raise _invalid(f"Resolution {resolution} requires durationSeconds 8.")
        if "video" in inst and resolution != "720p":
            raise _invalid("Video extension supports 720p only.")
        if veo2 and "resolution" in params:
            raise _invalid(f"resolution isn't supported by {model}.")
        if veo2 and "generateAudio" in params:
            raise _invalid(f"generateAudio isn't supported by {model}.")
        checks = {
            "negativePrompt": lambda v: isinstance(v, str),
            "personGeneration": lambda v: v in ("allow_all", "allow_adult", "dont_allow"),
            "sampleCount": lambda v: _is_int(v) and 1 <= v <= 4,
            "enhancePrompt": lambda v: isinstance(v, bool),
            "generateAudio": lambda v: isinstance(v, bool),
            "seed": lambda v: _is_int(v) and 0 <= v <= 4294967295,
            "storageUri": lambda v: isinstance(v, str) and v.startswith("gs://") and len(v) > 5,
            "fps": lambda v: _is_int(v) and v == 24,
            "compressionQuality": lambda v: v in ("OPTIMIZED", "LOSSLESS"),
            "resizeMode": lambda v: v in ("pad", "crop"),
        }
        for key, ok in checks.items():
            if key in params and not ok(params[key]):
                raise _invalid(f"Invalid value at 'parameters.{key}': {params[key]!r}.")
        return params

    async def create(self, request: Request) -> Response:
        if fault := await self.faults.apply("create"):
            return fault
        try:
            self._check_auth(request)
            body = await self._json(request)
            self._record(request, body)
            model_path = self._check_path(request)
            params = self._validate(request.path_params["model"], body)
        except GoogleError as exc:
            return exc.response()
        name = f"{model_path}/operations/{secrets.randbelow(10**18):018d}"
        self.operations[name] = {
            "polls": 0,
            "done": False,
            "fail": self.fail_next,
            "samples": params.get("sampleCount", 1),
            "storage": params.get("storageUri"),
            "result": None,
        }
        self.fail_next = None
        return await self.faults.accepted("create", JSONResponse({"name": name}))

    async def fetch(self, request: Request) -> Response:
        if fault := await self.faults.apply("poll"):
            return fault
        try:
            self._check_auth(request)
            body = await self._json(request)
            self._record(request, body)
            model_path = self._check_path(request)
            name = body.get("operationName") if isinstance(body, dict) else None
            if not isinstance(name, str) or not name:
                raise _invalid("operationName is required.")
            if not name.startswith(model_path + "/operations/"):
                raise _invalid(f"operationName {name!r} does not belong to {model_path}.")
            op = self.operations.get(name)
            if op is None:
                raise GoogleError(404, "NOT_FOUND", f"Operation {name} not found.")
        except GoogleError as exc:
            return exc.response()
        if not op["done"]:
            op["polls"] += 1
            if op["polls"] >= self.polls_to_complete:
                op["done"], op["result"] = True, self._finish(op)
        if not op["done"]:
            return JSONResponse({"name": name, "metadata": {"createTime": "2026-08-01T10:00:00.000Z"}})
        return JSONResponse({"name": name, "done": True, **op["result"]})

    def _finish(self, op: dict[str, Any]) -> dict[str, Any]:
        if op["fail"] == "failed":
            return {"error": {"code": 13, "message": FAILURE_MESSAGE}}
        if op["fail"] == "moderation":
            return {
                "response": {
                    "@type": RESPONSE_TYPE,
                    "raiMediaFilteredCount": op["samples"],
                    "raiMediaFilteredReasons": [RAI_REASON],
                }
            }
        videos = []
        for i in range(op["samples"]):
            if op["storage"]:
                bucket, _, prefix = op["storage"][5:].partition("/")
                name = f"{prefix.rstrip('/') + '/' if prefix else ''}{secrets.token_hex(4)}/sample_{i}.mp4"
                self.objects[f"{bucket}/{name}"] = small_mp4()
                self.outputs.issue(f"{bucket}/{name}")
                videos.append({"gcsUri": f"gs://{bucket}/{name}", "mimeType": "video/mp4"})
            else:
                encoded = base64.b64encode(small_mp4()).decode()
                videos.append({"bytesBase64Encoded": encoded, "mimeType": "video/mp4"})
        return {"response": {"@type": RESPONSE_TYPE, "raiMediaFilteredCount": 0, "videos": videos}}

    async def storage(self, request: Request) -> Response:
        """The Cloud Storage JSON API object route: metadata, or bytes with ``alt=media``."""
        if fault := await self.faults.apply("download"):
            return fault
        self._record(request, dict(request.query_params))
        if request.headers.get("authorization") != f"Bearer {self.token}":
            message = "Anonymous caller does not have storage.objects.get access to the Google Cloud Storage object."
            err = {"code": 401, "message": message, "errors": [{"message": message, "reason": "required"}]}
            return JSONResponse({"error": err}, status_code=401)
        key = f"{request.path_params['bucket']}/{request.path_params['name']}"
        if key not in self.objects or self.expired or self.outputs.expired(key):
            message = f"No such object: {key}"
            err = {"code": 404, "message": message, "errors": [{"message": message, "reason": "notFound"}]}
            return JSONResponse({"error": err}, status_code=404)
        if request.query_params.get("alt") != "media":
            data = self.objects[key]
            return JSONResponse({"kind": "storage#object", "name": request.path_params["name"], "size": str(len(data))})
        return Response(self.objects[key], media_type="video/mp4")

    async def grant(self, request: Request) -> Response:
        """Google's token endpoint: a JWT-bearer grant signed with the service account's key."""
        form = await request.form()
        self.token_asked += 1
        if self.token_hold is not None:
            await asyncio.to_thread(self.token_hold.wait, 30)
        if form.get("grant_type") != JWT_BEARER:
            return _grant_error("Invalid grant_type.", "unsupported_grant_type")
        assertion = str(form.get("assertion", ""))
        if self.service_account is None:
            return _grant_error("Invalid JWT Signature.")
        email, key = self.service_account
        parts = assertion.split(".")
        try:
            head, claims = (json.loads(_b64url(p)) for p in parts[:2])
            signature = _b64url(parts[2])
        except (ValueError, IndexError, binascii.Error):
            return _grant_error("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe.")
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            key.verify(signature, f"{parts[0]}.{parts[1]}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return _grant_error("Invalid JWT Signature.")
        now = time.time()
        if head.get("alg") != "RS256" or claims.get("iss") != email or claims.get("aud") != TOKEN_AUDIENCE:
            return _grant_error("Invalid JWT: issuer, audience or algorithm do not match.")
        if CLOUD_PLATFORM not in str(claims.get("scope", "")).split():
            return _grant_error("Invalid OAuth scope or ID token audience provided.", "invalid_scope")
        iat, exp = claims.get("iat"), claims.get("exp")
        if not (_is_int(iat) and _is_int(exp) and iat <= now + 60 and now < exp <= iat + 3600):
            return _grant_error("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe.")
        self.grants.append(claims)
        token = f"ya29.{secrets.token_urlsafe(24)}"
        self.issued[token] = now + self.token_lifetime
        return JSONResponse({"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})
