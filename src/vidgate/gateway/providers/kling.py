"""Kling's official API: ``POST /v1/videos/{text2video|image2video}``, ``GET …/{task_id}``.

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
        """The endpoint (``text2video``/``image2video``) and body; mapped fields win over ``provider_params``."""
        if job.seed is not None:
            raise unsupported("kling takes no seed")
        if job.sample_count != 1:
            raise unsupported("kling makes one video per task")
        refuse_set(job, ("enhance_prompt", "person_generation", "compression_quality", "resize_mode"), "kling")
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

    async def submit(self, job: JobSpec) -> Accepted:
        if not self.secret_key:
            raise Rejected(
                "kling needs a secret key (set providers.kling.secret_key)",
                retryable=True,
                code="provider_misconfigured",
            )
        endpoint, body = self.build_request(job)
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
        if not sep or endpoint not in ("text2video", "image2video") or not task_id:
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


def _seconds(video: Any) -> float | None:
    """Kling reports each video's duration as a string such as ``"5.1"``."""
    duration = video.get("duration") if isinstance(video, dict) else None
    try:
        return float(duration) if duration is not None else None
    except (TypeError, ValueError):
        return None
