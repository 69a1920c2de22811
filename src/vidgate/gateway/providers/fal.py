"""fal.ai's queue API: submit to ``{queue}/{model_id}``, then status/result/cancel per request.

The status, result and cancel URLs use only the ``owner/app`` part of the model id (the endpoint
sub-path is dropped), so the native id stores ``owner/app|request_id``. The app is read from the
``response_url`` the submit answer returns when that URL is on our queue host, else derived from
the model id. fal documents no idempotency key, so none is sent, and the queue has no way to
list requests or tag one with our id, so after a lost create answer nothing can find the request
again: ``reconcile`` is ``none``. (fal's separate platform API keeps a request history by
endpoint, but sorted by end time: whether it shows requests still queued is [unverified], so it
cannot prove one absent.)
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from vidgate.gateway.providers.base import (
    Accepted,
    JobSpec,
    PollFailed,
    ProviderConfig,
    ProviderError,
    ReferenceImage,
    Rejected,
    UnknownOutcome,
    Upstream,
    UpstreamError,
    UpstreamOutput,
)
from vidgate.gateway.providers.cancel import cancel_request
from vidgate.gateway.providers.http import Response, make_client, request, request_id_of, require, stream_url
from vidgate.gateway.providers.mapping import image_link
from vidgate.gateway.providers.reconcile import find_without_lookup

DEFAULT_BASE_URL = "https://queue.fal.run"
_NAMESPACES = ("workflows", "comfy")  # namespaced apps keep three path segments
_ERROR_STATUSES = (400, 401, 403, 404, 410, 422)  # fal error bodies we read ourselves
# Families whose generate_audio defaults to true (and bills more), so False is sent explicitly.
_AUDIO_DEFAULT_ON = ("/veo3",)
_ASPECTS = ("16:9", "9:16", "1:1")
MAX_DATA_URI_BYTES = 5 * 1024 * 1024


def app_of(model_id: str) -> str:
    """``fal-ai/kling-video/v2.1/master/text-to-video`` → ``fal-ai/kling-video``."""
    segments = model_id.strip("/").split("/")
    return "/".join(segments[: 3 if segments[0] in _NAMESPACES else 2])


def fal_message(body: Any, fallback: str) -> str:
    """fal errors are ``{"detail": str | [{"loc", "msg"}...]}`` or ``{"error": str}``."""
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list) and detail:
            parts = []
            for item in detail:
                if isinstance(item, dict):
                    loc = ".".join(str(x) for x in item.get("loc", []) if x != "body")
                    parts.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
            if parts:
                return "; ".join(parts)
        for key in ("error", "message"):
            if isinstance(body.get(key), str):
                return body[key]
    return fallback


def fal_duration(model_id: str, seconds: int) -> str:
    """fal models type ``duration`` as a string enum: ``"5"`` for most, ``"8s"`` for Veo."""
    return f"{seconds}s" if "/veo" in model_id else str(seconds)


def fal_aspect(job: JobSpec) -> str:
    if job.aspect_ratio:
        return job.aspect_ratio
    shape = job.width / job.height
    return min(_ASPECTS, key=lambda a: abs(math.log(shape * int(a.split(":")[1]) / int(a.split(":")[0]))))


def image_ref(ref: ReferenceImage) -> str:
    """fal takes URLs or data URIs; inline small images so a short-lived source URL cannot expire."""
    return image_link(ref, MAX_DATA_URI_BYTES, schemes=("http",))


def _is_cancel(*texts: Any) -> bool:
    return any(isinstance(t, str) and "cancel" in t.lower() for t in texts)


class FalProvider:
    """Submits to fal's queue and follows one request to its result."""

    name = "fal"
    # Cancel removes a request that is still IN_QUEUE. Once IN_PROGRESS fal only signals the
    # runner, which may ignore it and finish (and bill) anyway; polling then shows the outcome.
    cancellable = True
    reconcile = "none"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        # Sent per call rather than as a client default: open_output uses the same client for
        # plain CDN URLs, which must never receive the fal key.
        self._auth = {"Authorization": f"Key {config.revealed_api_key()}"}
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL)
        self._base = urlsplit(str(self._client.base_url))

    def build_request(self, job: JobSpec) -> tuple[str, dict[str, Any]]:
        """The model id to submit to and the model input for ``job``."""
        model = job.provider_model.strip("/")
        first, last = job.reference("first_frame"), job.reference("last_frame")
        if first is not None and model.endswith("/text-to-video"):
            # fal's convention: the same family's image endpoint takes the first frame.
            model = model.removesuffix("/text-to-video") + "/image-to-video"
        body: dict[str, Any] = {
            "prompt": job.prompt,
            "duration": fal_duration(model, job.duration),
            "aspect_ratio": fal_aspect(job),
        }
        if job.resolution:
            body["resolution"] = job.resolution
        if job.seed is not None:
            body["seed"] = job.seed
        if job.negative_prompt:
            body["negative_prompt"] = job.negative_prompt
        if job.audio or any(f in model for f in _AUDIO_DEFAULT_ON):
            body["generate_audio"] = job.audio
        if "first-last-frame" in model:
            if first is None or last is None:
                raise Rejected(f"{model} needs first and last frames", retryable=True, code="unsupported_input")
            body["first_frame_url"], body["last_frame_url"] = image_ref(first), image_ref(last)
        else:
            if first is not None:
                body["image_url"] = image_ref(first)
            if last is not None:
                if "kling-video" not in model:
                    raise Rejected(f"{model} takes no last frame", retryable=True, code="unsupported_input")
                body["tail_image_url"] = image_ref(last)
        body.update(job.provider_params)
        return model, body

    async def _call(
        self, method: str, url: str, *, phase: str, ok: tuple[int, ...], **kwargs: Any
    ) -> tuple[Any, Response]:
        """``request`` with fal's error bodies (``detail`` lists, ``X-Fal-Error-Type``) read here."""
        error_cls = Rejected if phase == "submit" else PollFailed
        try:
            body, response = await request(
                self._client,
                method,
                url,
                phase=phase,
                expect=ok + _ERROR_STATUSES,
                headers=self._auth,
                **kwargs,
            )
        except ProviderError as exc:
            if exc.status_code in _ERROR_STATUSES:  # a 4xx whose body was not JSON
                raise error_cls(
                    f"fal answered {exc.status_code} during {phase}",
                    retryable=False,
                    status_code=exc.status_code,
                    request_id=exc.request_id,
                ) from exc
            raise
        if response.status_code in ok:
            return body, response
        error_type = response.headers.get("x-fal-error-type")
        if not error_type and isinstance(body, dict) and isinstance(body.get("error_type"), str):
            error_type = body["error_type"]
        raise error_cls(
            fal_message(body, f"fal answered {response.status_code} during {phase}"),
            retryable=False,
            status_code=response.status_code,
            request_id=request_id_of(response),
            code=error_type or "upstream_error",
        )

    def _app_from(self, url: Any, fallback: str) -> str:
        """The ``owner/app`` in a returned queue URL when it is on our queue host."""
        if not isinstance(url, str):
            return fallback
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != (self._base.scheme, self._base.netloc):
            return fallback
        path = parts.path.removeprefix(self._base.path.rstrip("/")).strip("/")
        app, sep, _ = path.partition("/requests/")
        return app if sep and app else fallback

    async def submit(self, job: JobSpec) -> Accepted:
        model, body = self.build_request(job)
        data, response = await self._call("POST", f"/{model}", phase="submit", ok=(200, 201, 202), json=body)
        request_id = require(data, "request_id", phase="submit")
        if not isinstance(request_id, str) or not request_id or "|" in request_id:
            raise UnknownOutcome("fal answered without a usable request_id", retryable=True)
        app = self._app_from(data.get("response_url") or data.get("status_url"), app_of(model))
        rid = request_id_of(response) or data.get("gateway_request_id") or request_id
        return Accepted(native_id=f"{app}|{request_id}", request_id=rid)

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """fal's queue offers no way to look a job up."""
        return find_without_lookup(self.name, lambda: self.build_request(job))

    @staticmethod
    def _split(native_id: str) -> tuple[str, str]:
        app, sep, request_id = native_id.rpartition("|")
        if not sep or not app or not request_id:
            raise PollFailed(f"not a fal native id: {native_id!r}", retryable=False)
        return app, request_id

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        app, request_id = self._split(native_id)
        base = f"/{app}/requests/{request_id}"
        # Status may answer 202 while pending [unverified]; both are accepted.
        data, response = await self._call("GET", f"{base}/status", phase="poll", ok=(200, 202))
        status = require(data, "status")
        if status == "IN_QUEUE":
            return Upstream(status="queued")
        if status == "IN_PROGRESS":
            return Upstream(status="processing")
        if status != "COMPLETED":
            raise PollFailed(f"fal answered an unknown status {status!r}", retryable=True)
        error, error_type = data.get("error"), data.get("error_type")
        if error or error_type:
            if _is_cancel(error, error_type):
                return Upstream(status="cancelled")
            return Upstream(
                status="failed",
                error=UpstreamError(
                    code=str(error_type or "fal_error"),
                    message=str(error or error_type),
                    request_id=request_id_of(response),
                ),
            )
        return await self._result(base)

    async def _result(self, base: str) -> Upstream:
        """Fetch a COMPLETED request's result; a model error answered here fails the job."""
        try:
            data, _ = await self._call("GET", base, phase="poll", ok=(200,))
        except PollFailed as exc:
            if exc.retryable or exc.status_code in (401, 403):
                raise
            if _is_cancel(exc.message, exc.code):
                return Upstream(status="cancelled")
            return Upstream(
                status="failed",
                error=UpstreamError(
                    code=exc.code if exc.code != "upstream_error" else f"http_{exc.status_code}",
                    message=exc.message,
                    request_id=exc.request_id,
                ),
            )
        if not isinstance(data, dict):
            raise PollFailed("fal result is not a JSON object", retryable=True)
        videos: list[Any] = data["videos"] if isinstance(data.get("videos"), list) else [data.get("video")]
        outputs = tuple(
            UpstreamOutput(index=i, url=v["url"], mime_type=str(v.get("content_type") or "video/mp4"))
            for i, v in enumerate(videos)
            if isinstance(v, dict) and isinstance(v.get("url"), str)
        )
        if not outputs:
            return Upstream(status="failed", error=UpstreamError("no_output", "fal result holds no video"))
        return Upstream(status="completed", progress=100, outputs=outputs)

    def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        return stream_url(self._client, out.url, out.headers)

    async def cancel(self, native_id: str) -> bool:
        """True for ``CANCELLATION_REQUESTED``/``OK``; ``ALREADY_COMPLETED``/``NOT_FOUND`` give False."""
        app, request_id = self._split(native_id)
        # Status codes are unverified (202/400/404 seen); the body's status decides.
        accepted, data = await cancel_request(
            self._client,
            "PUT",
            f"/{app}/requests/{request_id}/cancel",
            expect=(200, 202, 400, 404),
            headers=self._auth,
            refused=(400, 404),
        )
        return accepted and isinstance(data, dict) and data.get("status") in ("CANCELLATION_REQUESTED", "OK")

    async def aclose(self) -> None:
        await self._client.aclose()
