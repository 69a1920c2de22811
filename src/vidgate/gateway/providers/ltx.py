# Follows https://docs.ltx.video/async-jobs, the API reference https://docs.ltx.io/openapi.json and
# https://docs.ltx.video/models (checked 2026-12-04).
"""Lightricks' LTX API, asynchronous (v2): ``POST /v2/{endpoint}`` answers 202 ``{id, created_at}``,
``GET /v2/{endpoint}/{id}`` answers ``pending``, ``processing``, ``completed`` (``result.video_url``)
or ``failed`` (``error.type``, ``error.message``).

Text-to-video and image-to-video map here (``/v2/text-to-video``, ``/v2/image-to-video``; a
``last_frame`` image becomes ``last_frame_uri``). The other generation endpoints a later change
maps take inputs our spec has no field for yet: ``/v2/audio-to-video`` (``audio_uri``, optional
``image_uri``; billed per second of input audio), ``/v2/extend`` (``video_uri``, ``duration``,
``mode`` start/end, ``context``) and ``/v2/retake`` (``video_uri``, ``start_time``, ``duration``,
``mode`` replace_audio/replace_video/replace_audio_and_video). The v1 endpoints of the same names
answer the MP4 itself, synchronously, which a worker cannot track; they are not used.

The status path needs the endpoint, so the native id is ``{endpoint}/{id}``. Bytes are a plain
GET on ``result.video_url`` (a storage link, kept 24 hours after the job ends; the key is sent per
call, never as a client default).

What the docs leave open, and what is done here instead of guessing:
- No cancel, no list of jobs and no idempotency key or caller-chosen id are documented: the
  adapter cannot cancel and ``reconcile`` is ``none``.
- The model matrix on docs.ltx.video/models is written for LTX-2 (1080p, 1440p, 4K at 16:9; 6-10 s,
  and 12-20 s only for the fast model at 1080p and 24/25 fps). LTX-2.3 is taken to keep that
  matrix and to add portrait (9:16) sizes, as its request enums and resellers show [unverified].
  ``fps`` is left to LTX's default unless ``provider_params`` sets it.
- The request schema names no seed or negative prompt; jobs using them are refused.
- Inline images: LTX takes an https URL or a ``data:`` URI; the inline size cap is not stated
  here, so images up to ``MAX_INLINE`` go inline and larger ones by URL [unverified].
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
    UnknownOutcome,
    Upstream,
    UpstreamError,
    UpstreamOutput,
    UpstreamStatus,
)
from vidgate.gateway.providers.cancel import CannotCancel
from vidgate.gateway.providers.http import make_client, request, request_id_of, require, stream_url
from vidgate.gateway.providers.mapping import image_link, other_roles, refuse_set, unsupported
from vidgate.gateway.providers.reconcile import find_without_lookup

DEFAULT_BASE_URL = "https://api.ltx.video"
MAX_INLINE = 7 * 1024 * 1024  # inline image cap [unverified]; larger images go by URL
# Long side by short side, landscape; portrait swaps them.
SIZES = {1080: (1920, 1080), 1440: (2560, 1440), 2160: (3840, 2160)}
_SHORT_SIDE = {"1080p": 1080, "1440p": 1440, "2k": 1440, "4k": 2160}
_ROLES = ("first_frame", "last_frame")
_LONG = (6, 8, 10, 12, 14, 16, 18, 20)
_SHORT = (6, 8, 10)
_RESERVED = frozenset({"model", "prompt", "duration", "resolution", "image_uri", "last_frame_uri"})

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
        """The endpoint and JSON body; ``provider_params`` may add fields (``fps``, ``camera_motion``) but
        not override the mapped ones."""
        model = _MODELS.get(job.provider_model)
        if model is None:
            raise unsupported(f"ltx has no model {job.provider_model}")
        refuse_set(job, ("seed",), "ltx")
        if job.negative_prompt:
            raise unsupported("ltx takes no negative prompt")
        if job.sample_count != 1:
            raise unsupported("ltx makes one video per job")
        if other := other_roles(job, _ROLES):
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

    async def submit(self, job: JobSpec) -> Accepted:
        endpoint, body = self.build_request(job)
        data, response = await request(
            self._client, "POST", f"/v2/{endpoint}", phase="submit", json=body, headers=self._auth
        )
        job_id = require(data, "id", phase="submit")
        if not isinstance(job_id, str) or not job_id:
            raise UnknownOutcome("ltx answered without a job id", retryable=True)
        return Accepted(native_id=f"{endpoint}/{job_id}", request_id=request_id_of(response))

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """LTX offers no way to look a job up."""
        return find_without_lookup(self.name, lambda: self.build_request(job))

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        endpoint, _, job_id = native_id.partition("/")
        data, response = await request(
            self._client,
            "GET",
            f"/v2/{quote(endpoint, safe='')}/{quote(job_id, safe='')}",
            phase="poll",
            expect=(200,),
            headers=self._auth,
        )
        status = require(data, "status")
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
