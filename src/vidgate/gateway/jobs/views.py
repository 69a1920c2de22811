"""The public view of a job row: what every route, event and webhook shows."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import msgspec

from vidgate.gateway.billing.pricing import usd
from vidgate.gateway.jobs.signing import sign_path
from vidgate.gateway.jobs.state import TERMINAL
from vidgate.gateway.secret import Secret
from vidgate.types import Asset, Billing, JobError, ProviderAttempt, Usage, Video, VideoOutput

UNSET = msgspec.UNSET
MIN_POLL, MAX_POLL = 1, 20


def poll_after_seconds(
    *, status: str, now: int, created_at: int, started_at: int | None, progress: int | None, expected_seconds: float
) -> int:
    """How long a client should wait before the next poll, from the expected remaining time.

    With real progress, the rate so far predicts the rest; without it, the model's observed
    latency does. A third of the remaining time keeps polls few but the last one close to done.
    """
    if status in TERMINAL:
        return MAX_POLL
    since = started_at or created_at
    elapsed = max(0.0, (now - since) / 1000)
    if progress and 0 < progress < 100 and elapsed > 0:
        remaining = elapsed * (100 - progress) / progress
    else:
        remaining = max(expected_seconds - elapsed, expected_seconds * 0.1)
        if status == "queued":
            remaining += 1
    return int(min(MAX_POLL, max(MIN_POLL, math.ceil(remaining / 3))))


class _Spec(msgspec.Struct):
    """The part of a stored job spec the view shows; other fields are skipped while decoding."""

    prompt: str
    duration: int
    width: int
    height: int
    audio: bool
    output_access: str = "both"


class _Stored(msgspec.Struct):
    """One output as the worker stored it."""

    index: int
    asset_id: str
    mime_type: str
    bytes: int
    sha256: str
    width: int
    height: int
    duration_seconds: float


# Typed decoders build the view's parts straight from the JSON columns, with no dicts in between.
_SPEC = msgspec.json.Decoder(_Spec)
_OUTPUTS = msgspec.json.Decoder(list[_Stored])
_ATTEMPTS = msgspec.json.Decoder(list[ProviderAttempt])
_ERROR = msgspec.json.Decoder(JobError)


def _seconds(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def render(row: Mapping[str, Any], *, secret: Secret | str, now: int, ttl: int = 900) -> Video:
    """Build the public ``Video`` from a ``jobs`` row."""
    spec = _SPEC.decode(row["spec"])
    status = row["status"]
    job_id = row["id"]
    access = spec.output_access
    stored = _OUTPUTS.decode(row["outputs"]) if row["outputs"] else []
    progress = row["progress"]
    video = Video(
        id=job_id,
        status=status,
        model=row["model"],
        created_at=row["created_at"] // 1000,
        polling_url=f"/v1/videos/{job_id}",
        provider=row["provider"] or UNSET,
        request_id=row["request_id"] or UNSET,
        output_access=access,
        generation_id=row["native_id"],
        started_at=_seconds(row["started_at"]),
        completed_at=_seconds(row["completed_at"]),
        seconds=spec.duration,
        size=f"{spec.width}x{spec.height}",
        audio=spec.audio,
        prompt=spec.prompt,
        progress=progress,
        progress_source=row["progress_source"] or UNSET,
        attempts=_ATTEMPTS.decode(row["attempts"]) if row["attempts"] else UNSET,
        error=_ERROR.decode(row["error"]) if row["error"] else None,
    )
    if status not in TERMINAL:
        video.poll_after_seconds = poll_after_seconds(
            status=status,
            now=now,
            created_at=row["created_at"],
            started_at=row["started_at"],
            progress=progress,
            expected_seconds=row["expected_seconds"],
        )
    held, cost = row["quote"], row["cost"]
    state = row["billing_state"]
    video.billing = Billing(
        currency="USD",
        state=state,
        held=usd(held if state == "held" else 0),
        settled=usd(cost or 0),
        reservation_id=f"res_{job_id[4:]}" if held else UNSET,
    )
    produced = sum(o.duration_seconds for o in stored) if status == "completed" else 0.0
    video.usage = Usage(cost=usd(cost or 0), is_byok=bool(row["is_byok"]), output_video_seconds=round(produced, 3))
    if status == "completed" and stored:
        expires = now // 1000 + ttl
        outs: list[VideoOutput] = []
        for o in stored:
            asset = Asset(o.asset_id, o.mime_type, o.bytes, o.sha256, o.width, o.height, o.duration_seconds)
            out = VideoOutput(index=o.index, mime_type=o.mime_type, bytes_available=True, asset=asset)
            if access in ("bytes", "both"):
                out.content_url = f"/v1/videos/{job_id}/content?index={o.index}"
            if access in ("signed_url", "both"):
                out.download_url = sign_path(secret, job_id, o.index, "attachment", expires)
                out.expires_at = expires
            outs.append(out)
        video.outputs = outs
        first = outs[0]
        video.asset = first.asset if first.asset is not UNSET else None
        if access in ("bytes", "both"):
            video.content_url = f"/v1/videos/{job_id}/content"
        if access in ("signed_url", "both"):
            video.download_url = first.download_url
            video.expires_at = expires
    elif status not in TERMINAL:
        video.outputs = []
    return video
