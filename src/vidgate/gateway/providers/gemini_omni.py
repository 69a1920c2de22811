# Follows https://ai.google.dev/gemini-api/docs/omni, https://ai.google.dev/api/interactions-api and
# the official python SDK's Interactions types (google-genai, ``CreateModelInteraction``,
# ``VideoResponseFormat``, ``VideoConfig``, ``Interaction``), checked 2026-12-04.
"""Gemini Omni Flash on the Gemini API's Interactions API: ``POST /v1beta/interactions`` in the
background, ``GET /v1beta/interactions/{id}`` to poll, ``POST /v1beta/interactions/{id}/cancel``.

The create carries the prompt as ``input`` (a string, or content blocks: images, the source video,
then the text), ``background: true`` (without it the call blocks for the whole generation),
``response_format`` ``{type: video, delivery: uri, aspect_ratio, resolution, duration: "8s"}`` and
``generation_config.video_config.task`` (``text_to_video``, ``image_to_video``,
``reference_to_video``, ``edit`` or ``extend``), so the upstream never has to guess the mode. The
answer is an interaction whose ``status`` moves ``queued`` → ``in_progress`` → ``completed`` (or
``failed``, ``cancelled``, ``incomplete``, ``budget_exceeded``); a completed one holds the video as
a ``video`` content block of its last ``model_output`` step: a Files API ``uri`` fetched with the
same key (``delivery: uri``; the inline ``data`` form, capped at 4 MB upstream, is read too).

The key is the Gemini API key the ``google`` provider uses (same host, same ``x-goog-api-key``).

What the docs leave open, and what is done here instead of guessing:
- No idempotency key and no list of interactions exist (``labels`` are not searchable), so after a
  lost create answer nothing can find the interaction again: ``reconcile`` is ``none``.
- A source video goes inline (``data``, base64) up to ``MAX_INLINE_VIDEO`` bytes [unverified cap:
  the request size limit of the Interactions API is not published]; a larger one is refused before
  any call rather than uploaded through the Files API.
- Where a first and a last frame go is not documented for the REST body, so ``last_frame`` is
  refused, as is a first frame combined with reference images.
- A ``completed`` interaction without a video (a safety refusal answers with text only) fails the
  job with the model's text as the message.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlsplit

from vidgate.gateway.providers.base import (
    Accepted,
    JobSpec,
    PollFailed,
    ProviderConfig,
    Upstream,
    UpstreamError,
    UpstreamOutput,
)
from vidgate.gateway.providers.cancel import cancel_request
from vidgate.gateway.providers.http import make_client, poll_status, request, request_id_of, stream_url, submitted_id
from vidgate.gateway.providers.mapping import (
    base64_text,
    nearest_shape,
    other_roles,
    refuse_set,
    resolution_label,
    unsupported,
)
from vidgate.gateway.providers.reconcile import find_without_lookup

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
ASPECT_RATIOS = ("16:9", "9:16")
RESOLUTIONS = {360: "360p", 720: "720p", 1080: "1080p", 2160: "4k"}
_LABELS = {"360p": "360p", "720p": "720p", "1080p": "1080p", "4k": "4k", "2160p": "4k"}
MIN_SECONDS, MAX_SECONDS = 3, 10  # per call, and per extension
MAX_IMAGES = 10  # images per prompt, per Google's model card
MAX_INLINE_VIDEO = 20 * 1024 * 1024  # [unverified] request cap; see the module docstring
_IMAGE_ROLES = ("first_frame", "reference")
_RUNNING = {"queued": "queued", "in_progress": "processing"}
# Terminal statuses that are neither success nor a cancel; ``requires_action`` asks for a tool
# result a video job never has, so waiting would never end.
_FAILED = ("failed", "incomplete", "budget_exceeded", "requires_action")


def _image(ref: Any) -> dict[str, str]:
    return {"type": "image", "data": base64_text(ref.data), "mime_type": ref.mime_type}


def task_of(job: JobSpec) -> str:
    """The ``video_config.task`` for the job, refusing combinations the API has no task for."""
    if other := other_roles(job, (*_IMAGE_ROLES, "source")):
        raise unsupported(f"gemini-omni takes first_frame, reference and source inputs, not {', '.join(other)}")
    first = job.reference("first_frame")
    references = [r for r in job.references if r.role == "reference"]
    source = job.reference("source")
    if job.op in ("edit", "extend"):
        if source is None or source.kind != "video":
            raise unsupported(f"gemini-omni needs a source video to {job.op}")
        if first is not None or (job.op == "extend" and references):
            raise unsupported(f"gemini-omni takes no images with a video to {job.op}")
        return job.op
    if source is not None:
        raise unsupported("gemini-omni takes a source video only to edit or extend it")
    if first is not None and references:
        raise unsupported("gemini-omni takes a first_frame or reference images, not both")
    if first is not None:
        return "image_to_video"
    return "reference_to_video" if references else "text_to_video"


class GeminiOmniProvider:
    """Creates background interactions for Gemini Omni Flash and polls them; cancel is real."""

    name = "gemini-omni"
    cancellable = True
    reconcile = "none"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        # Sent per call, and with a download only to the API's own host, never to another one.
        self._auth = {"x-goog-api-key": config.revealed_api_key()}
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL)

    def build_request(self, job: JobSpec) -> dict[str, Any]:
        """The create body; mapped fields win over ``provider_params`` (e.g. ``labels``)."""
        refuse_set(job, ("seed",), self.name)
        if job.negative_prompt:
            raise unsupported("gemini-omni takes no negative prompt")
        if not job.audio:
            raise unsupported("gemini-omni video always has audio")
        if job.sample_count != 1:
            raise unsupported("gemini-omni makes one video per request")
        task = task_of(job)
        images = [r for r in job.references if r.role in _IMAGE_ROLES]
        if len(images) > MAX_IMAGES:
            raise unsupported(f"gemini-omni takes at most {MAX_IMAGES} images")
        label = resolution_label(job, RESOLUTIONS)
        resolution = _LABELS.get(label or "")
        if resolution is None:
            raise unsupported(f"gemini-omni makes 360p, 720p, 1080p or 4k video, not {label or job.size}")
        response_format: dict[str, Any] = {
            "type": "video",
            "delivery": "uri",
            "aspect_ratio": self._aspect(job),
            "resolution": resolution,
        }
        if task != "edit":  # an edit keeps its source's length
            if not MIN_SECONDS <= job.duration <= MAX_SECONDS:
                raise unsupported(f"gemini-omni makes {MIN_SECONDS} to {MAX_SECONDS} s per call, not {job.duration} s")
            response_format["duration"] = f"{job.duration}s"  # a protobuf Duration string
        return {
            **dict(job.provider_params),
            "model": job.provider_model,
            "input": self._input(job),
            "background": True,
            "response_format": response_format,
            "generation_config": {"video_config": {"task": task}},
        }

    @staticmethod
    def _aspect(job: JobSpec) -> str:
        if job.aspect_ratio in ASPECT_RATIOS:
            return job.aspect_ratio  # type: ignore[return-value]
        return nearest_shape(ASPECT_RATIOS, job.width, job.height)

    @staticmethod
    def _input(job: JobSpec) -> str | list[dict[str, str]]:
        """The prompt alone, or the job's images and source video before it as content blocks."""
        blocks = [_image(r) for r in job.references if r.role in _IMAGE_ROLES]
        if (source := job.reference("source")) is not None:
            if len(source.data) > MAX_INLINE_VIDEO:
                raise unsupported(f"gemini-omni takes a source video of at most {MAX_INLINE_VIDEO} bytes inline")
            blocks.append({"type": "video", "data": base64_text(source.data), "mime_type": source.mime_type})
        if not blocks:
            return job.prompt
        return [*blocks, {"type": "text", "text": job.prompt}]

    async def submit(self, job: JobSpec) -> Accepted:
        body = self.build_request(job)
        data, response = await request(
            self._client, "POST", "/interactions", phase="submit", expect=(200,), json=body, headers=self._auth
        )
        interaction_id = submitted_id(data, "id", "gemini-omni answered without an interaction id")
        return Accepted(native_id=interaction_id, request_id=request_id_of(response))

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """The Interactions API offers no way to look an interaction up but by its id."""
        return find_without_lookup(self.name, lambda: self.build_request(job))

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        data, response, status = await poll_status(
            self._client, f"/interactions/{quote(native_id, safe='')}", self._auth
        )
        if status in _RUNNING:
            return Upstream(status=_RUNNING[status])  # type: ignore[arg-type]
        rid = request_id_of(response)
        if status == "cancelled":
            return Upstream(status="cancelled")
        steps = data.get("steps") if isinstance(data.get("steps"), list) else []
        if status in _FAILED:
            code, message = _failure(data, steps, status)
            return Upstream(status="failed", error=UpstreamError(code, message, rid))
        if status != "completed":
            raise PollFailed(f"gemini-omni answered an unknown status {status!r}", retryable=True)
        outputs = self._outputs(steps)
        if outputs:
            return Upstream(status="completed", progress=100, outputs=outputs)
        text = " ".join(_texts(steps)) or "gemini-omni finished without a video"
        return Upstream(status="failed", error=UpstreamError("no_video", text, rid))

    def _outputs(self, steps: list[Any]) -> tuple[UpstreamOutput, ...]:
        """The video blocks of the model's output after the last user input, as the SDK reads them."""
        outputs: list[UpstreamOutput] = []
        for block in _model_blocks(steps):
            if block.get("type") != "video":
                continue
            mime = block["mime_type"] if isinstance(block.get("mime_type"), str) else "video/mp4"
            index = len(outputs)
            if isinstance(uri := block.get("uri"), str) and uri:
                url = _media_url(uri)
                headers = self._auth if self._is_api_host(url) else {}
                outputs.append(UpstreamOutput(index=index, url=url, mime_type=mime, headers=dict(headers)))
            elif isinstance(encoded := block.get("data"), str) and encoded:
                try:
                    raw = base64.b64decode(encoded, validate=True)
                except (binascii.Error, ValueError) as exc:
                    raise PollFailed("gemini-omni sent undecodable inline video", retryable=True) from exc
                outputs.append(UpstreamOutput(index=index, url="", mime_type=mime, data=raw))
        return tuple(outputs)

    def _is_api_host(self, url: str) -> bool:
        return urlsplit(url).netloc == urlsplit(self._client.base_url).netloc

    async def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        if out.data is not None:
            yield out.data
            return
        async for chunk in stream_url(self._client, out.url, out.headers, follow_redirects=True):
            yield chunk

    async def cancel(self, native_id: str) -> bool:
        """``POST /interactions/{id}/cancel`` stops a background interaction still running."""
        taken, _ = await cancel_request(
            self._client,
            "POST",
            f"/interactions/{quote(native_id, safe='')}/cancel",
            expect=(200,),
            headers=self._auth,
        )
        return taken

    async def aclose(self) -> None:
        await self._client.aclose()


