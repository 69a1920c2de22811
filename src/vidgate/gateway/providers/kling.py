# Video extend follows Kling's video-extend request as generated clients of its API type it
# (``video_id``, ``prompt``, ``negative_prompt``, ``cfg_scale``, ``callback_url``; no
# ``external_task_id``) and hosts' copies of Kling's docs (checked 2026-12-04).
"""Kling's official API: ``POST /v1/videos/{text2video|image2video|video-extend}``, ``GET …/{task_id}``.

Wire format per providers.md §7. Auth is a short-lived HS256 JWT made from the access key
(``config.api_key``) and the secret key (``config.extra["secret_key"]``), built here with the
standard library (PyJWT is not a dependency). ``duration`` is a string (``"5"``), ``mode`` is
``std`` (720p) or ``pro`` (1080p), images are raw base64 (no ``data:`` prefix).

Which modes a model offers for text, a first frame, a first and last frame, and sound is Kling's
capability map (``CAPABILITIES``): the mode is the one that makes the job's resolution, and a
combination no mode of the model allows (2.1 Master at 720p, a last frame at 720p) is refused
before the call. A model missing from the map is sent as mapped, for the upstream to judge.

The native id is ``{endpoint}/{task_id}`` because a task is queried under the endpoint that
created it. Our job id goes out as ``external_task_id``: Kling's caller-chosen task id, unique per
account, which its single-task query also accepts in place of the task id. That is how ``find``
reads a task back after a lost answer. A repeated create makes no second task: Kling refuses the
reused id (with an error, not the first task), so reconcile with ``find``, never by re-submitting.
Kling documents no cancel endpoint [unverified], so this provider is not cancellable.

Extend continues a video Kling made, named by its *video* id (``task_result.videos[].id``), never by
bytes; Kling adds 4-5 s in the source's own model and mode. The gateway keeps the task's native id,
not the video id, so the extend first reads the source's task back (a query, nothing is made) and
takes its video id from the result; a source no Kling job of the owner made is refused before any
call, so routing moves on, and a task Kling no longer holds (deleted after 30 days, or made under
another Kling account) is a final refusal. Kling's extend takes no ``external_task_id``, so a lost
answer to one cannot be looked up: ``find`` answers "unknown" and the worker does not resend it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from vidgate.gateway.providers.base import (
    Accepted,
    JobSpec,
    PollFailed,
    ProviderConfig,
    Rejected,
    UnknownOutcome,
    Upstream,
    UpstreamError,
    UpstreamOutput,
    UpstreamStatus,
)
from vidgate.gateway.providers.cancel import CannotCancel
from vidgate.gateway.providers.http import make_client, request, request_id_of, require, stream_url
from vidgate.gateway.providers.mapping import base64_text, other_roles, refuse_set, resolution_label, unsupported
from vidgate.gateway.providers.reconcile import asking, unknown
from vidgate.gateway.providers.sources import other_inputs, source_video
from vidgate.gateway.secret import Secret, reveal

DEFAULT_BASE_URL = "https://api-singapore.klingai.com"
TOKEN_SECONDS = 1800
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # Kling's limit on an input image
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
DURATIONS = (5, 10)
MODES = {"720p": "std", "1080p": "pro"}
RESOLUTION_OF = {mode: label for label, mode in MODES.items()}
# Models with the ``sound`` switch (2.6 and later); audio needs pro mode there.
SOUND_MODELS = ("kling-v2-6", "kling-v3")
EXTEND = "video-extend"
EXTEND_SECONDS = 5  # Kling adds "4-5 s" per extend; priced and stated as 5
ENDPOINTS = ("text2video", "image2video", EXTEND)


@dataclass(frozen=True)
class Capability:
    """The modes in which one model makes video from text, from a first frame, from a first and a last
    frame, and with sound (none: not at all); from Kling's capability map."""

    text: tuple[str, ...]
    image: tuple[str, ...]
    first_last: tuple[str, ...]
    sound: tuple[str, ...] = ()
    sound_with_last_frame: bool = True


_PRO = ("pro",)
_BOTH = ("std", "pro")
CAPABILITIES: dict[str, Capability] = {
    "kling-v1-6": Capability(text=_BOTH, image=_BOTH, first_last=_PRO),
    # The Master models have no std mode: they make 1080p only.
    "kling-v2-master": Capability(text=_PRO, image=_PRO, first_last=()),
    "kling-v2-1-master": Capability(text=_PRO, image=_PRO, first_last=()),
    "kling-v2-1": Capability(text=(), image=_BOTH, first_last=_PRO),
    "kling-v2-5-turbo": Capability(text=_PRO, image=_PRO, first_last=_PRO),
    "kling-v2-6": Capability(text=_BOTH, image=_BOTH, first_last=_PRO, sound=_PRO, sound_with_last_frame=False),
}
# Business codes Kling answers with HTTP 200 but ``code != 0`` are unexpected; those that mean
# "try later" are retryable (rate and concurrency limits, internal errors), per §7.4.
_RETRYABLE_CODES = frozenset({1302, 1303, 5000, 5001, 5002})

