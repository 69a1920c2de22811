# Follows providers.md §9. Seedance 2.0's reference video and audio items (``video_url`` /
# ``audio_url`` with roles ``reference_video`` / ``reference_audio``) and their limits are as Ark
# clients in public code send them and hosts of the same model document them (checked 2026-12-04);
# BytePlus's own pages are rendered by script and could not be read here [unverified].
"""ByteDance Seedance through BytePlus ModelArk ("Ark"): ``POST /contents/generations/tasks``,
``GET /contents/generations/tasks/{id}``, ``DELETE /contents/generations/tasks/{id}``.

Wire format per providers.md §9 (medium confidence). The request is a ``content`` array: one text
item plus image items with a ``role``; Seedance 2.0 also takes up to 3 reference videos
(``{"type": "video_url", "video_url": {"url"}, "role": "reference_video"}``, 2-15 s in all) and up
to 3 reference audios (``audio_url``, ``reference_audio``, 15 s in all; only beside an image or a
video), which cannot be combined with first or last frames. Ark reads those by URL only, so a video
or audio reference without an https URL (one of the owner's assets or uploads the gateway can give
no link to, see ``worker/input_links``) is refused before any call. An extend or an edit, which
Seedance 2.0 does only as prompted use of a reference video, is not mapped: it is refused.
Generation settings were historically ``--flag value`` pairs at the end of the text; newer models
also take them as top-level JSON fields. Seedance 1.0 models get flags (their documented form),
1.5/2.0 get fields (``generate_audio`` exists only as a field);
``[providers.byteplus] param_style = "flags" | "fields"`` overrides that. Flags a caller typed into
the prompt are removed so they cannot change what we priced (resolution, duration, ...).

Ark documents no idempotency key, so none is sent: a retried submit may create a second task. Its
task list (``GET /contents/generations/tasks``, newest first, filterable by model) echoes nothing
of the request we could mark, so ``find`` can only tell absence: no task of the model made since
the job means none was made; any such task leaves the outcome unknown.
Per-model limits beyond resolution and ratio (durations, which image roles each model takes) are
[unverified], so the adapter leaves those to the catalogue and to Ark's own 400s.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

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
from vidgate.gateway.providers.reconcile import asking, listed, pick, recent, window_start
from vidgate.gateway.providers.sources import of_kind, other_inputs

DEFAULT_BASE_URL = "https://ark.ap-southeast.bytepluses.com/api/v3"
MAX_DATA_URI_BYTES = 10 * 1024 * 1024  # Ark's image cap [unverified]; larger images go by URL
TASKS = "/contents/generations/tasks"

RESOLUTIONS = ("480p", "720p", "1080p")
RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
_ROLES = {"first_frame": "first_frame", "last_frame": "last_frame", "reference": "reference_image"}
_IMAGES = {f"role:{role}" for role in _ROLES}
_MEDIA = {"video:reference", "audio:reference"}
MAX_MEDIA_REFERENCES = 3  # of each of video and audio
_RESOLUTION_BY_SHORT_SIDE = {480: "480p", 720: "720p", 1080: "1080p"}

# Top-level fields that set what we price on: ``provider_params`` may not override them.
_RESERVED = frozenset({"model", "content", "resolution", "ratio", "duration", "frames", "generate_audio"})
# Fields that have a text-flag spelling, for flags mode.
_FLAG_OF = {"camera_fixed": "camerafixed", "watermark": "watermark", "seed": "seed"}
_ANY_FLAG = re.compile(
    r"(?:^|\s)--(?:resolution|rs|ratio|rt|duration|dur|frames|fps|framespersecond|seed|camerafixed|cf|"
    r"watermark|wm)(?:\s+(?!--)\S+)?",
    re.IGNORECASE,
)

_STATUS: dict[str, UpstreamStatus] = {"queued": "queued", "running": "processing"}


@dataclass(frozen=True, slots=True)
class _Family:
    text_alone: bool = True  # False: the model needs an image
    audio: bool = False
    fields: bool = False  # settings as top-level fields rather than text flags
    media: bool = False  # takes reference videos and audios


# Matched in order against the model id (ids carry date suffixes and doubao-/dreamina- prefixes).
_FAMILIES: tuple[tuple[str, _Family], ...] = (
    ("seedance-1-0-pro", _Family()),
    ("seedance-1-0-lite-t2v", _Family()),
    ("seedance-1-0-lite-i2v", _Family(text_alone=False)),
    ("seedance-1-5-pro", _Family(audio=True, fields=True)),
    ("seedance-2-0", _Family(audio=True, fields=True, media=True)),
)


def family_of(model: str) -> _Family | None:
    return next((f for needle, f in _FAMILIES if needle in model), None)


def pick_ratio(job: JobSpec) -> str:
    """Our aspect ratio when Ark has it, else the Ark ratio closest in shape to width x height."""
    if job.aspect_ratio in RATIOS:
        return job.aspect_ratio  # type: ignore[return-value]
    return nearest_shape(RATIOS, job.width, job.height)


def ark_resolution(job: JobSpec) -> str | None:
    return resolution_label(job, _RESOLUTION_BY_SHORT_SIDE)


def image_ref(ref: ReferenceImage) -> str:
    """Ark takes URLs or ``data:image/...;base64`` content; small images go inline."""
    return image_link(ref, MAX_DATA_URI_BYTES, oversize="{role} image is too large to inline and has no URL")


def media_items(job: JobSpec) -> list[dict[str, Any]]:
    """The job's reference videos, then audios, as Ark content items; what Ark would refuse is refused here."""
    videos, audios = of_kind(job, "video"), of_kind(job, "audio")
    if not videos and not audios:
        return []
    if job.reference("first_frame") or job.reference("last_frame"):
        raise unsupported("seedance takes reference video or audio only without first and last frames")
    if audios and not videos and not of_kind(job, "image"):
        raise unsupported("seedance takes reference audio only beside a reference image or video")
    items = []
    for kind, refs in (("video", videos), ("audio", audios)):
        if len(refs) > MAX_MEDIA_REFERENCES:
            raise unsupported(f"seedance takes at most {MAX_MEDIA_REFERENCES} reference {kind}s, not {len(refs)}")
        for ref in refs:
            if not ref.url.startswith("https://"):
                raise unsupported(f"seedance reads a reference {kind} by https URL only; {HTTPS_INPUT}")
            items.append({"type": f"{kind}_url", f"{kind}_url": {"url": ref.url}, "role": f"reference_{kind}"})
    return items


