# Follows https://docs.dev.runwayml.com/api/ and the official SDK's request types
# (github.com/runwayml/sdk-python: video_to_video_create_params.py, resources/uploads.py)
# (checked 2026-12-04).
"""Runway's task API (``/v1/text_to_video``, ``/v1/image_to_video``, ``/v1/video_to_video``,
``/v1/tasks/{id}``).

An edit (a job with a ``source`` video and ``operation`` edit) goes to ``/v1/video_to_video``:
``aleph2`` (Aleph 2.0: ``videoUri``, optional ``promptText``, ``seed``; the output keeps the input's
length and size, inputs up to 30 s) or ``gen4_aleph`` (the first Aleph, which the SDK stopped
listing in June 2026: ``promptText`` and a ``ratio`` are required, and one ``references`` image is
taken). Runway reads the video from an https URL, a ``data:`` URI of up to 16 MB, or a
``runway://`` URI of an ephemeral upload: the source goes inline within the cap, else by its own
https URL, else it is uploaded first (``POST /v1/uploads`` ``{filename, type: "ephemeral"}``
answers ``{uploadUrl, fields, runwayUri}``; the file is POSTed as a form to ``uploadUrl`` with
``fields``, without our key). Runway has no extend for these models: an extend is refused.

Runway rejects unknown body fields and only accepts fixed ``W:H`` ratios and durations per model,
so the mapping below snaps our width/height/duration onto what each model takes and only sends
the extras (seed, audio, negative prompt) a model is documented to accept. Runway documents no
idempotency key, so none is sent: a retried submit may create a second task. Its API has no task
list and takes no caller-chosen id (the official SDK has only retrieve and delete), so after a
lost create answer nothing can find the task again: ``reconcile`` is ``none``.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp

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
from vidgate.gateway.providers.cancel import cancel_request
from vidgate.gateway.providers.http import (
    make_client,
    poll_status,
    request,
    request_id_of,
    require,
    stream_url,
    submitted_id,
)
from vidgate.gateway.providers.mapping import image_link, unsupported
from vidgate.gateway.providers.reconcile import find_without_lookup
from vidgate.gateway.providers.sources import inline_or_url, other_inputs, source_video

DEFAULT_BASE_URL = "https://api.dev.runwayml.com"
API_VERSION = "2024-11-06"
MAX_DATA_URI_BYTES = 5 * 1024 * 1024  # Runway's cap on a data: URI promptImage
MAX_VIDEO_DATA_URI = 16 * 1024 * 1024  # and on a data: URI video
# Stands in for a source video that must be uploaded before the create is sent.
TO_UPLOAD = "runway-upload:source"
_EXTENSIONS = {"video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm"}

_LANDSCAPE_PORTRAIT = ("1280:720", "720:1280")
_GEN4_I2V = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672")
_VEO = ("1280:720", "720:1280", "1080:1920", "1920:1080")


@dataclass(frozen=True, slots=True)
class _Model:
    """What one Runway model accepts; ``None`` means "not documented, pass ours through"."""

    durations: tuple[int, ...] | None
    t2v_ratios: tuple[str, ...] | None
    i2v_ratios: tuple[str, ...] | None
    seed: bool = False
    audio: bool = False
    negative: bool = False
    last_frame: bool = False


_MODELS: dict[str, _Model] = {
    "gen4.5": _Model(tuple(range(2, 11)), _LANDSCAPE_PORTRAIT, _GEN4_I2V, seed=True),
    # gen4_turbo is image-to-video only; its t2v ratios are empty so a text-only job is refused.
    "gen4_turbo": _Model(tuple(range(2, 11)), (), _GEN4_I2V, seed=True),
    "veo3.1": _Model((4, 6, 8), _VEO, _VEO, audio=True, negative=True, last_frame=True),
    "veo3.1_fast": _Model((4, 6, 8), _VEO, _VEO, audio=True, negative=True, last_frame=True),
    "veo3": _Model((8,), _VEO, _VEO, negative=True),
}
# seedance2* takes "many W:H values" that providers.md does not list: pass width:height through.
_SEEDANCE = _Model(None, None, None, audio=True)
_UNKNOWN = _Model(None, None, None)

# The video-to-video models an edit maps onto: Aleph 2.0 and the first Aleph (whose ratio is required).
_V2V_RATIOS = ("1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672", "848:480", "640:480")
_EDIT_MODELS = {"aleph2": (), "gen4_aleph": _V2V_RATIOS}

_STATUS: dict[str, UpstreamStatus] = {"PENDING": "queued", "THROTTLED": "queued", "RUNNING": "processing"}


def model_info(model: str) -> _Model:
    if model in _MODELS:
        return _MODELS[model]
    return _SEEDANCE if model.startswith("seedance2") else _UNKNOWN


def pick_duration(allowed: tuple[int, ...] | None, seconds: int) -> int:
    """The allowed duration nearest to ``seconds``; ties go to the longer one."""
    if not allowed:
        return seconds
    return min(allowed, key=lambda d: (abs(d - seconds), -d))


def pick_ratio(allowed: tuple[str, ...] | None, width: int, height: int) -> str:
    """The allowed ``W:H`` closest in shape to width x height, then closest in pixel count."""
    if not allowed:
        return f"{width}:{height}"

    def distance(ratio: str) -> tuple[float, float]:
        w, h = (int(x) for x in ratio.split(":"))
        shape = abs(math.log((w / h) / (width / height)))
        return (round(shape, 6), abs(math.log((w * h) / (width * height))))

    return min(allowed, key=distance)


def image_ref(ref: ReferenceImage) -> str:
    """Runway takes an HTTPS URL or a data URI; inline bytes unless too large for a data URI."""
    return image_link(
        ref,
        MAX_DATA_URI_BYTES,
        schemes=("https://",),
        oversize="{role} image is too large for Runway's data URI limit and has no HTTPS URL",
    )


class RunwayProvider:
    """Submits to Runway, polls ``/v1/tasks/{id}``, cancels with ``DELETE``."""

    name = "runway"
    # DELETE cancels PENDING/THROTTLED/RUNNING tasks (they become CANCELLED). On a finished task
    # it deletes the task and its outputs, so it must only be sent for jobs not yet terminal.
    cancellable = True
    reconcile = "none"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        # The key is sent per call, not as a client default, so that open_output (same client,
        # plain CDN URLs) never hands the Runway key to the CDN host.
        self._auth = {"Authorization": f"Bearer {config.revealed_api_key()}"}
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL, headers={"X-Runway-Version": API_VERSION})

    def build_request(self, job: JobSpec) -> tuple[str, dict[str, Any]]:
        """The endpoint path and JSON body for ``job``; a source video still to upload is ``TO_UPLOAD``."""
        if job.op == "extend":
            raise unsupported("runway has no extend")
        if job.op == "edit":
            return "/v1/video_to_video", self._edit(job)
        if job.provider_model in _EDIT_MODELS:
            raise unsupported(f"runway model {job.provider_model} only edits a source video")
        if other := other_inputs(job, {"role:first_frame", "role:last_frame"}):
            raise unsupported(f"runway takes first_frame and last_frame images, not {', '.join(other)}")
        info = model_info(job.provider_model)
        first, last = job.reference("first_frame"), job.reference("last_frame")
        if last is not None and not info.last_frame:
            raise Rejected(
                f"runway model {job.provider_model} takes no last frame",
                retryable=True,
                code="unsupported_input",
            )
        body: dict[str, Any] = {"model": job.provider_model}
        if first is None:
            if info.t2v_ratios == ():
                raise Rejected(
                    f"runway model {job.provider_model} needs a first_frame image",
                    retryable=True,
                    code="unsupported_input",
                )
            path, ratios = "/v1/text_to_video", info.t2v_ratios
            body["promptText"] = job.prompt
        else:
            path, ratios = "/v1/image_to_video", info.i2v_ratios
            if last is None:
                body["promptImage"] = image_ref(first)
            else:
                body["promptImage"] = [
                    {"uri": image_ref(first), "position": "first"},
                    {"uri": image_ref(last), "position": "last"},
                ]
            if job.prompt:
                body["promptText"] = job.prompt
        body["ratio"] = pick_ratio(ratios, job.width, job.height)
        body["duration"] = pick_duration(info.durations, job.duration)
        if info.seed and job.seed is not None:
            body["seed"] = job.seed
        if info.audio:
            body["audio"] = job.audio
        if info.negative and job.negative_prompt:
            body["negativePrompt"] = job.negative_prompt
        body.update(job.provider_params)
        return path, body

    def _edit(self, job: JobSpec) -> dict[str, Any]:
        ratios = _EDIT_MODELS.get(job.provider_model)
        if ratios is None:
            raise unsupported(f"runway model {job.provider_model} does not edit video")
        aleph2 = not ratios
        allowed = {"video:source"} if aleph2 else {"video:source", "role:reference"}
        if other := other_inputs(job, allowed):
            raise unsupported(f"runway {job.provider_model} takes no {', '.join(other)}")
        video = source_video(job, "runway")
        body: dict[str, Any] = {
            "model": job.provider_model,
            "videoUri": inline_or_url(video, MAX_VIDEO_DATA_URI) or TO_UPLOAD,
        }
        if job.prompt or not aleph2:
            body["promptText"] = job.prompt
        if not aleph2:
            body["ratio"] = pick_ratio(ratios, job.width, job.height)
            if refs := [r for r in job.references if r.kind == "image"]:
                if len(refs) > 1:
                    raise unsupported(f"runway {job.provider_model} takes one reference image")
                body["references"] = [{"type": "image", "uri": image_ref(refs[0])}]
        if job.seed is not None:
            body["seed"] = job.seed
        body.update(job.provider_params)
        return body

    async def _upload(self, job: JobSpec) -> str:
        """The source video uploaded as an ephemeral file: its ``runway://`` URI. A failure here created
        no task, so it is a refusal routing may fail over on."""
        video = source_video(job, "runway")
        name = f"{job.job_id}.{_EXTENSIONS.get(video.mime_type, 'mp4')}"
        data, _ = await request(
            self._client,
            "POST",
            "/v1/uploads",
            phase="submit",
            json={"filename": name, "type": "ephemeral"},
            headers=self._auth,
        )
        upload_url, fields, uri = (require(data, key, phase="submit") for key in ("uploadUrl", "fields", "runwayUri"))
        if not isinstance(upload_url, str) or not isinstance(fields, dict) or not isinstance(uri, str):
            raise Rejected("runway answered an upload without its URL, fields or URI", retryable=True)
        form = aiohttp.FormData(quote_fields=False)
        for key, value in fields.items():
            form.add_field(key, str(value))
        form.add_field("file", video.data, filename=name, content_type=video.mime_type)
        try:  # no default headers: the storage host gets neither our key nor Runway's version header
            async with self._client.session(bare=True).post(upload_url, data=form, allow_redirects=False) as answer:
                status = answer.status
                await answer.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Rejected(f"runway upload failed: {exc or type(exc).__name__}", retryable=True) from exc
        if not 200 <= status < 300:
            raise Rejected(f"runway upload answered {status}", retryable=True, status_code=status)
        return uri

    async def submit(self, job: JobSpec) -> Accepted:
        path, body = self.build_request(job)
        if body.get("videoUri") == TO_UPLOAD:
            body["videoUri"] = await self._upload(job)
        # Create's success code is unverified (200 expected): any of 200/201/202 is accepted.
        data, response = await request(self._client, "POST", path, phase="submit", json=body, headers=self._auth)
        task_id = submitted_id(data, "id", "runway answered without a task id")
        return Accepted(native_id=task_id, request_id=request_id_of(response))

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """Runway offers no way to look a job up."""
        return find_without_lookup(self.name, lambda: self.build_request(job))

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        data, response, status = await poll_status(self._client, f"/v1/tasks/{native_id}", self._auth)
        if status in _STATUS:
            progress = data.get("progress")
            pct = max(0, min(100, round(progress * 100))) if isinstance(progress, int | float) else None
            return Upstream(status=_STATUS[status], progress=pct)
        if status == "SUCCEEDED":
            urls = require(data, "output")
            if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
                raise PollFailed("runway task succeeded without output URLs", retryable=True)
            outputs = tuple(UpstreamOutput(index=i, url=u) for i, u in enumerate(urls))
            return Upstream(status="completed", progress=100, outputs=outputs)
        if status == "FAILED":
            error = UpstreamError(
                code=str(data.get("failureCode") or "FAILED"),
                message=str(data.get("failure") or "runway task failed"),
                request_id=request_id_of(response),
            )
            return Upstream(status="failed", error=error)
        if status == "CANCELLED":
            return Upstream(status="cancelled")
        raise PollFailed(f"runway answered an unknown task status {status!r}", retryable=True)

    def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        return stream_url(self._client, out.url, out.headers)

    async def cancel(self, native_id: str) -> bool:
        """True when Runway accepted the DELETE; 4xx (e.g. 404 unknown task) gives False."""
        # The SDK expects no body and 204 is likely, but the code is unverified: 200/202 also pass.
        accepted, _ = await cancel_request(
            self._client,
            "DELETE",
            f"/v1/tasks/{native_id}",
            expect=(200, 202, 204),
            headers={**self._auth, "Accept": "*/*"},
        )
        return accepted

    async def aclose(self) -> None:
        await self._client.aclose()
