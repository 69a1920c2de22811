# Follows providers.md §10 and, for the audio input, Alibaba's Wan 2.1-2.6 text-to-video API reference
# https://www.alibabacloud.com/help/en/model-studio/legacy-wan-text-to-video-api-reference (checked
# 2026-12-04); that image-to-video takes the same ``audio_url`` is [unverified].
"""Alibaba Wan through DashScope (Model Studio): ``POST /services/aigc/video-generation/video-synthesis``
with ``X-DashScope-Async: enable``, ``GET /tasks/{task_id}``, ``POST /tasks/{task_id}/cancel``.

Wire format per providers.md §10 (medium-high confidence), the Wan 2.2–2.6 "legacy protocol":
``{model, input: {prompt, negative_prompt, img_url | first_frame_url/last_frame_url},
parameters: {size | resolution, duration, seed, prompt_extend, audio}}``. Text-to-video takes a
``W*H`` size; image-to-video takes an upper-case resolution tier and follows the image's shape.
The catalogue names the text-to-video model; a job with a first frame goes to its image-to-video
twin, one with first and last frames to its keyframe twin (fal's convention, see fal.py).
Wan 2.5 and 2.6 take an audio track (``input.audio_url``: wav or mp3, 3-30 s, up to 15 MB) that the
video is made to match (lip sync, rhythm); it is read by URL only, so an audio reference without an
https URL (one of the owner's assets or uploads the gateway can give no link to, see
``worker/input_links``) is refused before any call. Wan has no extend or
edit on this protocol; such jobs are refused.

DashScope documents no idempotency key, so none is sent: a retried submit may create a second
task. Its generic task list (``GET /tasks`` by time, model and status) echoes nothing of the
request, and its answer's shape is [unverified], so it cannot prove a task absent either:
``reconcile`` is ``none``. The newer ``wan2.7``/``wan3.0`` ``input.media`` protocol is too thinly
documented to map; such model ids get the legacy body and DashScope's own 400 if it does not fit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

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
from vidgate.gateway.providers.cancel import cancel_request
from vidgate.gateway.providers.http import make_client, request, request_id_of, require, stream_url
from vidgate.gateway.providers.mapping import (
    HTTPS_INPUT,
    image_link,
    nearest_shape,
    refuse_set,
    resolution_label,
    unsupported,
)
from vidgate.gateway.providers.reconcile import find_without_lookup
from vidgate.gateway.providers.sources import of_kind, other_inputs

DEFAULT_BASE_URL = "https://dashscope-intl.aliyuncs.com/api/v1"
SYNTHESIS = "/services/aigc/video-generation/video-synthesis"
MAX_DATA_URI_BYTES = 10 * 1024 * 1024  # Wan's image cap; larger images go by URL
MAX_SEED = 2_147_483_647

# Native W*H sizes of each tier for text-to-video (Wan 2.2–2.6 API reference mirrors).
TIER_SIZES: dict[str, tuple[str, ...]] = {
    "480P": ("832*480", "480*832", "624*624"),
    "720P": ("1280*720", "720*1280", "960*960", "1088*832", "832*1088"),
    "1080P": ("1920*1080", "1080*1920", "1440*1440", "1632*1248", "1248*1632"),
}
_TIER_BY_SHORT_SIDE = {480: "480P", 720: "720P", 1080: "1080P"}

# Parameters that set what we price on (and input fields we map): provider_params cannot override them.
_RESERVED = frozenset({"model", "size", "resolution", "duration", "audio", "prompt", "img_url"})
_INPUT_KEYS = frozenset({"audio_url", "template"})  # pass-through keys that belong in ``input``
_RATE_LIMITED = ("Throttling",)
_TRANSIENT = frozenset({"InternalError", "InternalError.Algo", "ServiceUnavailable", "SystemError"})
_MODERATION = ("DataInspectionFailed", "DataInspection", "IPInfringementSuspect")

_STATUS: dict[str, UpstreamStatus] = {"PENDING": "queued", "RUNNING": "processing", "SUSPENDED": "processing"}


@dataclass(frozen=True, slots=True)
class _Model:
    kind: str  # "t2v" (size), "i2v" (img_url + resolution), "kf2v" (first/last frame + resolution)
    durations: tuple[int, ...]
    tiers: tuple[str, ...]
    audio: bool = False
    i2v: str | None = None  # the image-to-video twin
    kf2v: str | None = None  # the first-and-last-frame twin


_ALL = ("480P", "720P", "1080P")
_MODELS: dict[str, _Model] = {
    "wan2.5-t2v-preview": _Model("t2v", (5, 10), _ALL, audio=True, i2v="wan2.5-i2v-preview"),
    "wan2.5-i2v-preview": _Model("i2v", (5, 10), _ALL, audio=True),
    # 2.6 and 2.2 limits come from Alibaba's reference pages, not providers.md [unverified].
    "wan2.6-t2v": _Model("t2v", (5, 10, 15), ("720P", "1080P"), audio=True, i2v="wan2.6-i2v"),
    "wan2.6-i2v": _Model("i2v", (5, 10, 15), ("720P", "1080P"), audio=True),
    "wan2.2-t2v-plus": _Model("t2v", (5,), ("480P", "1080P"), i2v="wan2.2-i2v-plus", kf2v="wan2.2-kf2v-flash"),
    "wan2.2-i2v-plus": _Model("i2v", (5,), ("480P", "1080P"), kf2v="wan2.2-kf2v-flash"),
    "wan2.2-i2v-flash": _Model("i2v", (5,), _ALL, kf2v="wan2.2-kf2v-flash"),
    "wan2.2-kf2v-flash": _Model("kf2v", (5,), _ALL),
}


def wan_tier(job: JobSpec) -> str | None:
    return resolution_label(job, _TIER_BY_SHORT_SIDE, upper=True)


def pick_size(tier: str, width: int, height: int) -> str:
    """The tier's native ``W*H`` closest in shape to width x height."""
    return nearest_shape(TIER_SIZES[tier], width, height)


