"""OpenAI Videos API (Sora 2): ``POST /videos``, ``GET /videos/{id}``, ``GET /videos/{id}/content``.

Wire format per providers.md §1. The create body is always multipart, as the official SDK sends
it, so one code path covers jobs with and without a first-frame image. There is no cancel
endpoint, so this provider is not cancellable.

The API refuses a first frame of another size than ``size`` ("must match the requested width and
height"), so one is scaled to cover the size and centre-cropped first, and the job's accepted
attempt says so. What Sora does not take (a seed, a negative prompt, sizes other than its four,
silent video) is refused before the call.

Every create carries our job id as ``Idempotency-Key``. Whether the Videos API honours it is
[unverified]: neither the official SDK (which sends none) nor the OpenAPI spec mentions it, so a
repeated create is not assumed safe. After a lost answer ``find`` scans ``GET /videos`` (newest
first) for a video made since the job with the prompt, model, size and seconds we sent.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import orjson

from vidgate.gateway.providers.base import (
    Accepted,
    JobSpec,
    PollFailed,
    ProviderConfig,
    ReferenceImage,
    Rejected,
    UnknownOutcome,
    Upstream,
    UpstreamError,
    UpstreamOutput,
    UpstreamStatus,
)
from vidgate.gateway.providers.cancel import CannotCancel
from vidgate.gateway.providers.http import make_client, request, request_id_of, require, stream_url
from vidgate.gateway.providers.mapping import fit_image, other_roles, refuse_set, unsupported
from vidgate.gateway.providers.reconcile import asking, listed, pick, recent, window_start

DEFAULT_BASE_URL = "https://api.openai.com/v1"

# ``seconds`` is a string enum upstream; integers are rejected there.
ALLOWED_SECONDS = ("4", "8", "12")
SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
PRO_ONLY_SIZES = ("1024x1792", "1792x1024")
# Fields of our jobs Sora has no parameter for.
_NOT_TAKEN = ("seed", "negative_prompt", "enhance_prompt", "person_generation", "compression_quality", "resize_mode")

_STATUS: dict[str, UpstreamStatus] = {
    "queued": "queued",
    "in_progress": "processing",
    "completed": "completed",
    "failed": "failed",
}

_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}

FormParts = list[tuple[str, tuple[str | None, Any] | tuple[str, bytes, str]]]


def _form_value(value: Any) -> str:
    """A multipart field value; booleans the way JSON spells them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return orjson.dumps(value).decode()


def _flatten(key: str, value: Any) -> list[tuple[str, str]]:
    """Nested objects go into multipart as ``key[sub]`` fields, the SDK's bracket notation."""
    if isinstance(value, Mapping):
        out: list[tuple[str, str]] = []
        for sub, item in value.items():
            out.extend(_flatten(f"{key}[{sub}]", item))
        return out
    if value is None:
        return []
    return [(key, _form_value(value))]


