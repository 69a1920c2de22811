"""fal.ai's queue API: submit to ``{queue}/{model_id}``, then status/result/cancel per request.

The status, result and cancel URLs use only the ``owner/app`` part of the model id (the endpoint
sub-path is dropped), so the native id stores ``owner/app|request_id``. The app is read from the
``response_url`` the submit answer returns when that URL is on our queue host, else derived from
the model id. fal documents no idempotency key, so none is sent, and the queue has no way to
list requests or tag one with our id, so after a lost create answer nothing can find the request
again: ``reconcile`` is ``none``. (fal's separate platform API keeps a request history by
endpoint, but sorted by end time: whether it shows requests still queued is [unverified], so it
cannot prove one absent.)

Each model family's endpoints and input enums are in ``fal_families`` (from fal's model schemas); a
job its family cannot take is refused before any call. A failed request's result replays the
model's own answer (status, headers and body): a 5xx there that fal's own server sent (it carries
``x-fal-request-id``, as fal's client checks) fails the job with the model's message, while one
without it came from fal's edge and is tried again.
"""

from __future__ import annotations

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
from vidgate.gateway.providers.fal_families import FalFamily, family_of
from vidgate.gateway.providers.http import Response, make_client, request, request_id_of, require, stream_url
from vidgate.gateway.providers.mapping import image_link, nearest_shape, other_roles, refuse_set, unsupported
from vidgate.gateway.providers.reconcile import find_without_lookup

DEFAULT_BASE_URL = "https://queue.fal.run"
_ERROR_STATUSES = (400, 401, 403, 404, 410, 422)  # fal error bodies we read ourselves
# A result fetch reads the model's own answer for these too; 408, 409, 425 and 429 stay retryable.
_RESULT_STATUSES = (200, *_ERROR_STATUSES, *range(500, 600))
# fal's own server marks every answer with this header; an edge (ingress) error has none.
FAL_REQUEST_ID = "x-fal-request-id"
_NAMESPACES = ("workflows", "comfy")  # namespaced apps keep three path segments
MAX_DATA_URI_BYTES = 5 * 1024 * 1024


_LABELS = {480: "480p", 720: "720p", 1080: "1080p", 2160: "4k"}
_ROLES = ("first_frame", "last_frame")
# Fields of our jobs no fal family here takes.
_NEVER = ("person_generation", "compression_quality", "resize_mode")


def build_input(job: JobSpec) -> tuple[str, dict[str, Any]]:
    """The endpoint and model input for ``job``; anything the family's schema lacks is refused here."""
    model = job.provider_model.strip("/")
    family, base = family_of(model)
    if other := other_roles(job, _ROLES):
        raise unsupported(f"fal takes first_frame and last_frame images, not {', '.join(other)}")
    if job.sample_count != 1:
        raise unsupported("fal makes one video per request")
    refuse_set(job, _NEVER, "fal")
    first, last = job.reference("first_frame"), job.reference("last_frame")
    if last is not None and first is None:
        raise unsupported("fal takes a last frame only together with a first frame")
    if family is None:
        return _unchecked(job, model, first, last)
    body: dict[str, Any] = {"prompt": job.prompt}
    if first is not None and last is not None:
        if family.first_last is not None:
            endpoint = base + family.first_last
            body["first_frame_url"], body["last_frame_url"] = image_ref(first), image_ref(last)
        elif family.tail and family.image is not None:
            endpoint = base + family.image
            body["image_url"], body["tail_image_url"] = image_ref(first), image_ref(last)
        else:
            raise unsupported(f"{family.name} on fal takes a first frame but no last frame")
    elif first is not None:
        if family.image is None:
            raise unsupported(f"{family.name} on fal takes no first frame")
        endpoint = base + family.image
        body["image_url"] = image_ref(first)
    else:
        if family.text is None:
            raise unsupported(f"{family.name} on fal needs a first frame")
        endpoint = base + family.text
    if job.duration not in family.durations:
        allowed = ", ".join(str(d) for d in family.durations)
        raise unsupported(f"{family.name} on fal makes {allowed} s video, not {job.duration} s")
    body["duration"] = f"{job.duration}s" if family.seconds_suffix else str(job.duration)
    aspects = family.aspect_ratios if first is None else family.image_aspect_ratios
    if aspects:
        body["aspect_ratio"] = _aspect(job, aspects, family.name)
    _resolution(job, family, body)
    _optional_fields(job, family, body)
    return endpoint, body


def _aspect(job: JobSpec, options: tuple[str, ...], who: str) -> str:
    shaped = tuple(a for a in options if a != "auto")
    if job.aspect_ratio:
        if job.aspect_ratio not in shaped:
            raise unsupported(f"{who} on fal makes {', '.join(shaped)} video, not {job.aspect_ratio}")
        return job.aspect_ratio
    return nearest_shape(shaped, job.width, job.height)