def image_ref(ref: ReferenceImage) -> str:
    """Wan takes URLs or base64 data URLs; small images go inline so a source URL cannot expire."""
    return image_link(ref, MAX_DATA_URI_BYTES, oversize="{role} image is too large to inline and has no URL")


def audio_url(job: JobSpec, model: str, info: _Model | None) -> str | None:
    """The job's audio track as Wan reads it (an https URL), or None when it has none."""
    tracks = of_kind(job, "audio")
    if not tracks:
        return None
    if len(tracks) > 1:
        raise unsupported("wan takes one audio track")
    if info is None or not info.audio:
        raise unsupported(f"wan model {model} takes no audio track")
    if not tracks[0].url.startswith("https://"):
        raise unsupported(f"wan reads an audio track by https URL only; {HTTPS_INPUT}")
    return tracks[0].url


def body_error(data: Any, *, phase: str, request_id: str | None) -> ProviderError:
    """DashScope sometimes answers 200 with ``code``/``message`` and no ``output``: an error."""
    error_cls = Rejected if phase == "submit" else PollFailed
    code = data.get("code") if isinstance(data, dict) else None
    if not isinstance(code, str) or not code:  # no error named: on submit, the task may exist
        unsure = UnknownOutcome if phase == "submit" else PollFailed
        return unsure(f"dashscope answered without an output during {phase}", retryable=True, request_id=request_id)
    message = str(data.get("message") or code)
    if code.startswith(_RATE_LIMITED):
        return error_cls(message, retryable=True, request_id=request_id, code="upstream_rate_limited")
    return error_cls(message, retryable=code in _TRANSIENT, request_id=request_id, code=code)