def _created(task: dict[str, Any]) -> float | None:
    stamp = task.get("created_at")
    return float(stamp) if isinstance(stamp, int | float) and not isinstance(stamp, bool) else None


def _flag_value(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


class BytePlusProvider:
    """Submits Seedance tasks to Ark, polls them, cancels queued ones."""

    name = "byteplus"
    # DELETE cancels a task that is still ``queued``; a ``running`` task cannot be cancelled (Ark
    # answers an error, cancel() gives False and polling continues). On a finished task DELETE
    # removes its record, which is harmless once we have stopped tracking it.
    cancellable = True
    reconcile = "list"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        # Sent per call, not as a client default, so open_output never hands the key to the CDN.
        self._auth = {"Authorization": f"Bearer {config.revealed_api_key()}"}
        style = config.extra.get("param_style")
        self._style: str | None = style if style in ("flags", "fields") else None
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL)

    def build_request(self, job: JobSpec) -> dict[str, Any]:
        """The create body for ``job``; inputs Seedance cannot take are refused before any call."""
        model = job.provider_model
        family = family_of(model)
        if job.op != "generate":
            raise unsupported(f"seedance has no {job.op} operation")
        media = family is not None and family.media
        if unknown_roles := other_inputs(job, _IMAGES | _MEDIA if media else _IMAGES):
            what = "images, and reference video and audio" if media else "images"
            raise unsupported(
                f"seedance takes first_frame, last_frame and reference {what}, not {', '.join(unknown_roles)}"
            )
        if job.negative_prompt:
            raise unsupported("seedance takes no negative prompt")
        if job.sample_count != 1:
            raise unsupported("seedance makes one video per task")
        refuse_set(job, ("enhance_prompt", "person_generation", "compression_quality", "resize_mode"), "seedance")
        if job.references and "-lite-t2v" in model:
            # The lite family splits text and image models; the image twin shares the date suffix.
            model = model.replace("-lite-t2v", "-lite-i2v")
            family = family_of(model)
        if family is not None:
            if not job.references and not family.text_alone:
                raise unsupported(f"seedance model {model} needs an input image")
            if job.audio and not family.audio:
                raise unsupported(f"seedance model {model} cannot generate audio")
        resolution = ark_resolution(job)
        if resolution not in RESOLUTIONS:
            raise unsupported(f"seedance makes {', '.join(RESOLUTIONS)} videos, not {resolution or job.size}")

        # The ratio is always ours (never Ark's ``adaptive``), so the output matches the size we report.
        settings: dict[str, Any] = {"resolution": resolution, "ratio": pick_ratio(job), "duration": job.duration}
        if job.seed is not None:
            settings["seed"] = job.seed
        extra = {k: v for k, v in job.provider_params.items() if k not in _RESERVED}
        use_fields = self._style == "fields" if self._style else bool(family and family.fields)
        text = _ANY_FLAG.sub("", job.prompt).strip()
        body: dict[str, Any] = {"model": model}
        if use_fields:
            body.update(extra)
            body.update(settings)
        else:
            for key in list(extra):
                if key in _FLAG_OF:
                    settings.setdefault(key, extra.pop(key))
            flags = (f"--{_FLAG_OF.get(k, k)} {_flag_value(v)}" for k, v in settings.items())
            text = " ".join([text, *flags]).strip()
            body.update(extra)
        if family is not None and family.audio:
            body["generate_audio"] = job.audio  # some models default to audio on (and bill for it)
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        for ref in of_kind(job, "image"):
            content.append({"type": "image_url", "image_url": {"url": image_ref(ref)}, "role": _ROLES[ref.role]})
        content.extend(media_items(job))
        body["content"] = content
        return body

    async def submit(self, job: JobSpec) -> Accepted:
        body = self.build_request(job)
        data, response = await request(self._client, "POST", TASKS, phase="submit", json=body, headers=self._auth)
        task_id = require(data, "id", phase="submit")
        if not isinstance(task_id, str) or not task_id:
            raise UnknownOutcome("ark answered without a task id", retryable=True, request_id=request_id_of(response))
        return Accepted(native_id=task_id, request_id=request_id_of(response))

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """None when Ark made no task of the job's model since the job; otherwise unknown."""
        try:
            model = self.build_request(job)["model"]
        except Rejected:
            return None  # refused before sending: nothing was created
        with asking(self.name):
            found = await recent(self.name, self._pages(model), _created, window_start(job, since))
        # Nothing in a task tells ours from another of the same model: any candidate is "perhaps".
        return pick(self.name, [t for t in found if t.get("model") == model], lambda t: False, lambda t: str(t["id"]))

    async def _pages(self, model: str) -> AsyncIterator[Sequence[dict[str, Any]]]:
        number, size = 1, 100
        while True:
            params = {"page_num": number, "page_size": size, "filter.model": model}
            data, _ = await request(
                self._client, "GET", TASKS, phase="reconcile", expect=(200,), params=params, headers=self._auth
            )
            items, total = listed(self.name, require(data, "items")), data.get("total")
            yield items
            if len(items) < size or (isinstance(total, int) and number * size >= total):
                return
            number += 1

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        data, response = await request(
            self._client, "GET", f"{TASKS}/{quote(native_id, safe='')}", phase="poll", expect=(200,), headers=self._auth
        )
        status = require(data, "status")
        rid = request_id_of(response)
        seconds = float(data["duration"]) if isinstance(data.get("duration"), int | float) else None
        if status in _STATUS:
            return Upstream(status=_STATUS[status])
        if status == "succeeded":
            url = require(data, "content", "video_url")
            if not isinstance(url, str) or not url.startswith(("https://", "http://")):
                raise PollFailed("ark task succeeded without a video_url", retryable=True, request_id=rid)
            return Upstream(
                status="completed", progress=100, outputs=(UpstreamOutput(index=0, url=url),), seconds=seconds
            )
        if status == "failed":
            err = data.get("error") if isinstance(data.get("error"), dict) else {}
            code = str(err.get("code") or "failed")
            return Upstream(
                status="failed",
                error=UpstreamError(
                    code="moderation_blocked" if "Sensitive" in code else code,
                    message=str(err.get("message") or "seedance task failed"),
                    request_id=rid,
                ),
            )
        if status == "expired":
            return Upstream(
                status="failed",
                error=UpstreamError("expired", "the seedance task expired before it finished", request_id=rid),
            )
        if status == "cancelled":
            return Upstream(status="cancelled")
        raise PollFailed(f"ark answered an unknown task status {status!r}", retryable=True, request_id=rid)

    def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        return stream_url(self._client, out.url, out.headers)

    async def cancel(self, native_id: str) -> bool:
        """True when Ark accepted the DELETE; a refusal (running task, unknown id) gives False."""
        # The success body and code are [unverified] (likely empty): 200/202/204 all pass.
        accepted, _ = await cancel_request(
            self._client, "DELETE", f"{TASKS}/{quote(native_id, safe='')}", expect=(200, 202, 204), headers=self._auth
        )
        return accepted

    async def aclose(self) -> None:
        await self._client.aclose()
