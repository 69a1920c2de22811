# Follows https://docs.x.ai/developers/rest-api-reference/inference/videos and
# https://docs.x.ai/developers/model-capabilities/video (checked 2026-12-04).
"""xAI's Grok Imagine video API: ``POST /v1/videos/generations``, ``GET /v1/videos/{request_id}``.

A create answers ``{"request_id": …}``; the poll answers ``status`` ``pending`` (with ``progress``
0–99), ``done`` (``video.url``, ``video.duration``, ``video.respect_moderation``), ``failed``
(``error.code`` and ``error.message``, still HTTP 200) or ``expired``. Bytes are a plain GET on the
temporary ``video.url`` (a CDN link: the key is sent per call, never as a client default).

What the docs leave open, and what is done here instead of guessing:
- No cancel, no list of requests and no idempotency key or caller-chosen id are documented: the
  adapter cannot cancel (the gateway stops tracking and voids the hold) and ``reconcile`` is ``none``.
- A ``done`` video whose ``respect_moderation`` is false is treated as blocked by moderation (the
  docs name the flag but not what a false means for ``url``).
- The size limit of an inline (``data:``) image is not documented: images up to ``MAX_INLINE`` are
  sent inline, larger ones by their https URL.
- The REST reference lists no audio switch (only the gRPC SDK has ``generate_audio``): every video
  has audio, so a job that asks for none is refused rather than silently given sound.
- Errors come as ``{"code": …, "error": …}``; which statuses xAI uses for which refusals (an
  invalid key is documented as a 400) is not tabulated, so the usual 4xx/5xx rules apply.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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
)
from vidgate.gateway.providers.cancel import CannotCancel
from vidgate.gateway.providers.http import make_client, poll_status, request, request_id_of, stream_url, submitted_id
from vidgate.gateway.providers.mapping import (
    image_link,
    nearest_shape,
    other_roles,
    refuse_set,
    resolution_label,
    unsupported,
)
from vidgate.gateway.providers.reconcile import find_without_lookup

DEFAULT_BASE_URL = "https://api.x.ai/v1"
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
RESOLUTIONS = {480: "480p", 720: "720p"}
MIN_SECONDS, MAX_SECONDS = 1, 15
MAX_REFERENCES = 7  # reference-to-video takes up to seven images
MAX_INLINE = 10 * 1024 * 1024  # inline image cap [unverified]; larger images go by URL
_ROLES = ("first_frame", "reference")


def pick_aspect(job: JobSpec) -> str:
    """The job's ratio when xAI takes it, else the xAI ratio nearest in shape."""
    if job.aspect_ratio in ASPECT_RATIOS:
        return job.aspect_ratio  # type: ignore[return-value]
    return nearest_shape(ASPECT_RATIOS, job.width, job.height)


def _image(url: str) -> dict[str, str]:
    return {"url": url}


class XaiProvider(CannotCancel):
    """Submits to xAI's video generations endpoint and polls the deferred request."""

    name = "xai"
    reconcile = "none"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._auth = {"Authorization": f"Bearer {config.revealed_api_key()}"}
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL)

    def build_request(self, job: JobSpec) -> dict[str, Any]:
        """The create body; mapped fields win over ``provider_params`` (e.g. ``user``)."""
        refuse_set(job, ("seed",), "xai")
        if job.negative_prompt:
            raise unsupported("xai takes no negative prompt")
        if not job.audio:
            raise unsupported("xai video always has audio")
        if job.sample_count != 1:
            raise unsupported("xai makes one video per request")
        if other := other_roles(job, _ROLES):
            raise unsupported(f"xai takes first_frame and reference images, not {', '.join(other)}")
        if not MIN_SECONDS <= job.duration <= MAX_SECONDS:
            raise unsupported(f"xai makes {MIN_SECONDS} to {MAX_SECONDS} s videos, not {job.duration} s")
        resolution = resolution_label(job, RESOLUTIONS)
        if resolution not in RESOLUTIONS.values():
            raise unsupported(f"xai makes 480p or 720p video, not {job.resolution or f'{job.width}x{job.height}'}")
        body: dict[str, Any] = {
            "model": job.provider_model,
            "prompt": job.prompt,
            "duration": job.duration,
            "aspect_ratio": pick_aspect(job),
            "resolution": resolution,
        }
        first = job.reference("first_frame")
        references = [r for r in job.references if r.role == "reference"]
        if first is not None and references:
            raise unsupported("xai takes a first_frame image or reference images, not both")
        if len(references) > MAX_REFERENCES:
            raise unsupported(f"xai takes at most {MAX_REFERENCES} reference images")
        if first is not None:
            body["image"] = _image(image_link(first, MAX_INLINE))
        if references:
            body["reference_images"] = [_image(image_link(r, MAX_INLINE)) for r in references]
        return {**dict(job.provider_params), **body}

    async def submit(self, job: JobSpec) -> Accepted:
        body = self.build_request(job)
        data, response = await request(
            self._client, "POST", "/videos/generations", phase="submit", json=body, headers=self._auth
        )
        request_id = submitted_id(data, "request_id", "xai answered without a request id")
        return Accepted(native_id=request_id, request_id=request_id_of(response))

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """xAI offers no way to look a request up."""
        return find_without_lookup(self.name, lambda: self.build_request(job))

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        data, response, status = await poll_status(self._client, f"/videos/{quote(native_id, safe='')}", self._auth)
        progress = data.get("progress")
        pct = max(0, min(100, int(progress))) if isinstance(progress, int | float) else None
        if status == "pending":
            return Upstream(status="processing" if pct else "queued", progress=pct)
        rid = request_id_of(response)
        video = data.get("video") if isinstance(data.get("video"), dict) else {}
        if status == "done":
            if video.get("respect_moderation") is False:
                error = UpstreamError("moderation_blocked", "xai withheld the video under its content policy", rid)
                return Upstream(status="failed", error=error)
            url = video.get("url")
            if not isinstance(url, str) or not url:
                raise PollFailed("xai request is done without video.url", retryable=True)
            seconds = video.get("duration")
            return Upstream(
                status="completed",
                progress=100,
                outputs=(UpstreamOutput(index=0, url=url),),
                seconds=float(seconds) if isinstance(seconds, int | float) and seconds > 0 else None,
            )
        if status == "failed":
            err = data.get("error") if isinstance(data.get("error"), dict) else {}
            code = str(err.get("code") or "generation_failed")
            message = str(err.get("message") or "xai video generation failed")
            return Upstream(status="failed", error=UpstreamError(code, message, rid))
        if status == "expired":
            return Upstream(status="failed", error=UpstreamError("expired", "xai let the request expire", rid))
        raise PollFailed(f"xai answered an unknown status {status!r}", retryable=True)

    def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        return stream_url(self._client, out.url, out.headers)

    async def aclose(self) -> None:
        await self._client.aclose()
