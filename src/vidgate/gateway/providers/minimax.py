# Re-checked 2026-12-04 against hosts' copies of MiniMax's video generation reference (model,
# prompt up to 2000 characters, duration 6/10, resolution 512P/768P/1080P, first_frame_image,
# last_frame_image, prompt_optimizer, fast_pretreatment, aigc_watermark, callback_url).
"""MiniMax Hailuo's v1 video API: ``POST /v1/video_generation``, ``GET /v1/query/video_generation``,
``GET /v1/files/retrieve``.

Wire format per providers.md §8 (medium confidence). MiniMax answers most errors inside an HTTP 200
body with a non-zero ``base_resp.status_code``, so every answer's ``base_resp`` is checked. A finished
task names a ``file_id``; the file call that turns it into a download URL is made inside ``poll`` so
the ``Upstream`` it returns carries a real URL. The v1 API has no cancel and documents no
idempotency key, so a retried submit may create a second task. It lists no tasks and takes no
caller-chosen id either (only the v2 API has a task list), so after a lost create answer nothing
can find the task again: ``reconcile`` is ``none``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

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
    UpstreamStatus,
)
from vidgate.gateway.providers.cancel import CannotCancel
from vidgate.gateway.providers.http import Response, make_client, request, request_id_of, require, stream_url
from vidgate.gateway.providers.mapping import image_link, other_roles, refuse_set, resolution_label, unsupported
from vidgate.gateway.providers.reconcile import find_without_lookup

DEFAULT_BASE_URL = "https://api.minimax.io"
MAX_DATA_URI_BYTES = 20 * 1024 * 1024  # MiniMax's image size cap [unverified]; larger images go by URL

# base_resp codes (providers.md §8.4). Rate limits, "unknown error" and "timeout" are transient on
# MiniMax's side (their in-band equivalents of 429/5xx/timeouts), so they are retryable; the rest
# (1004 auth, 1008 balance, 1026/1027 sensitive content, 2013 invalid parameters, ...) are not.
RATE_LIMIT_CODES = frozenset({1002, 1039})  # 1039: token rate limit [unverified]
TRANSIENT_CODES = frozenset({1000, 1001})
MODERATION_CODES = frozenset({1026, 1027})

# Fields we price on (and the model itself): ``provider_params`` may not override them.
_RESERVED = frozenset({"model", "prompt", "duration", "resolution"})

_STATUS: dict[str, UpstreamStatus] = {
    "Preparing": "queued",
    "Queueing": "queued",
    "Queued": "queued",
    "Processing": "processing",
}
_RESOLUTION_BY_SHORT_SIDE = {512: "512P", 720: "720P", 768: "768P", 1080: "1080P"}


@dataclass(frozen=True, slots=True)
class _Model:
    """What one MiniMax model accepts: durations per resolution, and which inputs."""

    durations: Mapping[str, tuple[int, ...]]
    text_alone: bool = True  # False: the model needs a first_frame image
    first_frame: bool = True
    last_frame: bool = False
    settings: bool = True  # False: older models take no duration/resolution fields
    i2v_only_resolutions: frozenset[str] = field(default_factory=frozenset)
    no_last_frame_resolutions: frozenset[str] = field(default_factory=frozenset)


# Hailuo-02/2.3: 6 or 10 s, 10 s only at 768P, 1080P for 6 s only (providers.md §8.1).
_HAILUO = {"768P": (6, 10), "1080P": (6,)}
_MODELS: dict[str, _Model] = {
    # 512P is documented for some image-to-video variants only [unverified]: allowed with a first frame.
    # A last frame only at 768P and 1080P (hosts of the same API, checked 2026-12-04).
    "MiniMax-Hailuo-02": _Model(
        {**_HAILUO, "512P": (6, 10)},
        last_frame=True,
        i2v_only_resolutions=frozenset({"512P"}),
        no_last_frame_resolutions=frozenset({"512P"}),
    ),
    "MiniMax-Hailuo-2.3": _Model(_HAILUO),
    "MiniMax-Hailuo-2.3-Fast": _Model(_HAILUO, text_alone=False),
    "T2V-01": _Model({"720P": (6,)}, first_frame=False, settings=False),
    "T2V-01-Director": _Model({"720P": (6,)}, first_frame=False, settings=False),
    "I2V-01": _Model({"720P": (6,)}, text_alone=False, settings=False),
    "I2V-01-Director": _Model({"720P": (6,)}, text_alone=False, settings=False),
    "I2V-01-live": _Model({"720P": (6,)}, text_alone=False, settings=False),
}


def minimax_resolution(job: JobSpec) -> str | None:
    """Our ``768p`` label as MiniMax spells it (``768P``), else the label of the short side."""
    return resolution_label(job, _RESOLUTION_BY_SHORT_SIDE, upper=True)


def image_ref(ref: ReferenceImage) -> str:
    """MiniMax takes URLs or data URLs; small images go inline so a short-lived source URL cannot expire."""
    return image_link(ref, MAX_DATA_URI_BYTES, oversize="{role} image is too large to inline and has no URL")


def base_resp_error(body: Any, *, phase: str, request_id: str | None = None) -> ProviderError | None:
    """The failure a non-zero ``base_resp.status_code`` stands for, or None when it is 0 or absent."""
    resp = body.get("base_resp") if isinstance(body, dict) else None
    if not isinstance(resp, dict):
        return None
    code = resp.get("status_code")
    if code in (0, None):
        return None
    message = str(resp.get("status_msg") or f"minimax answered status_code {code}")
    error_cls = Rejected if phase == "submit" else PollFailed
    if code in RATE_LIMIT_CODES:
        return error_cls(message, retryable=True, request_id=request_id, code="upstream_rate_limited")
    retryable = code in TRANSIENT_CODES
    return error_cls(message, retryable=retryable, request_id=request_id, code=f"minimax_{code}")


class MiniMaxProvider(CannotCancel):
    """Submits to MiniMax, polls the task, resolves the output file to its download URL.

    The v1 API has no cancel (providers.md §8.4).
    """

    name = "minimax"
    reconcile = "none"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        # Sent per call, not as a client default, so open_output (same client, CDN URLs) never
        # carries the key even when the CDN shares the API host.
        self._auth = {"Authorization": f"Bearer {config.revealed_api_key()}"}
        # Older docs required a GroupId query on some endpoints [unverified whether still needed]:
        # sent only when configured as ``[providers.minimax] group_id = "..."``.
        group_id = config.extra.get("group_id")
        self._group = {"GroupId": str(group_id)} if group_id else {}
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL)

    def build_request(self, job: JobSpec) -> dict[str, Any]:
        """The create body for ``job``; inputs the model cannot take are refused before any call."""
        model = job.provider_model
        info = _MODELS.get(model)
        first, last = job.reference("first_frame"), job.reference("last_frame")
        if unknown_roles := other_roles(job, ("first_frame", "last_frame")):
            raise unsupported(f"minimax takes first_frame and last_frame images, not {', '.join(unknown_roles)}")
        if job.audio:
            raise unsupported(f"minimax model {model} cannot generate audio")
        if job.seed is not None:
            raise unsupported("minimax takes no seed")
        if job.negative_prompt:
            raise unsupported("minimax takes no negative prompt")
        if job.sample_count != 1:
            raise unsupported("minimax makes one video per task")
        refuse_set(job, ("person_generation", "compression_quality", "resize_mode"), "minimax")
        resolution = minimax_resolution(job)
        if info is not None:
            if first is None and not info.text_alone:
                raise unsupported(f"minimax model {model} needs a first_frame image")
            if first is not None and not info.first_frame:
                raise unsupported(f"minimax model {model} takes no first_frame image")
            if last is not None and not info.last_frame:
                raise unsupported(f"minimax model {model} takes no last_frame image")
            if (
                resolution is None
                or resolution not in info.durations
                or (resolution in info.i2v_only_resolutions and first is None)
            ):
                allowed = ", ".join(r for r in info.durations if r not in info.i2v_only_resolutions or first)
                raise unsupported(f"minimax model {model} makes {allowed} videos, not {resolution or job.size}")
            if last is not None and resolution in info.no_last_frame_resolutions:
                raise unsupported(f"minimax model {model} takes a last_frame image at 768P or 1080P, not {resolution}")
            if job.duration not in info.durations[resolution]:
                allowed = " or ".join(str(d) for d in info.durations[resolution])
                raise unsupported(f"minimax model {model} makes {allowed} s videos at {resolution}, not {job.duration}")
        if last is not None and first is None:
            raise unsupported("minimax needs a first_frame image to go with a last_frame")

        body: dict[str, Any] = {"model": model, "prompt": job.prompt}
        if info is None or info.settings:
            body["duration"] = job.duration
            if resolution:
                body["resolution"] = resolution
        if job.enhance_prompt is not None:
            body["prompt_optimizer"] = job.enhance_prompt
        if first is not None:
            body["first_frame_image"] = image_ref(first)
        if last is not None:
            body["last_frame_image"] = image_ref(last)
        # Pass-through: any other field (e.g. ``prompt_optimizer``, ``fast_pretreatment``) may be set.
        body.update({k: v for k, v in job.provider_params.items() if k not in _RESERVED})
        return body

    async def _call(self, method: str, path: str, *, phase: str, **kwargs: Any) -> tuple[Any, Response]:
        """``request`` plus the in-band ``base_resp`` check every MiniMax answer needs."""
        params = {**self._group, **kwargs.pop("params", {})}
        body, response = await request(
            self._client, method, path, phase=phase, expect=(200,), headers=self._auth, params=params, **kwargs
        )
        if not isinstance(body, dict):  # a 200 we cannot read: on submit, the task may exist
            error_cls = UnknownOutcome if phase == "submit" else PollFailed
            raise error_cls(f"minimax sent a non-object body during {phase}", retryable=True)
        return body, response

    async def submit(self, job: JobSpec) -> Accepted:
        body = self.build_request(job)
        data, response = await self._call("POST", "/v1/video_generation", phase="submit", json=body)
        rid = request_id_of(response)
        if error := base_resp_error(data, phase="submit", request_id=rid):
            raise error
        task_id = require(data, "task_id", phase="submit")
        if not isinstance(task_id, str | int) or not str(task_id):
            raise UnknownOutcome("minimax answered without a task_id", retryable=True, request_id=rid)
        return Accepted(native_id=str(task_id), request_id=rid)

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """MiniMax's v1 API offers no way to look a job up."""
        return find_without_lookup(self.name, lambda: self.build_request(job))

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        data, response = await self._call(
            "GET", "/v1/query/video_generation", phase="poll", params={"task_id": native_id}
        )
        rid = request_id_of(response)
        status = data.get("status")
        if status == "Fail":  # a failed task carries its reason in base_resp (e.g. 1027)
            resp = data.get("base_resp") if isinstance(data.get("base_resp"), dict) else {}
            code = resp.get("status_code")
            return Upstream(
                status="failed",
                error=UpstreamError(
                    code="moderation_blocked" if code in MODERATION_CODES else f"minimax_{code or 'fail'}",
                    message=str(resp.get("status_msg") or "minimax reported the task failed"),
                    request_id=rid,
                ),
            )
        if error := base_resp_error(data, phase="poll", request_id=rid):
            raise error
        if status in _STATUS:
            return Upstream(status=_STATUS[status])
        if status == "Success":
            file_id = data.get("file_id")
            if not isinstance(file_id, str | int) or not str(file_id):
                raise PollFailed("minimax task succeeded without a file_id", retryable=True, request_id=rid)
            url = await self._download_url(str(file_id))
            return Upstream(status="completed", progress=100, outputs=(UpstreamOutput(index=0, url=url),))
        raise PollFailed(f"minimax answered an unknown task status {status!r}", retryable=True, request_id=rid)

    async def _download_url(self, file_id: str) -> str:
        data, response = await self._call("GET", "/v1/files/retrieve", phase="poll", params={"file_id": file_id})
        if error := base_resp_error(data, phase="poll", request_id=request_id_of(response)):
            raise error
        url = require(data, "file", "download_url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise PollFailed("minimax file has no download_url", retryable=True)
        return url

    def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        return stream_url(self._client, out.url, out.headers)

    async def aclose(self) -> None:
        await self._client.aclose()