def _model_blocks(steps: list[Any]) -> list[dict[str, Any]]:
    """Content blocks of the ``model_output`` steps after the last ``user_input`` step."""
    blocks: list[dict[str, Any]] = []
    for step in reversed(steps):
        if not isinstance(step, dict) or step.get("type") == "user_input":
            break
        if step.get("type") == "model_output" and isinstance(step.get("content"), list):
            blocks[:0] = [b for b in step["content"] if isinstance(b, dict)]
    return blocks


def _texts(steps: list[Any]) -> list[str]:
    return [b["text"] for b in _model_blocks(steps) if b.get("type") == "text" and isinstance(b.get("text"), str)]


def _failure(data: dict[str, Any], steps: list[Any], status: str) -> tuple[str, str]:
    """The code and message of a failed interaction: its ``errors``, else a step's ``error``, else its status."""
    for err in data.get("errors") or ():
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err.get("code") or status), err["message"]
    for step in reversed(steps):
        err = step.get("error") if isinstance(step, dict) else None
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return str(err.get("code") or status), err["message"]
    return status, f"gemini-omni interaction ended {status}"


def _media_url(uri: str) -> str:
    """A Files API download URI answers the bytes only with ``alt=media``."""
    if ":download" in uri and "alt=" not in urlsplit(uri).query:
        return f"{uri}{'&' if '?' in uri else '?'}alt=media"
    return uri
