"""A fake Replicate API (providers.md §5): Bearer token, per-model input schemas, predictions.

Usage::

    fake = ReplicateFake(api_token="r8_test")
    server = FakeUpstream(fake.app).start()
    base_url = server.base_url + "/v1"

Create (``POST /v1/models/{owner}/{name}/predictions`` or ``POST /v1/predictions`` with a
``version``) answers 201 with a ``starting`` prediction. Each ``GET /v1/predictions/{id}``
advances it one step: ``starting``, then ``processing`` with a growing ``NN%|`` progress bar in
``logs``, then ``succeeded`` (``output`` a URL string, or a list with ``output_as_list``) on the
``polls_to_complete``-th call, or ``failed`` with an ``error`` when ``fail_next`` was set. Outputs
are served from ``/delivery/...`` on the same server and answer 404 once ``expire_outputs`` is set
(Replicate removes API outputs after about an hour).

``GET /v1/predictions`` lists predictions newest first, 100 a page with an absolute ``next`` cursor
URL, filtered by ``created_after``/``created_before`` (ISO 8601), each with its model and input.
Outputs also expire ``outputs.ttl`` seconds after the prediction succeeded.

Errors are RFC 7807 problem details. Inputs are checked against each model's schema (types,
enums, required fields) and answered with 422; inputs a schema does not name are ignored, as
Replicate's input handling is lenient there [unverified].
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fakes.server import FakeState, serve_output
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

STR, INT, BOOL, URI, ARRAY = "string", "integer", "boolean", "uri", "array"
_VEO3 = {
    "prompt": (STR, None, True),
    "aspect_ratio": (STR, ["16:9", "9:16"], False),
    "duration": (INT, [4, 6, 8], False),
    "image": (URI, None, False),
    "negative_prompt": (STR, None, False),
    "resolution": (STR, ["720p", "1080p"], False),
    "generate_audio": (BOOL, None, False),
    "seed": (INT, None, False),
}
_LUMA = {
    "prompt": (STR, None, True),
    "duration": (INT, [5, 9], False),
    "aspect_ratio": (STR, ["1:1", "3:4", "4:3", "9:16", "16:9", "9:21", "21:9"], False),
    "loop": (BOOL, None, False),
    "concepts": (ARRAY, None, False),
    "start_image": (URI, None, False),
    "end_image": (URI, None, False),
}
_KLING = {
    "prompt": (STR, None, True),
    "negative_prompt": (STR, None, False),
    "start_image": (URI, None, False),
    "aspect_ratio": (STR, ["16:9", "9:16", "1:1"], False),
    "duration": (INT, [5, 10], False),
}
# model -> input name -> (type, enum or None, required)
MODELS: dict[str, dict[str, tuple[str, list[Any] | None, bool]]] = {
    "google/veo-3": _VEO3,
    "google/veo-3-fast": _VEO3,
    "google/veo-3.1": {**_VEO3, "last_frame": (URI, None, False), "reference_images": (ARRAY, None, False)},
    "google/veo-2": {
        "prompt": (STR, None, True),
        "image": (URI, None, False),
        "aspect_ratio": (STR, ["16:9", "9:16"], False),
        "duration": (INT, [5, 6, 7, 8], False),
        "seed": (INT, None, False),
    },
    "luma/ray-2-720p": _LUMA,
    "luma/ray-2-540p": _LUMA,
    "luma/ray-flash-2-720p": _LUMA,
    "luma/ray-flash-2-540p": _LUMA,
    "kwaivgi/kling-v2.1": {
        "prompt": (STR, None, True),
        "mode": (STR, ["standard", "pro"], False),
        "duration": (INT, [5, 10], False),
        "start_image": (URI, None, True),
        "end_image": (URI, None, False),
        "negative_prompt": (STR, None, False),
    },
    "kwaivgi/kling-v2.1-master": _KLING,
    "kwaivgi/kling-v2.5-turbo-pro": {**_KLING, "end_image": (URI, None, False)},
}
FAILURE_ERROR = "E006: The input or output was flagged as sensitive. Please try again with different inputs."
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"title": title, "detail": detail, "status": status, **extra}, status_code=status)


def parse_duration(text: str) -> int | None:
    """Seconds in a Go-style duration such as ``1h2m5s``; None when malformed."""
    m = _DURATION.match(text.strip())
    if not m or not any(m.groups()):
        return None
    h, mi, s = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + s


def _type_ok(kind: str, value: Any) -> bool:
    if kind == STR:
        return isinstance(value, str)
    if kind == INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == BOOL:
        return isinstance(value, bool)
    if kind == ARRAY:
        return isinstance(value, list)
    return isinstance(value, str) and (value.startswith("https://") or value.startswith("data:"))


@dataclass
class Prediction:
    id: str
    model: str
    input: dict[str, Any]
    cancel_after: int | None = None
    polls: int = 0
    status: str = "starting"
    fail: bool = False
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    version: str = "hidden"
    created: float = field(default_factory=time.time)


def _iso(stamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp % 1 * 1e6):06d}Z"


def _stamp(text: str | None) -> float | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else None


class ReplicateFake(FakeState):
    """State and routes of one fake Replicate API; see the module docstring."""

    def __init__(self, api_token: str = "r8_test", polls_to_complete: int = 3) -> None:
        self.api_token = api_token
        self.polls_to_complete = polls_to_complete
        self.versions = {"a" * 64: "kwaivgi/kling-v2.1"}
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/v1/models/{owner}/{name}/predictions", self.create_for_model, methods=["POST"]),
                Route("/v1/predictions", self.create_for_version, methods=["POST"]),
                Route("/v1/predictions", self.list_predictions, methods=["GET"]),
                Route("/v1/predictions/{pid}", self.get, methods=["GET"]),
                Route("/v1/predictions/{pid}/cancel", self.cancel, methods=["POST"]),
                Route("/delivery/{pid}/output.mp4", self.download, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        super().reset()
        self.predictions: dict[str, Prediction] = {}
        self.failure_error = FAILURE_ERROR
        self.output_as_list = False

    def _auth(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_token}":
            return problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        return None

    @staticmethod
    def _validate(model: str, body: Any) -> str | None:
        """Problems with the create body, in Replicate's ``- input.x: ...`` detail style."""
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            return "- input: Invalid type. Expected: object\n"
        schema, inputs = MODELS[model], body["input"]
        problems = []
        for name, (kind, enum, required) in schema.items():
            if name not in inputs:
                if required:
                    problems.append(f"- input: {name} is required")
                continue
            value = inputs[name]
            if not _type_ok(kind, value):
                problems.append(f"- input.{name}: Invalid type. Expected: {kind}, given: {type(value).__name__}")
            elif enum is not None and value not in enum:
                allowed = ", ".join(str(v) for v in enum)
                problems.append(f"- input.{name}: {name} must be one of the following: {allowed}")
        if model == "kwaivgi/kling-v2.1" and "end_image" in inputs and inputs.get("mode") != "pro":
            problems.append("- input.end_image: end_image requires mode pro")
        if "webhook" in body and not str(body["webhook"]).startswith("https://"):
            problems.append("- webhook: must be an https URL")
        return "\n".join(problems) + "\n" if problems else None

    async def create_for_model(self, request: Request) -> Response:
        body = await self._record(request)
        model = f"{request.path_params['owner']}/{request.path_params['name']}"
        return await self._create(request, model, body)

    async def create_for_version(self, request: Request) -> Response:
        body = await self._record(request)
        version = body.get("version") if isinstance(body, dict) else None
        return await self._create(request, self.versions.get(str(version), ""), body, str(version))

    async def _create(self, request: Request, model: str, body: Any, version: str = "hidden") -> Response:
        if stop := await self._gate(request, "create"):
            return stop
        if model not in MODELS:
            return problem(404, "Not found", "The requested resource could not be found.")
        if problem_text := self._validate(model, body):
            return problem(422, "Input validation failed", problem_text)
        cancel_after = None
        if "cancel-after" in request.headers:
            cancel_after = parse_duration(request.headers["cancel-after"])
            if cancel_after is None:
                return problem(400, "Bad request", "Cancel-After must be a duration such as 30s or 5m")
        pred = Prediction(
            id=secrets.token_hex(13),
            model=model,
            input=body["input"],
            cancel_after=cancel_after,
            fail=self.fail_next,
            version=version,
        )
        self.fail_next = False
        self.predictions[pred.id] = pred
        return await self.faults.accepted("create", JSONResponse(self._view(request, pred), status_code=201))

    async def list_predictions(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "list"):
            return stop
        query = request.query_params
        after, before = _stamp(query.get("created_after")), _stamp(query.get("created_before"))
        newest = sorted(self.predictions.values(), key=lambda p: -p.created)
        chosen = [p for p in newest if (after is None or p.created >= after) and (before is None or p.created < before)]
        offset = int(query.get("cursor", "0"))
        page = chosen[offset : offset + 100]
        more = offset + 100 < len(chosen)
        base = str(request.base_url).rstrip("/")
        next_url = f"{base}/v1/predictions?cursor={offset + 100}" if more else None
        if next_url and query.get("created_after"):
            next_url += "&created_after=" + query["created_after"].replace("+", "%2B")
        results = [self._view(request, p) for p in page]
        return JSONResponse({"next": next_url, "previous": None, "results": results})

    def _view(self, request: Request, pred: Prediction) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        out: dict[str, Any] = {
            "id": pred.id,
            "model": pred.model,
            "version": pred.version,
            "input": pred.input,
            "logs": "",
            "output": None,
            "data_removed": False,
            "error": None,
            "status": pred.status,
            "created_at": _iso(pred.created),
            "urls": {
                "get": f"{base}/v1/predictions/{pred.id}",
                "cancel": f"{base}/v1/predictions/{pred.id}/cancel",
                "web": f"https://replicate.example/p/{pred.id}",
            },
        }
        if pred.status != "starting":
            out["started_at"] = "2026-08-01T10:00:05.000Z"
        if pred.status == "processing":
            pct = min(99, round(100 * (pred.polls - 1) / max(1, self.polls_to_complete - 1)))
            out["logs"] = f"Generating video...\n{pct}%|{'#' * (pct // 10)}| {pct}/100\n"
        elif pred.status == "succeeded":
            url = f"{base}/delivery/{pred.id}/output.mp4?t={pred.token}"
            out["output"] = [url] if self.output_as_list else url
            out["metrics"] = {"predict_time": 81.4, "total_time": 95.2}
            out["completed_at"] = "2026-08-01T10:01:35.000Z"
        elif pred.status == "failed":
            out["error"] = self.failure_error
        return out

    async def get(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "poll"):
            return stop
        pred = self.predictions.get(request.path_params["pid"])
        if pred is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        if pred.status in ("starting", "processing"):
            pred.polls += 1
            if pred.polls >= self.polls_to_complete:
                pred.status = "failed" if pred.fail else "succeeded"
                self.outputs.issue(pred.id)
            elif pred.polls >= 2:
                pred.status = "processing"
        return JSONResponse(self._view(request, pred))

    async def cancel(self, request: Request) -> Response:
        await self._record(request)
        if stop := await self._gate(request, "cancel"):
            return stop
        pred = self.predictions.get(request.path_params["pid"])
        if pred is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        if pred.status in ("starting", "processing"):
            pred.status = "canceled"
        return JSONResponse(self._view(request, pred))  # a finished prediction is left as it was

    async def download(self, request: Request) -> Response:
        await self._record(request)
        pred = self.predictions.get(request.path_params["pid"])
        signed = (
            not self.expire_outputs
            and pred is not None
            and request.query_params.get("t") == pred.token
            and not self.outputs.expired(pred.id)
        )
        return await serve_output(self.faults, signed, Response(b"Not Found", status_code=404, media_type="text/plain"))
