# Follows https://docs.ltx.video/async-jobs, the API reference https://docs.ltx.io/openapi.json,
# https://docs.ltx.video/models, and for the operations on a video or audio input
# https://docs.ltx.video/api-documentation/api-reference/video-generation/extend, .../retake,
# .../audio-to-video and https://docs.ltx.video/input-formats (checked 2026-12-04).
"""Lightricks' LTX API, asynchronous (v2): ``POST /v2/{endpoint}`` answers 202 ``{id, created_at}``,
``GET /v2/{endpoint}/{id}`` answers ``pending``, ``processing``, ``completed`` (``result.video_url``)
or ``failed`` (``error.type``, ``error.message``).

What maps where:
- generate: ``/v2/text-to-video``, or ``/v2/image-to-video`` with a first frame (a ``last_frame``
  image becomes ``last_frame_uri``); with an audio reference, ``/v2/audio-to-video`` (``audio_uri``,
  optional first frame as ``image_uri``; the audio, 2-20 s, sets the video's length; 1080p only).
- extend: ``/v2/extend`` (``video_uri``, ``duration`` = the seconds added, 2-20; ``mode`` ``end``
  unless ``provider_params`` says ``start``; ``context`` from ``provider_params``). The output keeps
  the input's resolution, and has audio when the input has.
- edit: ``/v2/retake`` (``video_uri``, ``start_time`` from ``provider_params`` or 0, ``duration`` =
  the job's seconds, at least 2; ``mode`` ``replace_audio_and_video`` for a job with audio, else
  ``replace_video``, which keeps the input's sound).
The operations are documented for ``ltx-2-3-pro`` (their default model); other models are refused
before any call. The v1 endpoints of the same names answer the MP4 itself, synchronously, which a
worker cannot track; they are not used.

The status path needs the endpoint, so the native id is ``{endpoint}/{id}``. Bytes are a plain
GET on ``result.video_url`` (a storage link, kept 24 hours after the job ends; the key is sent per
call, never as a client default).

Inputs: LTX reads an https URL (images up to 15 MB, video and audio up to 32 MB) or a ``data:`` URI
(up to 7 MB encoded for images, 15 MB for video and audio). Media go inline within those caps,
else by their own https URL; an input over the cap with no URL (one of the owner's assets or
uploads) is refused, so routing tries another provider. LTX's own upload endpoint (``ltx://``
storage URIs) is not used: its request shape is not in the pages above.

What the docs leave open, and what is done here instead of guessing:
- No cancel, no list of jobs and no idempotency key or caller-chosen id are documented: the
  adapter cannot cancel and ``reconcile`` is ``none``.
- The model matrix on docs.ltx.video/models is written for LTX-2 (1080p, 1440p, 4K at 16:9; 6-10 s,
  and 12-20 s only for the fast model at 1080p and 24/25 fps). LTX-2.3 is taken to keep that
  matrix and to add portrait (9:16) sizes, as its request enums and resellers show [unverified].
  ``fps`` is left to LTX's default unless ``provider_params`` sets it.
- The request schema names no seed or negative prompt; jobs using them are refused.
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
    Upstream,
    UpstreamError,
    UpstreamOutput,
    UpstreamStatus,
)
from vidgate.gateway.providers.cancel import CannotCancel
from vidgate.gateway.providers.http import make_client, poll_status, request, request_id_of, stream_url, submitted_id
from vidgate.gateway.providers.mapping import image_link, refuse_set, unsupported
from vidgate.gateway.providers.reconcile import find_without_lookup
from vidgate.gateway.providers.sources import media_uri, of_kind, other_inputs, source_video

DEFAULT_BASE_URL = "https://api.ltx.video"
MAX_INLINE = 7 * 1024 * 1024  # the cap on an image's data: URI; larger images go by URL
MAX_MEDIA_INLINE = 15 * 1024 * 1024  # the cap on a video's or audio's data: URI
# Long side by short side, landscape; portrait swaps them.
SIZES = {1080: (1920, 1080), 1440: (2560, 1440), 2160: (3840, 2160)}
_SHORT_SIDE = {"1080p": 1080, "1440p": 1440, "2k": 1440, "4k": 2160}
_ROLES = ("first_frame", "last_frame")
_LONG = (6, 8, 10, 12, 14, 16, 18, 20)
_SHORT = (6, 8, 10)
_RESERVED = frozenset({"model", "prompt", "duration", "resolution", "image_uri", "last_frame_uri"})
# The model the operations on an input (extend, retake, audio-to-video) are documented for.
_OPERATIONS_MODEL = "ltx-2-3-pro"
_INPUT_RESERVED = frozenset({"model", "prompt", "duration", "video_uri", "audio_uri", "image_uri"})
_AUDIO_SIZES = ("1920x1080", "1080x1920")

_STATUS: dict[str, UpstreamStatus] = {"pending": "queued", "processing": "processing"}
_MODERATION = frozenset({"content_filtered_error"})


@dataclass(frozen=True, slots=True)
class _Model:
    """What one LTX model takes: durations per short side, and whether it interpolates to a last frame."""

    durations: dict[int, tuple[int, ...]]
    portrait: bool = True
    last_frame: bool = True


_MODELS: dict[str, _Model] = {
    "ltx-2-3-fast": _Model({1080: _LONG, 1440: _SHORT, 2160: _SHORT}),
    "ltx-2-3-pro": _Model({1080: _SHORT, 1440: _SHORT, 2160: _SHORT}),
    # LTX-2 is deprecated upstream; kept so a catalogue of one's own can still name it.
    "ltx-2-fast": _Model({1080: _LONG, 1440: _SHORT, 2160: _SHORT}, portrait=False, last_frame=False),
    "ltx-2-pro": _Model({1080: _SHORT, 1440: _SHORT, 2160: _SHORT}, portrait=False, last_frame=False),
}


def pick_size(job: JobSpec, model: _Model) -> tuple[int, str]:
    """The short side and LTX's ``WIDTHxHEIGHT`` for the job's resolution and orientation."""
    short = _SHORT_SIDE.get((job.resolution or "").lower(), min(job.width, job.height))
    if short not in SIZES:
        raise unsupported(f"ltx makes 1080p, 1440p or 4K video, not {job.resolution or f'{job.width}x{job.height}'}")
    long, side = SIZES[short]
    if job.height > job.width:
        if not model.portrait:
            raise unsupported(f"ltx model {job.provider_model} makes landscape video only")
        return short, f"{side}x{long}"
    return short, f"{long}x{side}"


class LtxProvider(CannotCancel):
    """Submits to LTX's async v2 API and polls the job."""

    name = "ltx"
    reconcile = "none"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._auth = {"Authorization": f"Bearer {config.revealed_api_key()}"}
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL)

    def build_request(self, job: JobSpec) -> tuple[str, dict[str, Any]]:
        """The endpoint and JSON body; ``provider_params`` may add fields (``fps``, ``camera_motion``,
        ``mode``, ``context``, ``start_time``) but not override the mapped ones."""
        model = _MODELS.get(job.provider_model)
        if model is None:
            raise unsupported(f"ltx has no model {job.provider_model}")
        refuse_set(job, ("seed",), "ltx")
        if job.negative_prompt:
            raise unsupported("ltx takes no negative prompt")
        if job.sample_count != 1:
            raise unsupported("ltx makes one video per job")
        if job.op == "extend":
            return "extend", self._extend(job)
        if job.op == "edit":
            return "retake", self._retake(job)
        if of_kind(job, "audio"):
            return "audio-to-video", self._audio_to_video(job, model)
        return self._generate(job, model)

    def _generate(self, job: JobSpec, model: _Model) -> tuple[str, dict[str, Any]]:
        if other := other_inputs(job, {"role:first_frame", "role:last_frame"}):
            raise unsupported(f"ltx takes first_frame and last_frame images, not {', '.join(other)}")
        short, resolution = pick_size(job, model)
        if job.duration not in model.durations[short]:
            allowed = ", ".join(str(d) for d in model.durations[short])
            raise unsupported(f"ltx {job.provider_model} makes {allowed} s videos at {short}p, not {job.duration} s")
        body: dict[str, Any] = {
            "prompt": job.prompt,
            "model": job.provider_model,
            "duration": job.duration,
            "resolution": resolution,
            "generate_audio": job.audio,
        }
        first, last = job.reference("first_frame"), job.reference("last_frame")
        if last is not None and (first is None or not model.last_frame):
            raise unsupported(f"ltx {job.provider_model} takes a last_frame image only after a first_frame one")
        endpoint = "text-to-video"
        if first is not None:
            endpoint = "image-to-video"
            body["image_uri"] = image_link(first, MAX_INLINE)
        if last is not None:
            body["last_frame_uri"] = image_link(last, MAX_INLINE)
        extra = {k: v for k, v in job.provider_params.items() if k not in _RESERVED}
        return endpoint, {**extra, **body}

    def _on_input(self, job: JobSpec, what: str, allowed: set[str]) -> dict[str, Any]:
        """The fields every operation on an input shares, after refusing what it cannot take."""
        if job.provider_model != _OPERATIONS_MODEL:
            raise unsupported(f"ltx {what} runs on {_OPERATIONS_MODEL}, not {job.provider_model}")
        if other := other_inputs(job, allowed):
            raise unsupported(f"ltx {what} takes no {', '.join(other)}")
        extra = {k: v for k, v in job.provider_params.items() if k not in _INPUT_RESERVED}
        return {**extra, "model": job.provider_model}

    def _extend(self, job: JobSpec) -> dict[str, Any]:
        body = self._on_input(job, "extend", {"video:source"})
        if not 2 <= job.duration <= 20:
            raise unsupported(f"ltx extends a video by 2 to 20 s, not {job.duration} s")
        body.setdefault("mode", "end")
        video = media_uri(source_video(job, "ltx"), MAX_MEDIA_INLINE, "ltx")
        return {**body, "video_uri": video, "duration": job.duration, "prompt": job.prompt}

    def _retake(self, job: JobSpec) -> dict[str, Any]:
        body = self._on_input(job, "retake", {"video:source"})
        if job.duration < 2:
            raise unsupported(f"ltx retakes a section of at least 2 s, not {job.duration} s")
        body.setdefault("start_time", 0)
        body.setdefault("mode", "replace_audio_and_video" if job.audio else "replace_video")
        video = media_uri(source_video(job, "ltx"), MAX_MEDIA_INLINE, "ltx")
        return {**body, "video_uri": video, "duration": job.duration, "prompt": job.prompt}

    def _audio_to_video(self, job: JobSpec, model: _Model) -> dict[str, Any]:
        body = self._on_input(job, "audio-to-video", {"audio:reference", "role:first_frame"})
        if pick_size(job, model)[0] != 1080:
            raise unsupported("ltx audio-to-video makes 1080p video only")
        audio = of_kind(job, "audio")
        if len(audio) != 1:
            raise unsupported("ltx audio-to-video takes one audio reference")
        body["resolution"] = _AUDIO_SIZES[1] if job.height > job.width else _AUDIO_SIZES[0]
        body["audio_uri"] = media_uri(audio[0], MAX_MEDIA_INLINE, "ltx")
        if (first := job.reference("first_frame")) is not None:
            body["image_uri"] = image_link(first, MAX_INLINE)
        return {**body, "prompt": job.prompt}

    async def submit(self, job: JobSpec) -> Accepted:
        endpoint, body = self.build_request(job)
        data, response = await request(
            self._client, "POST", f"/v2/{endpoint}", phase="submit", json=body, headers=self._auth
        )
        job_id = submitted_id(data, "id", "ltx answered without a job id")
        return Accepted(native_id=f"{endpoint}/{job_id}", request_id=request_id_of(response))

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """LTX offers no way to look a job up."""
        return find_without_lookup(self.name, lambda: self.build_request(job))

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        endpoint, _, job_id = native_id.partition("/")
        path = f"/v2/{quote(endpoint, safe='')}/{quote(job_id, safe='')}"
        data, response, status = await poll_status(self._client, path, self._auth)
        if status in _STATUS:
            return Upstream(status=_STATUS[status])
        if status == "completed":
            result = data.get("result")
            url = result.get("video_url") if isinstance(result, dict) else None
            if not isinstance(url, str) or not url:
                raise PollFailed("ltx job completed without result.video_url", retryable=True)
            return Upstream(status="completed", progress=100, outputs=(UpstreamOutput(index=0, url=url),))
        if status == "failed":
            err = data.get("error") if isinstance(data.get("error"), dict) else {}
            kind = str(err.get("type") or "api_error")
            error = UpstreamError(
                code="moderation_blocked" if kind in _MODERATION else kind,
                message=str(err.get("message") or "ltx job failed"),
                request_id=request_id_of(response),
            )
            return Upstream(status="failed", error=error)
        raise PollFailed(f"ltx answered an unknown status {status!r}", retryable=True)

    def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        return stream_url(self._client, out.url, out.headers)

    async def aclose(self) -> None:
        await self._client.aclose()
