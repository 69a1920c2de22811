"""Google Veo on the Gemini Developer API: a long-running ``predictLongRunning`` operation.

Wire format per providers.md §2.1: create with ``x-goog-api-key`` at
``models/{model}:predictLongRunning``, poll ``GET /v1beta/{operation name}``, download each sample's
file URI with the same key (the file endpoint redirects to signed storage, so redirects are
followed). The API offers no supported cancel for Veo, so this provider is not cancellable.

What the Gemini API does not take is refused before any call, so routing can try another provider:
``seed`` and the other Vertex-only fields (the official SDK refuses them on this backend), turning
audio off (Veo 3 here always makes it) and the duration rules Veo states (1080p, 4k and reference
images need 8 s).

A create takes no idempotency key or caller-chosen id, and no call lists Veo operations (the
official SDK has only ``operations.get``), so after a lost answer nothing can find the operation
again: ``reconcile`` is ``none``. ``webhookConfig.userMetadata`` could carry our job id, but only
to a webhook receiver, which the gateway does not run.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from math import gcd
from typing import Any
from urllib.parse import quote

from vidgate.gateway.providers.base import (
    Accepted,
    JobSpec,
    PollFailed,
    ProviderConfig,
    ReferenceImage,
    UnknownOutcome,
    Upstream,
    UpstreamError,
    UpstreamOutput,
)
from vidgate.gateway.providers.cancel import CannotCancel
from vidgate.gateway.providers.http import make_client, request, request_id_of, require, stream_url
from vidgate.gateway.providers.mapping import base64_text, other_roles, resolution_label, unsupported
from vidgate.gateway.providers.reconcile import find_without_lookup

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"

SUPPORTED_ROLES = frozenset({"first_frame", "last_frame", "reference"})
# Veo 3.1 extends a video it made by 7 s, at 720p only, from the video alone: no images with it.
EXTEND_MODELS = ("veo-3.1-",)
EXTEND_RESOLUTION = "720p"

# google.rpc.Code numbers as the operation ``error.code`` carries them (which ones Veo uses is
# [unverified]; the fallback is the number itself).
_RPC_CODES = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    13: "INTERNAL",
    14: "UNAVAILABLE",
}

_RESOLUTIONS = {"720p": "720p", "1080p": "1080p", "4k": "4k", "2160p": "4k"}
_RESOLUTION_BY_SHORT_SIDE = {720: "720p", 1080: "1080p", 2160: "4k"}
# Veo makes 1080p and 4k, and conditions on reference images, only for 8 s clips.
LONG_ONLY_SECONDS = 8
# Parameters the official SDK refuses on the Gemini API ("only supported in ... Platform mode").
VERTEX_ONLY = ("seed", "generateAudio", "fps", "storageUri", "compressionQuality", "resizeMode", "pubsubTopic", "mask")


def _image(ref: ReferenceImage) -> dict[str, str]:
    """Gemini mode sends images inline; ``gcsUri`` is Vertex-only."""
    return {"bytesBase64Encoded": base64_text(ref.data), "mimeType": ref.mime_type}


def _aspect_ratio(job: JobSpec) -> str:
    if job.aspect_ratio:
        return job.aspect_ratio
    divisor = gcd(job.width, job.height) or 1
    return f"{job.width // divisor}:{job.height // divisor}"


def _resolution(job: JobSpec) -> str | None:
    label = resolution_label(job, _RESOLUTION_BY_SHORT_SIDE)
    return _RESOLUTIONS.get(label, label) if label else None


def is_veo2(model: str) -> bool:
    return model.removeprefix("models/").startswith("veo-2")


def veo_instance(job: JobSpec, provider: str, *, vertex: bool = False) -> dict[str, Any]:
    """``instances[0]`` of a Veo ``predictLongRunning`` body, shared by the Gemini and Vertex adapters.

    Images go inline (``bytesBase64Encoded``), which both APIs accept; reference images are
    ``asset`` references. Roles other than first/last frame and reference are refused locally. An
    extend sends only the prompt and the source video, inline in each API's own field names.
    """
    if job.op == "extend":
        return {"prompt": job.prompt, "video": _source_video(job, provider, vertex=vertex)}
    if job.op != "generate":
        raise unsupported(f"{provider} cannot {job.op} a video with Veo")
    if other := other_roles(job, SUPPORTED_ROLES):
        raise unsupported(f"{provider} accepts first_frame, last_frame and reference images, not {', '.join(other)}")
    instance: dict[str, Any] = {"prompt": job.prompt}
    if first := job.reference("first_frame"):
        instance["image"] = _image(first)
    if last := job.reference("last_frame"):
        instance["lastFrame"] = _image(last)
    if refs := [r for r in job.references if r.role == "reference"]:
        if job.duration != LONG_ONLY_SECONDS:
            raise unsupported(f"{provider} takes reference images only for {LONG_ONLY_SECONDS} s videos")
        instance["referenceImages"] = [{"image": _image(r), "referenceType": "asset"} for r in refs]
    return instance


def _source_video(job: JobSpec, provider: str, *, vertex: bool) -> dict[str, str]:
    """The video an extend continues, inline: ``{encodedVideo, encoding}`` on the Gemini API,
    ``{bytesBase64Encoded, mimeType}`` on Vertex (the official SDK's two wire forms)."""
    model = job.provider_model.removeprefix("models/")
    if not model.startswith(EXTEND_MODELS):
        raise unsupported(f"{provider} extends videos with Veo 3.1 only, not {model}")
    source = job.reference("source")
    if source is None or source.kind != "video":
        raise unsupported(f"{provider} needs a source video to extend")
    if other := other_roles(job, ("source",)):
        raise unsupported(f"{provider} extends a video from the video alone, without {', '.join(other)}")
    if vertex:
        return {"bytesBase64Encoded": base64_text(source.data), "mimeType": source.mime_type}
    return {"encodedVideo": base64_text(source.data), "encoding": source.mime_type}


def veo_parameters(job: JobSpec, provider: str) -> dict[str, Any]:
    """The ``parameters`` both Veo APIs take alike, mapped from the job (provider_params not merged).

    Veo 2 takes no ``resolution`` (it makes 720p only); 1080p and 4k need an 8 s clip. An extend
    sends no duration (Veo adds its fixed 7 s) and is made at 720p only.
    """
    mapped: dict[str, Any] = {
        "aspectRatio": _aspect_ratio(job),
        "durationSeconds": job.duration,
        "sampleCount": job.sample_count,
    }
    resolution = _resolution(job)
    if job.op == "extend":
        if resolution not in (None, EXTEND_RESOLUTION):
            raise unsupported(f"{provider} extends videos at {EXTEND_RESOLUTION} only, not {resolution}")
        del mapped["durationSeconds"]
        mapped["resolution"] = EXTEND_RESOLUTION
    elif is_veo2(job.provider_model):
        if resolution not in (None, "720p"):
            raise unsupported(f"{provider} makes {job.provider_model} video at 720p only, not {resolution}")
    elif resolution:
        if resolution in ("1080p", "4k") and job.duration != LONG_ONLY_SECONDS:
            raise unsupported(f"{provider} makes {resolution} video only {LONG_ONLY_SECONDS} s long")
        mapped["resolution"] = resolution
    if job.negative_prompt:
        mapped["negativePrompt"] = job.negative_prompt
    if job.person_generation:
        mapped["personGeneration"] = job.person_generation
    if job.enhance_prompt is not None:
        mapped["enhancePrompt"] = job.enhance_prompt
    return mapped


class GoogleProvider(CannotCancel):
    """Adapter for Veo through the Gemini Developer API (API-key auth, not Vertex).

    Veo operations have no supported cancel on the Gemini API (providers.md §2.1); a generic
    google.longrunning ``:cancel`` is [unverified], so we do not rely on it.
    """

    name = "google"
    reconcile = "none"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._auth = {"x-goog-api-key": config.revealed_api_key()}
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL, headers=self._auth)

    def _body(self, job: JobSpec) -> dict[str, Any]:
        """Map a job onto ``{instances, parameters}``; mapped fields win over ``provider_params``.

        ``provider_params`` land in ``parameters``. What the Gemini API does not take is refused
        here rather than sent (the SDK refuses the Vertex-only fields; whether the server also
        does is [unverified]), naming the provider that takes it.
        """
        for name in ("seed", "compression_quality", "resize_mode"):
            if getattr(job, name) is not None:
                raise unsupported(f"{self.name} (Gemini API) takes no {name}; google-vertex takes it")
        if vertex_only := sorted(set(job.provider_params) & set(VERTEX_ONLY)):
            raise unsupported(f"{self.name} (Gemini API) takes no {', '.join(vertex_only)}; google-vertex takes it")
        if is_veo2(job.provider_model):
            if job.audio:
                raise unsupported(f"{job.provider_model} makes no audio")
        elif not job.audio:
            raise unsupported(f"{self.name} (Gemini API) always makes audio with Veo 3; google-vertex can turn it off")
        instance = veo_instance(job, self.name)
        return {"instances": [instance], "parameters": {**dict(job.provider_params), **veo_parameters(job, self.name)}}

    async def submit(self, job: JobSpec) -> Accepted:
        model = job.provider_model.removeprefix("models/")
        body, response = await request(
            self._client,
            "POST",
            f"/models/{quote(model, safe='')}:predictLongRunning",
            phase="submit",
            json=self._body(job),
        )
        name = require(body, "name", phase="submit")
        if not isinstance(name, str) or "/operations/" not in name:
            rid = request_id_of(response)
            raise UnknownOutcome("upstream returned no operation name", retryable=True, request_id=rid)
        return Accepted(native_id=name, request_id=request_id_of(response))

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """The Gemini API offers no way to look a job up."""
        return find_without_lookup(self.name, lambda: self._body(job))

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        body, response = await request(self._client, "GET", f"/{quote(native_id, safe='/')}", phase="poll")
        if not isinstance(body, dict):
            raise PollFailed("upstream sent a non-object operation", retryable=True)
        if body.get("done") is not True:  # absent ``done`` means still running
            return Upstream(status="processing")
        rid = request_id_of(response)
        if isinstance(err := body.get("error"), dict):
            return operation_failed(operation_error_code(err), str(err.get("message") or "operation failed"), rid)
        result = body.get("response")
        video = result.get("generateVideoResponse") if isinstance(result, dict) else None
        if not isinstance(video, dict):
            return operation_failed("no_output", "operation finished without a video response", rid)
        outputs = self._outputs(video.get("generatedSamples"))
        if outputs:
            return Upstream(status="completed", outputs=outputs)
        filtered = video.get("raiMediaFilteredCount")
        reasons = [r for r in video.get("raiMediaFilteredReasons") or () if isinstance(r, str)]
        if reasons or (isinstance(filtered, int) and filtered > 0):
            message = "; ".join(reasons) or "all generated videos were blocked by safety filters"
            return operation_failed("moderation_blocked", message, rid)
        return operation_failed("no_output", "operation finished without any generated video", rid)

    def _outputs(self, samples: Any) -> tuple[UpstreamOutput, ...]:
        """One output per sample: a file URI fetched with the key, or the rare inline video."""
        outputs: list[UpstreamOutput] = []
        for sample in samples if isinstance(samples, list) else ():
            video = sample.get("video") if isinstance(sample, dict) else None
            if not isinstance(video, dict):
                continue
            index = len(outputs)
            if isinstance(uri := video.get("uri"), str) and uri:
                outputs.append(UpstreamOutput(index=index, url=uri, headers=dict(self._auth)))
            elif isinstance(encoded := video.get("encodedVideo"), str):
                try:
                    data = base64.b64decode(encoded, validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise PollFailed("upstream sent undecodable inline video", retryable=True) from exc
                mime = encoding if isinstance(encoding := video.get("encoding"), str) else "video/mp4"
                outputs.append(UpstreamOutput(index=index, url="", mime_type=mime, data=data))
        return tuple(outputs)

    async def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        if out.data is not None:
            yield out.data
            return
        async for chunk in stream_url(self._client, out.url, out.headers, follow_redirects=True):
            yield chunk

    async def aclose(self) -> None:
        await self._client.aclose()


def operation_error_code(err: dict[str, Any]) -> str:
    """The google.rpc status name of a failed operation, e.g. ``INTERNAL``."""
    if isinstance(err.get("status"), str) and err["status"]:
        return err["status"]
    code = err.get("code")
    return _RPC_CODES.get(code, f"rpc_{code}") if isinstance(code, int) else "upstream_failed"


def operation_failed(code: str, message: str, request_id: str | None) -> Upstream:
    return Upstream(status="failed", error=UpstreamError(code=code, message=message, request_id=request_id))
