# Re-checked 2026-12-04 against Replicate's model API pages (input schemas of google/veo-3.1,
# luma/ray-*-540p/-720p with start_image/end_image, kwaivgi/kling-v2.1 with start_image, end_image
# in pro mode, mode standard/pro) and the HTTP API reference (create on a model, Cancel-After,
# GET /predictions?created_after=). No drift found.
"""Replicate predictions: ``POST /v1/models/{owner}/{name}/predictions``, ``GET /v1/predictions/{id}``.

Wire format per providers.md §5. Every model has its own ``input`` schema, so the mapping below
knows the inputs of the video models the catalogue routes here (their Replicate API pages) and
refuses, before any call, what a model cannot take. Models it does not know get a best-effort
mapping (``prompt``, ``duration``, ``aspect_ratio``, ``resolution``, ``seed``,
``negative_prompt``, ``image``) that callers can complete with ``provider_params``.

``Prefer: wait`` is never sent (the worker polls). ``Cancel-After`` carries the job's deadline as a
duration, so Replicate stops a prediction we would give up on anyway. Replicate documents no
idempotency key, so none is sent: a retried submit may create a second prediction. After a lost
answer ``find`` lists ``GET /predictions?created_after=…`` (newest first, each with its model and
input) for the one prediction of our model whose plain inputs are the ones we sent.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
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
from vidgate.gateway.providers.mapping import image_link, other_roles, resolution_label, unsupported
from vidgate.gateway.providers.reconcile import asking, iso_seconds, listed, pick, recent, window_start

DEFAULT_BASE_URL = "https://api.replicate.com/v1"
MAX_DATA_URL_BYTES = 256 * 1024  # Replicate's recommended ceiling for data: URL inputs
_PROGRESS = re.compile(r"(\d{1,3})%\|")
_SHORT_SIDE = {360: "360p", 480: "480p", 540: "540p", 720: "720p", 1080: "1080p", 2160: "4k"}
_VEO_ASPECTS = ("16:9", "9:16")
_KLING_ASPECTS = ("16:9", "9:16", "1:1")
_LUMA_ASPECTS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")


@dataclass(frozen=True, slots=True)
class Schema:
    """The inputs one Replicate model takes, in our terms.

    ``resolution`` says how resolution is chosen: ``"field"`` (a ``resolution`` input),
    ``"mode"`` (Kling's ``standard``/``pro``), ``"model"`` (one model per resolution, named
    ``…-540p``/``…-720p``) or ``None`` (fixed). ``None`` for ``aspects``/``durations``/
    ``resolutions`` means "pass ours through unchecked".
    """

    first: str | None = "start_image"
    last: str | None = None
    references: str | None = None
    aspects: tuple[str, ...] | None = None
    send_aspect: bool = True
    durations: tuple[int, ...] | None = None
    resolution: str | None = None
    resolutions: tuple[str, ...] | None = None
    seed: bool = False
    negative: bool = False
    audio: bool = False
    requires_first: bool = False
    last_frame_resolution: str | None = None  # the only resolution a last frame works at


_VEO3 = Schema(
    first="image",
    aspects=_VEO_ASPECTS,
    durations=(4, 6, 8),
    resolution="field",
    resolutions=("720p", "1080p"),
    seed=True,
    negative=True,
    audio=True,
)
_VEO31 = Schema(
    first="image",
    last="last_frame",
    references="reference_images",
    aspects=_VEO_ASPECTS,
    durations=(4, 6, 8),
    resolution="field",
    resolutions=("720p", "1080p"),
    seed=True,
    negative=True,
    audio=True,
)
_LUMA = Schema(
    first="start_image",
    last="end_image",
    aspects=_LUMA_ASPECTS,
    durations=(5, 9),
    resolution="model",
    resolutions=("540p", "720p"),
)
_KLING_MASTER = Schema(aspects=_KLING_ASPECTS, durations=(5, 10), resolutions=("1080p",), negative=True)

SCHEMAS: dict[str, Schema] = {
    "google/veo-3": _VEO3,
    "google/veo-3-fast": _VEO3,
    "google/veo-3.1": _VEO31,
    "google/veo-3.1-fast": _VEO31,
    "google/veo-2": Schema(
        first="image", aspects=_VEO_ASPECTS, durations=(5, 6, 7, 8), resolutions=("720p",), seed=True
    ),
    "luma/ray-2-540p": _LUMA,
    "luma/ray-2-720p": _LUMA,
    "luma/ray-flash-2-540p": _LUMA,
    "luma/ray-flash-2-720p": _LUMA,
    # kling-v2.1 is image-to-video only; its output follows the image (no aspect_ratio input) and
    # an end_image needs pro mode (1080p).
    "kwaivgi/kling-v2.1": Schema(
        last="end_image",
        aspects=_KLING_ASPECTS,
        send_aspect=False,
        durations=(5, 10),
        resolution="mode",
        resolutions=("720p", "1080p"),
        negative=True,
        requires_first=True,
        last_frame_resolution="1080p",
    ),
    "kwaivgi/kling-v2.1-master": _KLING_MASTER,
    "kwaivgi/kling-v2.5-turbo-pro": Schema(
        last="end_image", aspects=_KLING_ASPECTS, durations=(5, 10), resolutions=("1080p",), negative=True
    ),
}
# Unknown models: the common names, unchecked; callers fill in the rest with provider_params.
GENERIC = Schema(first="image", resolution="field", seed=True, negative=True, audio=True)
_KLING_MODES = {"720p": "standard", "1080p": "pro"}


def cancel_after(deadline_at_ms: int | None, now_ms: int | None = None) -> str | None:
    """The ``Cancel-After`` duration for a deadline in epoch milliseconds, e.g. ``"1h2m5s"``."""
    if deadline_at_ms is None:
        return None
    now = int(time.time() * 1000) if now_ms is None else now_ms
    seconds = max(1, math.ceil((deadline_at_ms - now) / 1000))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text


def image_input(ref: ReferenceImage) -> str:
    """Inline small images (a source URL may expire); large ones by HTTPS URL when there is one."""
    return image_link(ref, MAX_DATA_URL_BYTES, schemes=("https://",))


class ReplicateProvider:
    """Creates a prediction on a model, polls it, cancels it."""

    name = "replicate"
    # POST /predictions/{id}/cancel stops a starting or processing prediction (status canceled).
    cancellable = True
    reconcile = "list"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        # Per call, never a client default: outputs live on another host (replicate.delivery).
        self._auth = {"Authorization": f"Bearer {config.revealed_api_key()}"}
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL)

    def build_request(self, job: JobSpec) -> tuple[str, dict[str, Any]]:
        """The create path and body for ``job``; mapped fields win over ``provider_params``."""
        model, _, version = job.provider_model.strip("/").partition(":")
        if model.count("/") != 1:
            raise Rejected(f"not a Replicate model id: {job.provider_model!r}", retryable=False)
        schema = SCHEMAS.get(model, GENERIC)
        if job.sample_count != 1:
            raise unsupported(f"replicate model {model} makes one video per prediction")
        if job.seed is not None and not schema.seed:
            raise unsupported(f"replicate model {model} takes no seed")
        if job.negative_prompt and not schema.negative:
            raise unsupported(f"replicate model {model} takes no negative prompt")
        if job.audio and not schema.audio:
            raise unsupported(f"replicate model {model} makes no audio")
        if schema.durations is not None and job.duration not in schema.durations:
            allowed = ", ".join(str(d) for d in schema.durations)
            raise unsupported(f"replicate model {model} makes {allowed} s videos, not {job.duration} s")

        mapped: dict[str, Any] = {"prompt": job.prompt, "duration": job.duration}
        resolution = resolution_label(job, _SHORT_SIDE)
        if schema.resolutions is not None and resolution not in schema.resolutions:
            allowed = ", ".join(schema.resolutions)
            raise unsupported(f"replicate model {model} makes {allowed} video, not {job.resolution or job.size}")
        if schema.resolution == "field" and resolution:
            mapped["resolution"] = resolution
        elif schema.resolution == "mode":
            mapped["mode"] = _KLING_MODES[resolution or "720p"]
        elif schema.resolution == "model" and resolution:
            model = f"{model.rsplit('-', 1)[0]}-{resolution}"  # luma/ray-2-720p → luma/ray-2-540p
        if schema.send_aspect:
            if schema.aspects is None:
                if job.aspect_ratio:
                    mapped["aspect_ratio"] = job.aspect_ratio
            elif job.aspect_ratio in schema.aspects:
                mapped["aspect_ratio"] = job.aspect_ratio
            elif job.aspect_ratio:
                raise unsupported(f"replicate model {model} takes {', '.join(schema.aspects)}, not {job.aspect_ratio}")
            else:
                shape = job.width / job.height
                mapped["aspect_ratio"] = min(
                    schema.aspects, key=lambda a: abs(math.log(shape * int(a.split(":")[1]) / int(a.split(":")[0])))
                )
        if job.seed is not None:
            mapped["seed"] = job.seed
        if job.negative_prompt:
            mapped["negative_prompt"] = job.negative_prompt
        if schema.audio and (job.audio or schema is not GENERIC):
            # Veo on Replicate makes audio by default (and bills for it), so False is sent too.
            mapped["generate_audio"] = job.audio
        mapped.update(self._images(job, model, schema, resolution))
        body: dict[str, Any] = {"input": {**dict(job.provider_params), **mapped}}
        if version:
            body["version"] = version
            return "/predictions", body
        owner, name = model.split("/")
        return f"/models/{quote(owner, safe='')}/{quote(name, safe='')}/predictions", body

    @staticmethod
    def _images(job: JobSpec, model: str, schema: Schema, resolution: str | None) -> dict[str, Any]:
        first, last = job.reference("first_frame"), job.reference("last_frame")
        refs = [r for r in job.references if r.role == "reference"]
        if other := other_roles(job, ("first_frame", "last_frame", "reference")):
            raise unsupported(f"replicate model {model} takes no {', '.join(other)} image")
        if schema.requires_first and first is None:
            raise unsupported(f"replicate model {model} needs a first_frame image")
        out: dict[str, Any] = {}
        if first is not None:
            if schema.first is None:
                raise unsupported(f"replicate model {model} takes no first frame")
            out[schema.first] = image_input(first)
        if last is not None:
            if schema.last is None:
                raise unsupported(f"replicate model {model} takes no last frame")
            if schema.last_frame_resolution and resolution != schema.last_frame_resolution:
                raise unsupported(f"replicate model {model} takes a last frame only at {schema.last_frame_resolution}")
            out[schema.last] = image_input(last)
        if refs:
            if schema.references is None:
                raise unsupported(f"replicate model {model} takes no reference images")
            out[schema.references] = [image_input(r) for r in refs]
        return out

    async def submit(self, job: JobSpec) -> Accepted:
        path, body = self.build_request(job)
        headers = dict(self._auth)
        if deadline := cancel_after(job.deadline_at):
            headers["Cancel-After"] = deadline
        data, response = await request(
            self._client, "POST", path, phase="submit", expect=(200, 201, 202), json=body, headers=headers
        )
        prediction_id = submitted_id(data, "id", "replicate answered without a prediction id")
        return Accepted(native_id=prediction_id, request_id=request_id_of(response))

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """The prediction of our model made since the job whose plain inputs are the ones we sent."""
        try:
            path, body = self.build_request(job)
        except Rejected:
            return None  # refused before sending: nothing was created
        version = body.get("version")
        model = "/".join(path.split("/")[2:4]) if not version else None
        # Files may come back re-hosted, so only plain values are compared.
        plain = {k: v for k, v in body["input"].items() if isinstance(v, str | int | float | bool) and not _is_file(v)}
        start = window_start(job, since)
        with asking(self.name):
            found = await recent(self.name, self._pages(start), lambda p: iso_seconds(p.get("created_at")), start)
        ours = [p for p in found if (p.get("version") == version if version else p.get("model") == model)]

        def same(prediction: dict[str, Any]) -> bool:
            echo = prediction.get("input")
            return isinstance(echo, dict) and all(echo.get(k) == v for k, v in plain.items())

        return pick(self.name, ours, same, lambda p: str(p["id"]))

    async def _pages(self, start: float | None) -> AsyncIterator[Sequence[dict[str, Any]]]:
        url = "/predictions"
        params = {"created_after": datetime.fromtimestamp(start, UTC).isoformat()} if start is not None else None
        while True:
            data, _ = await request(
                self._client, "GET", url, phase="reconcile", expect=(200,), params=params, headers=self._auth
            )
            page = listed(self.name, require(data, "results"))
            yield page
            url, params = data.get("next"), None
            if not url or not page:
                return
            # The key goes with the request: follow only a cursor on the API's own host.
            if not isinstance(url, str) or not url.startswith(self._client.base_url):
                raise PollFailed("replicate's next page is not on its API host", retryable=True)

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        data, response, status = await poll_status(
            self._client, f"/predictions/{quote(native_id, safe='')}", self._auth
        )
        rid = request_id_of(response)
        if status == "starting":
            return Upstream(status="queued")
        if status == "processing":
            return Upstream(status="processing", progress=_progress(data.get("logs")))
        if status == "succeeded":
            outputs = _outputs(data.get("output"))
            if outputs:
                return Upstream(status="completed", progress=100, outputs=outputs)
            if data.get("data_removed"):
                return _failed("output_removed", "replicate removed the prediction's output", rid)
            return _failed("no_output", "replicate prediction succeeded without an output URL", rid)
        if status == "failed":
            return _failed("prediction_failed", str(data.get("error") or "replicate prediction failed"), rid)
        if status == "canceled":
            return Upstream(status="cancelled")
        if status == "aborted":
            # Cancel-After passed before the prediction started.
            return _failed("aborted", "replicate aborted the prediction before it started (deadline)", rid)
        raise PollFailed(f"replicate answered an unknown status {status!r}", retryable=True)

    def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        return stream_url(self._client, out.url, out.headers)

    async def cancel(self, native_id: str) -> bool:
        """True when Replicate answers the prediction as ``canceled``; False if it already finished."""
        accepted, data = await cancel_request(
            self._client,
            "POST",
            f"/predictions/{quote(native_id, safe='')}/cancel",
            expect=(200, 202),
            headers=self._auth,
        )
        # The body is the prediction; a race with completion leaves it succeeded/failed.
        return accepted and (not isinstance(data, dict) or data.get("status") in (None, "canceled"))

    async def aclose(self) -> None:
        await self._client.aclose()


def _is_file(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("data:", "https://", "http://"))


def _progress(logs: Any) -> int | None:
    """The last ``NN%|`` progress bar in the logs, as many models print."""
    if not isinstance(logs, str):
        return None
    found = _PROGRESS.findall(logs)
    return max(0, min(99, int(found[-1]))) if found else None


def _outputs(output: Any) -> tuple[UpstreamOutput, ...]:
    """``output`` is a URL for most video models, a list of URLs for some."""
    urls = [output] if isinstance(output, str) else output if isinstance(output, list) else []
    return tuple(UpstreamOutput(index=i, url=u) for i, u in enumerate(u for u in urls if isinstance(u, str) and u))


def _failed(code: str, message: str, request_id: str | None) -> Upstream:
    return Upstream(status="failed", error=UpstreamError(code=code, message=message, request_id=request_id))