_STATUS: dict[str, UpstreamStatus] = {"submitted": "queued", "processing": "processing"}
_RESOLUTION_BY_SHORT_SIDE = {720: "720p", 1080: "1080p"}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(access_key: str, secret_key: str, now: float | None = None) -> str:
    """The HS256 token Kling wants: ``iss`` = access key, valid from 5 s ago for 30 minutes."""
    issued = int(time.time() if now is None else now)
    header = {"alg": "HS256", "typ": "JWT"}
    payload = {"iss": access_key, "exp": issued + TOKEN_SECONDS, "nbf": issued - 5}
    signing_input = ".".join(_b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload))
    signature = hmac.new(secret_key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def _aspect(job: JobSpec) -> str:
    if job.aspect_ratio:
        if job.aspect_ratio not in ASPECT_RATIOS:
            raise unsupported(f"kling makes {', '.join(ASPECT_RATIOS)} video, not {job.aspect_ratio}")
        return job.aspect_ratio
    shape = job.width / job.height
    return "16:9" if shape > 1.2 else "9:16" if shape < 0.83 else "1:1"


def _mode(job: JobSpec, kind: str, with_sound: bool) -> str:
    """The mode that makes the job's resolution, when the model's capability map allows it for ``kind``
    (``text``, ``image`` or ``first_last``) and for sound."""
    label = resolution_label(job, _RESOLUTION_BY_SHORT_SIDE) or ""
    if label not in MODES:
        raise unsupported(f"kling makes 720p (std) or 1080p (pro) video, not {job.resolution or job.size}")
    mode = MODES[label]
    cap = CAPABILITIES.get(job.provider_model)
    if cap is None:
        return mode
    what = {"text": "from text", "image": "from a first frame", "first_last": "with a last frame"}[kind]
    modes = getattr(cap, kind)
    if not modes:
        raise unsupported(f"{job.provider_model} makes no video {what}")
    if mode not in modes:
        made = " or ".join(f"{RESOLUTION_OF[m]} ({m})" for m in modes)
        raise unsupported(f"{job.provider_model} makes video {what} at {made} only, not {label}")
    if with_sound and mode not in cap.sound:
        raise unsupported(f"{job.provider_model} makes audio only in pro mode (1080p)")
    if with_sound and kind == "first_last" and not cap.sound_with_last_frame:
        raise unsupported(f"{job.provider_model} makes no audio with a last frame")
    return mode


def _image(data: bytes, role: str) -> str:
    if len(data) > MAX_IMAGE_BYTES:
        raise unsupported(f"kling takes images up to 10 MB; the {role} image is larger")
    return base64_text(data)


class KlingProvider(CannotCancel):
    """Submits to Kling's text2video / image2video endpoints and polls the task."""

    name = "kling"
    reconcile = "lookup"

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        # Both kept as Secret, revealed only to sign each call's token.
        self.access_key = Secret(config.revealed_api_key())
        self.secret_key = Secret(reveal(config.extra.get("secret_key")))
        self._client = make_client(config, default_base_url=DEFAULT_BASE_URL)

    def _auth(self) -> dict[str, str]:
        # A fresh token per call (cheap) rather than a cached one near its expiry. Sent per call,
        # never as a client default: outputs are on Kling's CDN, which must not see it.
        return {"Authorization": f"Bearer {make_jwt(self.access_key.reveal(), self.secret_key.reveal())}"}

    def build_request(self, job: JobSpec) -> tuple[str, dict[str, Any]]:
        """The endpoint (``text2video``/``image2video``/``video-extend``) and body; mapped fields win over
        ``provider_params``. An extend's ``video_id`` is added by ``submit``, which reads it upstream."""
        if job.seed is not None:
            raise unsupported("kling takes no seed")
        if job.sample_count != 1:
            raise unsupported("kling makes one video per task")
        refuse_set(job, ("enhance_prompt", "person_generation", "compression_quality", "resize_mode"), "kling")
        if job.op == "edit":
            raise unsupported("kling edits no video here; it extends one it made")
        if job.op == "extend":
            return EXTEND, self._extend(job)
        if job.duration not in DURATIONS:
            raise unsupported(f"kling makes 5 s or 10 s videos, not {job.duration} s")
        if other := other_roles(job, ("first_frame", "last_frame")):
            raise unsupported(f"kling takes first_frame and last_frame images, not {', '.join(other)}")
        first, last = job.reference("first_frame"), job.reference("last_frame")
        if last is not None and first is None:
            raise unsupported("kling takes a last frame only together with a first frame")
        sound = job.provider_model.startswith(SOUND_MODELS)
        if job.audio and not sound:
            raise unsupported(f"{job.provider_model} makes no audio")
        kind = "text" if first is None else "image" if last is None else "first_last"
        mode = _mode(job, kind, job.audio)
        body: dict[str, Any] = {
            "model_name": job.provider_model,
            "prompt": job.prompt,
            "mode": mode,
            "duration": str(job.duration),
            "external_task_id": job.job_id,
        }
        if job.negative_prompt:
            body["negative_prompt"] = job.negative_prompt
        if sound:
            if job.audio and mode != "pro":
                raise unsupported(f"{job.provider_model} makes audio only in pro mode (1080p)")
            body["sound"] = "on" if job.audio else "off"
        if first is None:
            endpoint = "text2video"
            body["aspect_ratio"] = _aspect(job)
        else:
            # The output follows the image's shape; whether image2video also takes aspect_ratio
            # is [unverified], so it is not sent.
            endpoint = "image2video"
            body["image"] = _image(first.data, "first_frame")
            if last is not None:
                body["image_tail"] = _image(last.data, "last_frame")
        return endpoint, {**dict(job.provider_params), **body}

    def _extend(self, job: JobSpec) -> dict[str, Any]:
        """An extend's body, but for the ``video_id`` that ``submit`` reads from the source's task."""
        if other := other_inputs(job, {"video:source"}):
            raise unsupported(f"kling extends a video from the video alone, without {', '.join(other)}")
        if job.duration != EXTEND_SECONDS:
            raise unsupported(f"kling extends a video by about {EXTEND_SECONDS} s, not {job.duration} s")
        if job.audio:
            raise unsupported("kling extends a video without sound")
        source_task(job)
        body: dict[str, Any] = {"prompt": job.prompt}
        if job.negative_prompt:
            body["negative_prompt"] = job.negative_prompt
        return {**dict(job.provider_params), **body}

    async def _video_id(self, job: JobSpec) -> str:
        """The id of the video the source's Kling task made, read back from that task."""
        endpoint, task_id = source_task(job)
        try:
            data, response = await request(
                self._client,
                "GET",
                f"/v1/videos/{endpoint}/{quote(task_id, safe='')}",
                phase="source",
                expect=(200, 404),
                headers=self._auth(),
            )
        except PollFailed as exc:  # nothing was made: another provider may try
            raise Rejected(f"kling could not read the source's task: {exc.message}", retryable=True) from exc
        rid = request_id_of(response) or (data.get("request_id") if isinstance(data, dict) else None)
        code = data.get("code") if isinstance(data, dict) else None
        if response.status_code == 404 or code == 1203:
            raise Rejected(
                f"kling holds no task {task_id} to extend (deleted after 30 days, or made with another Kling key)",
                retryable=False,
                request_id=rid,
                code="invalid_reference",
            )
        task = data.get("data") if isinstance(data, dict) and code == 0 else None
        result = task.get("task_result") if isinstance(task, dict) else None
        videos = result.get("videos") if isinstance(result, dict) else None
        video = videos[0] if isinstance(videos, list) and videos and isinstance(videos[0], dict) else {}
        video_id = video.get("id")
        if not isinstance(video_id, str | int) or isinstance(video_id, bool) or not str(video_id):
            raise Rejected(f"kling's task {task_id} holds no finished video to extend", retryable=True, request_id=rid)
        return str(video_id)

    async def submit(self, job: JobSpec) -> Accepted:
        if not self.secret_key:
            raise Rejected(
                "kling needs a secret key (set providers.kling.secret_key)",
                retryable=True,
                code="provider_misconfigured",
            )
        endpoint, body = self.build_request(job)
        if endpoint == EXTEND:
            body = {**body, "video_id": await self._video_id(job)}
        data, response = await request(
            self._client,
            "POST",
            f"/v1/videos/{endpoint}",
            phase="submit",
            expect=(200,),
            json=body,
            headers=self._auth(),
        )
        rid = request_id_of(response) or (data.get("request_id") if isinstance(data, dict) else None)
        code = require(data, "code", phase="submit")
        if code != 0:
            raise Rejected(
                str(data.get("message") or f"kling answered code {code}"),
                retryable=code in _RETRYABLE_CODES,
                request_id=rid,
                code=f"kling_{code}",
            )
        task_id = require(data, "data", "task_id", phase="submit")
        if not isinstance(task_id, str | int) or not str(task_id):
            raise UnknownOutcome("kling answered without a task id", retryable=True, request_id=rid)
        return Accepted(native_id=f"{endpoint}/{task_id}", request_id=rid)

    async def find(self, job: JobSpec, since: float | None = None) -> Accepted | None:
        """The task whose ``external_task_id`` is our job id, read back by that id."""
        try:
            endpoint, _ = self.build_request(job)
        except Rejected:
            return None  # refused before sending: nothing was created
        if not self.secret_key:
            return None
        if endpoint == EXTEND:
            raise unknown(self.name, "an extend carries no id of ours to look it up by", code="reconcile_unsupported")
        with asking(self.name):
            data, response = await request(
                self._client,
                "GET",
                f"/v1/videos/{endpoint}/{quote(job.job_id, safe='')}",
                phase="reconcile",
                expect=(200, 404),
                headers=self._auth(),
            )
            rid = request_id_of(response) or (data.get("request_id") if isinstance(data, dict) else None)
            code = data.get("code") if isinstance(data, dict) else None
            if code == 1203:  # Kling's "no such task" [its answer for an unknown external id is unverified]
                return None
            if response.status_code == 404 or code != 0:
                raise PollFailed(f"kling answered {response.status_code} with code {code}", retryable=True)
            task = require(data, "data")
            info = task.get("task_info") if isinstance(task, dict) else None
            task_id = task.get("task_id") if isinstance(task, dict) else None
            if not isinstance(info, dict) or info.get("external_task_id") != job.job_id or not task_id:
                raise unknown(self.name, "the task it answered is not the one our job id names")
        return Accepted(native_id=f"{endpoint}/{task_id}", request_id=rid)

    async def poll(self, job: JobSpec, native_id: str) -> Upstream:
        endpoint, sep, task_id = native_id.partition("/")
        if not sep or endpoint not in ENDPOINTS or not task_id:
            raise PollFailed(f"not a kling native id: {native_id!r}", retryable=False)
        data, response = await request(
            self._client,
            "GET",
            f"/v1/videos/{endpoint}/{quote(task_id, safe='')}",
            phase="poll",
            expect=(200,),
            headers=self._auth(),
        )
        rid = request_id_of(response) or (data.get("request_id") if isinstance(data, dict) else None)
        if require(data, "code") != 0:
            raise PollFailed(str(data.get("message") or "kling answered an error code"), retryable=True, request_id=rid)
        task = require(data, "data")
        status = require(task, "task_status")
        if status in _STATUS:
            return Upstream(status=_STATUS[status])
        if status == "succeed":
            result = task.get("task_result")
            videos: Any = result.get("videos") if isinstance(result, dict) else None
            outputs = tuple(
                UpstreamOutput(index=i, url=v["url"])
                for i, v in enumerate(v for v in videos or () if isinstance(v, dict) and isinstance(v.get("url"), str))
            )
            if not outputs:
                raise PollFailed("kling task succeeded without video URLs", retryable=True, request_id=rid)
            return Upstream(status="completed", progress=100, outputs=outputs, seconds=_seconds(videos[0]))
        if status == "failed":
            message = str(task.get("task_status_msg") or "kling task failed")
            return Upstream(status="failed", error=UpstreamError(code="task_failed", message=message, request_id=rid))
        raise PollFailed(f"kling answered an unknown task status {status!r}", retryable=True, request_id=rid)

    def open_output(self, out: UpstreamOutput) -> AsyncIterator[bytes]:
        return stream_url(self._client, out.url, out.headers)

    async def aclose(self) -> None:
        await self._client.aclose()


def source_task(job: JobSpec) -> tuple[str, str]:
    """The endpoint and task id of the Kling task that made the job's source video; a source Kling did
    not make for one of the owner's jobs is refused (routing moves on)."""
    origin = source_video(job, "kling").origin
    if origin is None or origin.provider != "kling":
        made = "a video from elsewhere" if origin is None else f"a video {origin.provider} made"
        raise unsupported(f"kling extends only a video Kling made (an output of one of your kling jobs), not {made}")
    endpoint, sep, task_id = origin.native_id.partition("/")
    if not sep or endpoint not in ENDPOINTS or not task_id:
        raise unsupported(f"kling cannot name the source's task from {origin.native_id!r}")
    return endpoint, task_id


def _seconds(video: Any) -> float | None:
    """Kling reports each video's duration as a string such as ``"5.1"``."""
    duration = video.get("duration") if isinstance(video, dict) else None
    try:
        return float(duration) if duration is not None else None
    except (TypeError, ValueError):
        return None
