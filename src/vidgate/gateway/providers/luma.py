# Follows the official SDK github.com/lumalabs/lumaai-python (its request types and api.md, release
# 1.18.1) and the API spec github.com/lumalabs/lumaai-api openapi.yaml (checked 2026-12-04).
"""Luma Dream Machine API v1: ``POST /generations/video``, ``POST /generations/video/modify``,
``GET /generations/{id}``.

Wire format per providers.md §4. ``duration`` is a string with a unit (``"5s"``), ``resolution``
is lower case (``"4k"``), keyframes are ``frame0`` (first frame) and ``frame1`` (last frame), each
``{"type": "image", "url": …}`` or ``{"type": "generation", "id": …}``. Bytes are a plain GET on
``assets.video`` (a CDN URL, so the key is sent per call and never as a client default).

What maps where:
- generate: ``/generations/video`` with the first and last frames as image keyframes.
- extend: the same create with ``keyframes.frame0 = {"type": "generation", "id": …}``: Luma continues
  one of its own generations, named by its id, never by bytes. So the source must be one of the
  owner's outputs that a Luma job made (the reference's ``origin``); any other source is refused
  before a call, so routing moves on. A ``last_frame`` image may end the continuation (``frame1``).
  Whether Luma keeps the source's resolution or makes the one asked for is [unverified]: the job's
  duration, resolution and aspect ratio are sent as for a generation.
- edit: ``/generations/video/modify`` (``generation_type`` ``modify_video``, ``media.url``, ``mode``,
  an optional ``first_frame.url``; ray-2 and ray-flash-2 only). Luma reads the source by its https
  URL: an asset or upload goes by the gateway's link to its copy (``worker/input_links``), and one
  with no link (no https ``public_url`` or store) is refused before a call. ``mode`` (adhere_1-3, flex_1-3,
  reimagine_1-3: how far from the source the result may go) comes from ``provider_params``, else
  ``adhere_1``, the value hosts of the same API default to. The output keeps the source's length.

Luma v1 documents no seed, negative prompt, audio, multiple samples or idempotency key; jobs using
the first four are refused before any call so routing can try another provider. Each generation
echoes the request that made it, so after a lost answer ``find`` scans ``GET /generations`` for
the one made since the job whose echo matches what we sent (the list's order is [unverified]:
the scan refuses to answer from a list that is not newest first). ``callback_url`` would be a
marker Luma echoes too, but it makes Luma call that URL, so it is not used for this.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any
from urllib.parse import quote

from vidgate.gateway.providers.base import (
    Accepted,
    JobSpec,
    PollFailed,
    ProviderConfig,
    ReferenceImage,
    Rejected,
    Upstream,
    UpstreamError,
    UpstreamOutput,
    UpstreamStatus,
)
from vidgate.gateway.providers.cancel import CannotCancel
from vidgate.gateway.providers.http import make_client, request, request_id_of, require, stream_url, submitted_id
from vidgate.gateway.providers.mapping import HTTPS_INPUT, nearest_shape, other_roles, unsupported
from vidgate.gateway.providers.reconcile import asking, iso_seconds, listed, pick, recent, window_start
from vidgate.gateway.providers.sources import other_inputs, source_video

DEFAULT_BASE_URL = "https://api.lumalabs.ai/dream-machine/v1"
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
RESOLUTIONS = {"540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}
# ray-2 and ray-flash-2 take 5 s or 9 s. ray-1-6 predates duration/resolution (it makes 5 s at
# 720p); whether it accepts the fields is [unverified], so they are not sent for it.
DURATIONS = (5, 9)
_LEGACY = ("ray-1-6",)
_ROLES = {"first_frame": "frame0", "last_frame": "frame1"}
CREATE_PATH = "/generations/video"
MODIFY_PATH = "/generations/video/modify"
MODIFY_MODELS = ("ray-2", "ray-flash-2")
MODIFY_MODES = tuple(f"{kind}_{n}" for kind in ("adhere", "flex", "reimagine") for n in (1, 2, 3))
DEFAULT_MODIFY_MODE = "adhere_1"
_MODIFY_TYPE = "modify_video"

_STATUS: dict[str, UpstreamStatus] = {"queued": "queued", "dreaming": "processing"}


def pick_aspect(job: JobSpec) -> str:
    """The job's ratio when Luma takes it, else the Luma ratio nearest in shape."""
    if job.aspect_ratio in ASPECT_RATIOS:
        return job.aspect_ratio  # type: ignore[return-value]
    return nearest_shape(ASPECT_RATIOS, job.width, job.height)