class AlibabaProvider:
    """Submits Wan tasks to DashScope, polls them, cancels pending ones."""

    name = "alibaba"
    # Only PENDING tasks can be cancelled (DashScope SDK); for a running task the cancel call is
    # refused, cancel() gives False and polling continues.
    cancellable = True
    reconcile = "none"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        # Sent per call, not as a client default, so open_output never hands the key to the OSS host.
        self._auth = {"Authorization": f"Bearer {config.revealed_api_key()}"}
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL)

    def _model_for(self, job: JobSpec) -> tuple[str, _Model | None]:
        """The DashScope model that takes this job's images, and what it accepts."""
        model = job.provider_model
        info = _MODELS.get(model)
        first, last = job.reference("first_frame"), job.reference("last_frame")
        if last is not None and first is None:
            raise unsupported("wan needs a first_frame image to go with a last_frame")
        if info is None:
            return model, None
        if last is not None:
            if info.kind != "kf2v":
                if not info.kf2v:
                    raise unsupported(f"wan model {model} takes no last_frame image")
                model = info.kf2v
        elif first is not None:
            # An i2v model takes it as is, and so does a keyframe model (the last frame is optional).
            if info.kind == "t2v":
                if not info.i2v:
                    raise unsupported(f"wan model {model} takes no first_frame image")
                model = info.i2v
        elif info.kind != "t2v":
            raise unsupported(f"wan model {model} needs a first_frame image")
        return model, _MODELS[model]

    def build_request(self, job: JobSpec) -> dict[str, Any]:
        """The create body for ``job``; inputs Wan cannot take are refused before any call."""
        if job.op != "generate":
            raise unsupported(f"wan has no {job.op} operation here")
        if unknown_roles := other_inputs(job, {"role:first_frame", "role:last_frame", "audio:reference"}):
            raise unsupported(
                f"wan takes first_frame and last_frame images and an audio track, not {', '.join(unknown_roles)}"
            )
        if job.sample_count != 1:
            raise unsupported("wan makes one video per task")
        refuse_set(job, ("person_generation", "compression_quality", "resize_mode"), "wan")
        if job.seed is not None and not 0 <= job.seed <= MAX_SEED:
            raise unsupported(f"wan takes seeds from 0 to {MAX_SEED}, not {job.seed}")
        model, info = self._model_for(job)
        tier = wan_tier(job)
        if info is not None:
            if job.audio and not info.audio:
                raise unsupported(f"wan model {model} cannot generate audio")
            if tier not in info.tiers:
                raise unsupported(f"wan model {model} makes {', '.join(info.tiers)} videos, not {tier or job.size}")
            if job.duration not in info.durations:
                allowed = ", ".join(str(d) for d in info.durations)
                raise unsupported(f"wan model {model} makes {allowed} s videos, not {job.duration}")
        first, last = job.reference("first_frame"), job.reference("last_frame")
        # A model we do not know is shaped by its images: last frame → keyframe, first → i2v.
        kind = info.kind if info else ("kf2v" if last else "i2v" if first else "t2v")

        inputs: dict[str, Any] = {"prompt": job.prompt}
        if job.negative_prompt:
            inputs["negative_prompt"] = job.negative_prompt
        if kind == "kf2v":
            if first is not None:
                inputs["first_frame_url"] = image_ref(first)
            if last is not None:
                inputs["last_frame_url"] = image_ref(last)
        elif first is not None:
            inputs["img_url"] = image_ref(first)

        params: dict[str, Any] = {}
        for key, value in job.provider_params.items():
            if key in _RESERVED:
                continue
            (inputs if key in _INPUT_KEYS else params)[key] = value
        if audio := audio_url(job, model, info):
            inputs["audio_url"] = audio  # an audio reference wins over one in provider_params
        if kind == "t2v":
            params["size"] = (
                pick_size(tier, job.width, job.height) if tier in TIER_SIZES else f"{job.width}*{job.height}"
            )
        elif tier:
            params["resolution"] = tier
        params["duration"] = job.duration
        if job.seed is not None:
            params["seed"] = job.seed
        if job.enhance_prompt is not None:
            params["prompt_extend"] = job.enhance_prompt
        if info is not None and info.audio:
            params["audio"] = job.audio  # audio-capable models default to audio on
        return {"model": model, "input": inputs, "parameters": params}

    async def submit(self, job: JobSpec) -> Accepted:
        body = self.build_request(job)
        data, response = await request(
            self._client,
            "POST",
            SYNTHESIS,
            phase="submit",
            json=body,
            headers={**self._auth, "X-DashScope-Async": "enable"},
        )
        rid = request_id_of(response) or (data.get("request_id") if isinstance(data, dict) else None)
        output = data.get("output") if isinstance(data, dict) else None
        if not isinstance(output, dict):
            raise body_error(data, phase="submit", request_id=rid)
        task_id = output.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise UnknownOutcome("dashscope answered without a task_id", retryable=True, request_id=rid)
        return Accepted(native_id=task_id, request_id=rid)

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """DashScope offers no way to look a job up."""
        return find_without_lookup(self.name, lambda: self.build_request(job))

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        data, response = await request(
            self._client, "GET", f"/tasks/{quote(native_id, safe='')}", phase="poll", expect=(200,), headers=self._auth
        )
        rid = request_id_of(response) or (data.get("request_id") if isinstance(data, dict) else None)
        output = data.get("output") if isinstance(data, dict) else None
        if not isinstance(output, dict):
            raise body_error(data, phase="poll", request_id=rid)
        status = require(output, "task_status")
        if status in _STATUS:
            return Upstream(status=_STATUS[status])
        if status == "SUCCEEDED":
            url = output.get("video_url")
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise PollFailed("dashscope task succeeded without a video_url", retryable=True, request_id=rid)
            return Upstream(
                status="completed",
                progress=100,
                outputs=(UpstreamOutput(index=0, url=url),),
                seconds=_seconds(data.get("usage")),
            )
        if status == "FAILED":
            code = str(output.get("code") or "FAILED")
            return Upstream(
                status="failed",
                error=UpstreamError(
                    code="moderation_blocked" if code.startswith(_MODERATION) else code,
                    message=str(output.get("message") or "wan task failed"),
                    request_id=rid,
                ),
            )
        if status == "CANCELED":
            return Upstream(status="cancelled")
        if status == "UNKNOWN":  # the task expired (kept ~24 h) or the id is unknown
            return Upstream(
                status="failed",
                error=UpstreamError("task_unknown", "dashscope no longer knows this task (expired or unknown id)", rid),
            )
        raise PollFailed(f"dashscope answered an unknown task status {status!r}", retryable=True, request_id=rid)

    def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        return stream_url(self._client, out.url, out.headers)

    async def cancel(self, native_id: str) -> bool:
        """True when DashScope accepted the cancel; a refusal (not PENDING, unknown id) gives False."""
        accepted, data = await cancel_request(
            self._client,
            "POST",
            f"/tasks/{quote(native_id, safe='')}/cancel",
            expect=(200, 202, 204),
            headers=self._auth,
        )
        # A refusal may also come as HTTP 200 with a ``code`` [unverified].
        return accepted and not (isinstance(data, dict) and data.get("code"))

    async def aclose(self) -> None:
        await self._client.aclose()


def _seconds(usage: Any) -> float | None:
    """Seconds produced: ``video_duration`` (legacy) or ``output_video_duration``/``duration`` (newer)."""
    if not isinstance(usage, dict):
        return None
    for key in ("video_duration", "output_video_duration", "duration"):
        if isinstance(usage.get(key), int | float):
            return float(usage[key])
    return None