def _resolution(job: JobSpec, family: FalFamily, body: dict[str, Any]) -> None:
    label = (job.resolution or _LABELS.get(min(job.width, job.height), "")).lower()
    if family.resolutions:
        if label not in family.resolutions:
            raise unsupported(
                f"{family.name} on fal makes {', '.join(family.resolutions)} video, not {label or job.size}"
            )
        body["resolution"] = label
    elif family.makes and label and label != family.makes:
        raise unsupported(f"{family.name} on fal makes {family.makes} video only, not {label}")
    long = family.long_above_720p
    if long is not None and label in ("1080p", "4k") and job.duration != long:
        raise unsupported(f"{family.name} makes {label} video only {long} s long, not {job.duration} s")


def _optional_fields(job: JobSpec, family: FalFamily, body: dict[str, Any]) -> None:
    if job.seed is not None:
        if not family.seed:
            raise unsupported(f"{family.name} on fal takes no seed")
        body["seed"] = job.seed
    if job.negative_prompt:
        if not family.negative_prompt:
            raise unsupported(f"{family.name} on fal takes no negative_prompt")
        body["negative_prompt"] = job.negative_prompt
    if family.audio:
        body["generate_audio"] = job.audio  # on by default upstream (and billed more), so always said
    elif job.audio:
        raise unsupported(f"{family.name} on fal makes no audio")
    if job.enhance_prompt is not None:
        if family.enhance_field is None:
            raise unsupported(f"{family.name} on fal takes no enhance_prompt")
        body[family.enhance_field] = job.enhance_prompt


def _unchecked(
    job: JobSpec, model: str, first: ReferenceImage | None, last: ReferenceImage | None
) -> tuple[str, dict[str, Any]]:
    """A model whose schema is not in the table: fal's common field names, lower-case enums, as sent
    before; the upstream checks the rest."""
    if "first-last-frame" in model and (first is None or last is None):
        raise unsupported(f"{model} needs first and last frames")
    if first is not None and model.endswith("/text-to-video"):
        model = model.removesuffix("/text-to-video") + "/image-to-video"
    body: dict[str, Any] = {"prompt": job.prompt, "duration": str(job.duration)}
    body["aspect_ratio"] = job.aspect_ratio or nearest_shape(("16:9", "9:16", "1:1"), job.width, job.height)
    if job.resolution:
        body["resolution"] = job.resolution.lower()
    if job.seed is not None:
        body["seed"] = job.seed
    if job.negative_prompt:
        body["negative_prompt"] = job.negative_prompt
    if job.audio:
        body["generate_audio"] = True
    if first is not None and last is not None and "first-last-frame" in model:
        body["first_frame_url"], body["last_frame_url"] = image_ref(first), image_ref(last)
    else:
        if first is not None:
            body["image_url"] = image_ref(first)
        if last is not None:
            body["tail_image_url"] = image_ref(last)
    return model, body


def image_ref(ref: ReferenceImage) -> str:
    """fal takes URLs or data URIs; inline small images so a short-lived source URL cannot expire."""
    return image_link(ref, MAX_DATA_URI_BYTES, schemes=("http",))


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


def fal_error_type(body: Any, response: Response) -> str | None:
    """The machine-readable kind of a fal error: the header, a request error's ``error_type`` or a
    model error's first ``detail[].type``."""
    if found := response.headers.get("x-fal-error-type"):
        return found
    if isinstance(body, dict):
        if isinstance(body.get("error_type"), str):
            return body["error_type"]
        detail = body.get("detail")
        if (
            isinstance(detail, list)
            and detail
            and isinstance(detail[0], dict)
            and isinstance(detail[0].get("type"), str)
        ):
            return detail[0]["type"]
    return None


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
        """The endpoint to submit to and the model input for ``job``; what it cannot take is refused."""
        model, body = build_input(job)
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
        raise error_cls(
            fal_message(body, f"fal answered {response.status_code} during {phase}"),
            retryable=False,
            status_code=response.status_code,
            request_id=request_id_of(response),
            code=fal_error_type(body, response) or "upstream_error",
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
        # The status answers 202 while the request is queued or running and 200 once complete.
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
        """Fetch a COMPLETED request's result; the model's own error answered here fails the job."""
        data, response = await request(
            self._client, "GET", base, phase="poll", expect=_RESULT_STATUSES, headers=self._auth
        )
        status = response.status_code
        if status != 200:
            rid = request_id_of(response) or response.headers.get(FAL_REQUEST_ID)
            message = fal_message(data, f"fal answered {status} for the result")
            if status in (401, 403) or (status >= 500 and FAL_REQUEST_ID not in response.headers):
                # Our key was refused, or fal's edge failed before the stored answer was read.
                raise PollFailed(message, retryable=status >= 500, status_code=status, request_id=rid)
            kind = fal_error_type(data, response)
            if _is_cancel(message, kind):
                return Upstream(status="cancelled")
            error = UpstreamError(code=kind or f"http_{status}", message=message, request_id=rid)
            return Upstream(status="failed", error=error)
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