def pick_resolution(job: JobSpec) -> str:
    if job.resolution:
        label = job.resolution.lower()
        if label not in RESOLUTIONS:
            raise unsupported(f"luma makes {', '.join(RESOLUTIONS)} video, not {job.resolution}")
        return label
    short = min(job.width, job.height)
    return min(RESOLUTIONS, key=lambda r: abs(RESOLUTIONS[r] - short))


def keyframe(ref: ReferenceImage) -> dict[str, str]:
    """Luma takes keyframe images by URL only (no inline bytes documented)."""
    if not ref.url.startswith("https://"):
        raise unsupported(f"luma needs the {ref.role} image as an https:// URL; {HTTPS_INPUT}")
    return {"type": "image", "url": ref.url}


def made_by_luma(job: JobSpec) -> str:
    """The Luma generation id of the job's source video: Luma extends only what it made."""
    origin = source_video(job, "luma").origin
    if origin is None or origin.provider != "luma":
        made = "a video from elsewhere" if origin is None else f"a video {origin.provider} made"
        raise unsupported(
            f"luma extends only a video Luma made (an output of one of your earlier luma jobs), not {made}"
        )
    return origin.native_id


class LumaProvider(CannotCancel):
    """Submits to Luma's Dream Machine API and polls the generation.

    Luma has no cancel endpoint. DELETE /generations/{id} removes a generation, but providers.md
    does not say it stops (or stops billing for) one still dreaming, so it is not used as cancel.
    """

    name = "luma"
    reconcile = "list"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._auth = {"Authorization": f"Bearer {config.revealed_api_key()}"}
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL)

    def build_request(self, job: JobSpec) -> dict[str, Any]:
        """The create body (a ``modify_video`` body for an edit); mapped fields win over
        ``provider_params`` (e.g. ``loop``, ``concepts``, an edit's ``mode``)."""
        if job.seed is not None:
            raise unsupported("luma takes no seed")
        if job.negative_prompt:
            raise unsupported("luma takes no negative prompt")
        if job.audio:
            raise unsupported("luma video models make no audio")
        if job.sample_count != 1:
            raise unsupported("luma makes one video per generation")
        if job.op == "edit":
            return self._modify(job)
        if job.op == "extend":
            if other := other_inputs(job, {"video:source", "role:last_frame"}):
                raise unsupported(f"luma extends a video towards a last_frame image only, not {', '.join(other)}")
        elif other := other_roles(job, _ROLES):
            raise unsupported(f"luma takes first_frame and last_frame images, not {', '.join(other)}")
        body: dict[str, Any] = {
            "generation_type": "video",
            "model": job.provider_model,
            "prompt": job.prompt,
            "aspect_ratio": pick_aspect(job),
        }
        if job.provider_model not in _LEGACY:
            if job.duration not in DURATIONS:
                raise unsupported(f"luma makes 5 s or 9 s videos, not {job.duration} s")
            body["duration"] = f"{job.duration}s"
            body["resolution"] = pick_resolution(job)
        keyframes = {_ROLES[r.role]: keyframe(r) for r in job.references if r.kind == "image"}
        if job.op == "extend":
            keyframes["frame0"] = {"type": "generation", "id": made_by_luma(job)}
        if keyframes:
            body["keyframes"] = keyframes
        return {**dict(job.provider_params), **body}

    def _modify(self, job: JobSpec) -> dict[str, Any]:
        """An edit: Luma's modify-video on the source by its URL, optionally from an edited first frame."""
        if job.provider_model not in MODIFY_MODELS:
            raise unsupported(f"luma modifies video with {' or '.join(MODIFY_MODELS)}, not {job.provider_model}")
        if other := other_inputs(job, {"video:source", "role:first_frame"}):
            raise unsupported(f"luma modifies a video with a first_frame image only, not {', '.join(other)}")
        source = source_video(job, "luma")
        if not source.url.startswith("https://"):
            raise unsupported(f"luma reads the video to modify by its https URL; {HTTPS_INPUT}")
        body: dict[str, Any] = {
            "generation_type": _MODIFY_TYPE,
            "model": job.provider_model,
            "media": {"url": source.url},
            "prompt": job.prompt,
        }
        first = job.reference("first_frame")
        if first is not None:
            body["first_frame"] = {"url": keyframe(first)["url"]}
        return {"mode": DEFAULT_MODIFY_MODE, **dict(job.provider_params), **body}

    async def submit(self, job: JobSpec) -> Accepted:
        body = self.build_request(job)
        path = MODIFY_PATH if body["generation_type"] == _MODIFY_TYPE else CREATE_PATH
        data, response = await request(
            self._client, "POST", path, phase="submit", expect=(200, 201), json=body, headers=self._auth
        )
        generation_id = submitted_id(data, "id", "luma answered without a generation id")
        return Accepted(native_id=generation_id, request_id=request_id_of(response))

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """The generation made since the job whose echoed ``request`` is the body we sent."""
        try:
            sent = self.build_request(job)
        except Rejected:
            return None  # refused before sending: nothing was created
        with asking(self.name):
            found = await recent(
                self.name, self._pages(), lambda g: iso_seconds(g.get("created_at")), window_start(job, since)
            )
        kind = sent["generation_type"]
        videos = [g for g in found if g.get("generation_type", "video") == kind]

        def same(generation: dict[str, Any]) -> bool:
            echo = generation.get("request")
            return isinstance(echo, dict) and all(echo.get(k) == v for k, v in sent.items())

        return pick(self.name, videos, same, lambda g: str(g["id"]))

    async def _pages(self) -> AsyncIterator[Sequence[dict[str, Any]]]:
        offset = 0
        while True:
            data, _ = await request(
                self._client,
                "GET",
                "/generations",
                phase="reconcile",
                expect=(200,),
                params={"limit": 100, "offset": offset},
                headers=self._auth,
            )
            page = listed(self.name, require(data, "generations"))
            yield page
            if not data.get("has_more") or not page:
                return
            offset += len(page)

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        data, response = await request(
            self._client,
            "GET",
            f"/generations/{quote(native_id, safe='')}",
            phase="poll",
            expect=(200,),
            headers=self._auth,
        )
        state = require(data, "state")
        if state in _STATUS:
            return Upstream(status=_STATUS[state])
        if state == "completed":
            assets = data.get("assets")
            video = assets.get("video") if isinstance(assets, dict) else None
            if not isinstance(video, str) or not video:
                raise PollFailed("luma generation completed without assets.video", retryable=True)
            return Upstream(status="completed", progress=100, outputs=(UpstreamOutput(index=0, url=video),))
        if state == "failed":
            error = UpstreamError(
                code="generation_failed",
                message=str(data.get("failure_reason") or "luma generation failed"),
                request_id=request_id_of(response),
            )
            return Upstream(status="failed", error=error)
        raise PollFailed(f"luma answered an unknown state {state!r}", retryable=True)

    def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        return stream_url(self._client, out.url, out.headers)

    async def aclose(self) -> None:
        await self._client.aclose()