class OpenAIProvider(CannotCancel):
    """Adapter for Sora 2 through the OpenAI Videos API (which has no cancel endpoint)."""

    name = "openai"
    reconcile = "list"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._auth = {"Authorization": f"Bearer {config.revealed_api_key()}"}
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL, headers=self._auth)

    def _form(self, job: JobSpec, first: ReferenceImage | None = None) -> FormParts:
        """Map a job onto the create form; mapped fields win over ``provider_params``.

        Mapped-wins keeps duration and size (which we price on) under the gateway's control while
        still letting callers pass fields the mapping does not know about. ``first`` is the first
        frame as sent (fitted to the size); by default the job's own.
        """
        seconds = str(job.duration)
        if seconds not in ALLOWED_SECONDS:
            raise unsupported(f"openai supports durations of {', '.join(ALLOWED_SECONDS)} seconds, not {job.duration}")
        if job.sample_count != 1:
            raise unsupported("openai makes one video per job")
        refuse_set(job, _NOT_TAKEN, "openai")
        if not job.audio:
            raise unsupported("openai (Sora 2) always makes audio")
        sizes = (
            SIZES if job.provider_model.startswith("sora-2-pro") else tuple(s for s in SIZES if s not in PRO_ONLY_SIZES)
        )
        if job.size not in sizes:
            raise unsupported(f"{job.provider_model} makes {', '.join(sizes)} video, not {job.size}")
        if other := other_roles(job, ("first_frame",)):
            raise unsupported(f"openai accepts only a first_frame reference, not {', '.join(other)}")
        mapped: dict[str, Any] = {
            "model": job.provider_model,
            "prompt": job.prompt,
            "seconds": seconds,
            "size": job.size,
        }
        reserved = {*mapped, "input_reference"}
        parts: FormParts = [(k, (None, v)) for k, v in mapped.items()]
        for key, value in job.provider_params.items():
            if key in reserved or key.split("[", 1)[0] in reserved:
                continue
            parts.extend((k, (None, v)) for k, v in _flatten(key, value))
        if ref := first or job.reference("first_frame"):
            ext = _EXTENSIONS.get(ref.mime_type, "png")
            parts.append(("input_reference", (f"first_frame.{ext}", ref.data, ref.mime_type)))
        return parts

    async def submit(self, job: JobSpec) -> Accepted:
        self._form(job)  # refuse what Sora cannot take before any work on the image
        first, note = job.reference("first_frame"), None
        if first is not None:
            first, note = await asyncio.to_thread(fit_image, first, job.width, job.height)
        body, response = await request(
            self._client,
            "POST",
            "/videos",
            phase="submit",
            files=self._form(job, first),
            headers={"Idempotency-Key": job.job_id},
        )
        native_id = require(body, "id", phase="submit")
        if not isinstance(native_id, str) or not native_id:
            rid = request_id_of(response)
            raise UnknownOutcome("upstream returned no video id", retryable=True, request_id=rid)
        return Accepted(native_id=native_id, request_id=request_id_of(response), note=note)

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """The video our create made, matched on what the Video object echoes of it."""
        try:
            self._form(job)
        except Rejected:
            return None  # refused before sending: nothing was created
        seconds, size = str(job.duration), job.size
        with asking(self.name):
            videos = await recent(self.name, self._pages(), _created, window_start(job, since))
        # Size and seconds are enums we sent, echoed as sent; whether ``model`` comes back as a
        # dated snapshot is [unverified], so a snapshot of ours counts, on the stricter side only.
        snapshot = re.compile(re.escape(job.provider_model) + r"(-\d{4}-\d{2}-\d{2})?")
        same_kind = [v for v in videos if v.get("size") == size and str(v.get("seconds")) == seconds]
        return pick(
            self.name,
            same_kind,
            lambda v: v.get("prompt") == job.prompt and bool(snapshot.fullmatch(str(v.get("model")))),
            lambda v: str(v["id"]),
        )

    async def _pages(self) -> AsyncIterator[Sequence[dict[str, Any]]]:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, "order": "desc", **({"after": after} if after else {})}
            body, _ = await request(self._client, "GET", "/videos", phase="reconcile", expect=(200,), params=params)
            data = listed(self.name, require(body, "data"))
            yield data
            if not body.get("has_more") or not data:
                return
            after = data[-1]["id"]

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        path = f"/videos/{quote(native_id, safe='')}"
        body, response = await request(self._client, "GET", path, phase="poll")
        raw_status = require(body, "status")
        status = _STATUS.get(raw_status) if isinstance(raw_status, str) else None
        if status is None:
            raise PollFailed(f"upstream sent unknown status {raw_status!r}", retryable=True)
        progress = body.get("progress")
        progress = max(0, min(100, progress)) if isinstance(progress, int) else None
        seconds = _seconds_of(body.get("seconds"))
        if status == "completed":
            url = f"{self._client.base_url}videos/{quote(native_id, safe='')}/content?variant=video"
            output = UpstreamOutput(index=0, url=url, headers=dict(self._auth))
            return Upstream(status="completed", progress=100, outputs=(output,), seconds=seconds)
        if status == "failed":
            err = body.get("error") if isinstance(body.get("error"), dict) else {}
            error = UpstreamError(
                code=str(err.get("code") or "upstream_failed"),
                message=str(err.get("message") or "upstream reported the job failed without details"),
                request_id=request_id_of(response),
            )
            return Upstream(status="failed", progress=progress, error=error, seconds=seconds)
        return Upstream(status=status, progress=progress, seconds=seconds)

    async def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        if out.data is not None:
            yield out.data
            return
        async for chunk in stream_url(self._client, out.url, out.headers):
            yield chunk

    async def aclose(self) -> None:
        await self._client.aclose()


def _created(video: dict[str, Any]) -> float | None:
    stamp = video.get("created_at")
    return float(stamp) if isinstance(stamp, int | float) and not isinstance(stamp, bool) else None


def _seconds_of(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
