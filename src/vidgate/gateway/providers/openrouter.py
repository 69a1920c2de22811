# Follows https://openrouter.ai/docs/api/api-reference/videos, the create reference
# https://openrouter.ai/docs/api/api-reference/video-generation/create-videos and
# https://openrouter.ai/docs/cookbook/video-generation/video-generation-webhooks (checked 2026-12-04).
"""OpenRouter's video API: ``POST /api/v1/videos`` answers 202 ``{id, polling_url, status}``,
``GET /api/v1/videos/{id}`` answers the job, ``GET /api/v1/videos/{id}/content?index=N`` streams it.

Statuses are ``pending``, ``in_progress``, ``completed`` (``unsigned_urls``: the authenticated
content proxy, one URL per output), ``failed`` (``error``, a string), ``cancelled`` and ``expired``.
The job is polled at ``/videos/{id}`` under the configured base URL rather than at the answer's
``polling_url``, so a poll never leaves the configured host. The key is sent per call, and to an
output URL only when it is on the API's own host (the proxy needs it; a signed storage URL does not).

OpenRouter can instead notify a ``callback_url`` (HTTPS; or a workspace default) when a job ends,
with a ``video.generation.completed|failed|cancelled|expired`` event signed with the workspace's
webhook signing secret (HMAC-SHA256 over the raw body and a timestamp, carried in an
``X-OpenRouter-Signature: t=…,v1=…`` header as third-party receivers describe it; the exact signed
string is not in the pages read here [unverified]). The gateway polls on its own schedule and runs
no receiver, so no ``callback_url`` is sent.

What the docs leave open, and what is done here instead of guessing:
- No cancel endpoint, no list of jobs and no idempotency key or caller-chosen id are documented:
  the adapter cannot cancel and ``reconcile`` is ``none``.
- What each model takes (``supported_durations``, ``supported_resolutions``, frame types, seed,
  audio) is published per model by ``GET /api/v1/videos/models`` and answered with a 400 when out of
  set; the catalogue states it per model, so the adapter maps what the job asks and leaves the
  per-model check to that 400. A resolution is sent in the catalogue's spelling (``720p``, ``4K``).
- There is no negative-prompt field (only per-provider ``provider.options``), so such jobs are refused.
- The inline (``data:``) image size cap is not documented: images up to ``MAX_INLINE`` go inline,
  larger ones by their https URL [unverified].
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlsplit

from vidgate.gateway.providers.base import (
    Accepted,
    JobSpec,
    PollFailed,
    ProviderConfig,
    ReferenceImage,
    Upstream,
    UpstreamError,
    UpstreamOutput,
    UpstreamStatus,
)
from vidgate.gateway.providers.cancel import CannotCancel
from vidgate.gateway.providers.http import make_client, poll_status, request, request_id_of, stream_url, submitted_id
from vidgate.gateway.providers.mapping import image_link, other_roles, unsupported
from vidgate.gateway.providers.reconcile import find_without_lookup

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
MAX_INLINE = 10 * 1024 * 1024  # inline image cap [unverified]; larger images go by URL
_ROLES = ("first_frame", "last_frame", "reference")
_STATUS: dict[str, UpstreamStatus] = {"pending": "queued", "in_progress": "processing"}


def _image_url(ref: ReferenceImage) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": image_link(ref, MAX_INLINE)}}


class OpenRouterProvider(CannotCancel):
    """Submits to OpenRouter's video API and polls the job."""

    name = "openrouter"
    reconcile = "none"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._auth = {"Authorization": f"Bearer {config.revealed_api_key()}"}
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL)
        self._host = urlsplit(self._client.base_url).netloc

    def build_request(self, job: JobSpec) -> dict[str, Any]:
        """The create body; mapped fields win over ``provider_params`` (e.g. ``provider`` options)."""
        if job.negative_prompt:
            raise unsupported("openrouter takes no negative prompt")
        if job.sample_count != 1:
            raise unsupported("openrouter makes one video per job")
        if other := other_roles(job, _ROLES):
            raise unsupported(f"openrouter takes first_frame, last_frame and reference images, not {', '.join(other)}")
        body: dict[str, Any] = {
            "model": job.provider_model,
            "prompt": job.prompt,
            "duration": job.duration,
            "generate_audio": job.audio,
        }
        if job.resolution:
            body["resolution"] = job.resolution
        if job.aspect_ratio:
            body["aspect_ratio"] = job.aspect_ratio
        if job.seed is not None:
            body["seed"] = job.seed
        frames = [{**_image_url(r), "frame_type": r.role} for r in job.references if r.role != "reference"]
        if frames:
            body["frame_images"] = frames
        if refs := [_image_url(r) for r in job.references if r.role == "reference"]:
            body["input_references"] = refs
        return {**dict(job.provider_params), **body}

    async def submit(self, job: JobSpec) -> Accepted:
        body = self.build_request(job)
        data, response = await request(self._client, "POST", "/videos", phase="submit", json=body, headers=self._auth)
        job_id = submitted_id(data, "id", "openrouter answered without a job id")
        return Accepted(native_id=job_id, request_id=request_id_of(response))

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """OpenRouter offers no way to look a job up."""
        return find_without_lookup(self.name, lambda: self.build_request(job))

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        data, response, status = await poll_status(self._client, f"/videos/{quote(native_id, safe='')}", self._auth)
        if status in _STATUS:
            return Upstream(status=_STATUS[status])
        rid = request_id_of(response)
        if status == "completed":
            urls = data.get("unsigned_urls") or data.get("urls")
            if not isinstance(urls, list) or not urls or not all(isinstance(u, str) and u for u in urls):
                raise PollFailed("openrouter job completed without output URLs", retryable=True)
            return Upstream(
                status="completed", progress=100, outputs=tuple(self._output(i, u) for i, u in enumerate(urls))
            )
        if status in ("failed", "expired"):
            message = data.get("error")
            text = message if isinstance(message, str) and message else f"openrouter job {status}"
            code = "expired" if status == "expired" else "generation_failed"
            return Upstream(status="failed", error=UpstreamError(code, text, rid))
        if status == "cancelled":
            return Upstream(status="cancelled")
        raise PollFailed(f"openrouter answered an unknown status {status!r}", retryable=True)

    def _output(self, index: int, url: str) -> UpstreamOutput:
        """An output; the key goes with it only to the API's own host (the authenticated proxy)."""
        absolute = url if "://" in url else f"{urlsplit(self._client.base_url).scheme}://{self._host}{url}"
        own = urlsplit(absolute).netloc == self._host
        return UpstreamOutput(index=index, url=absolute, headers=self._auth if own else {})

    def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        return stream_url(self._client, out.url, out.headers)

    async def aclose(self) -> None:
        await self._client.aclose()
