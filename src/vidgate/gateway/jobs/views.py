"""The public view of a job: what every route, event and webhook shows."""

from __future__ import annotations

import math

import msgspec

from vidgate.gateway.billing.pricing import usd
from vidgate.gateway.jobs.records import JobView
from vidgate.gateway.jobs.signing import sign_path
from vidgate.gateway.jobs.state import TERMINAL
from vidgate.gateway.secret import Secret
from vidgate.types import Billing, Usage, Video, VideoOutput

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


def _seconds(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def render(job: JobView, *, secret: Secret | str, now: int, ttl: int = 900) -> Video:
    """Build the public ``Video`` from a job's record."""
    spec = job.spec
    status = job.status
    job_id = job.id
    access = spec.output_access
    stored = job.outputs
    progress = job.progress
    video = Video(
        id=job_id,
        status=status,
        model=job.model,
        created_at=job.created_at // 1000,
        polling_url=f"/v1/videos/{job_id}",
        provider=job.provider or UNSET,
        request_id=job.request_id or UNSET,
        output_access=access,
        generation_id=job.native_id,
        started_at=_seconds(job.started_at),
        completed_at=_seconds(job.completed_at),
        seconds=spec.duration,
        size=f"{spec.width}x{spec.height}",
        audio=spec.audio,
        prompt=spec.prompt,
        progress=progress,
        progress_source=job.progress_source or UNSET,
        attempts=UNSET if job.attempts is None else [a.public() for a in job.attempts],
        error=None if job.error is None else job.error.public(),
    )
    if status not in TERMINAL:
        video.poll_after_seconds = poll_after_seconds(
            status=status,
            now=now,
            created_at=job.created_at,
            started_at=job.started_at,
            progress=progress,
            expected_seconds=job.expected_seconds,
        )
    held, cost = job.quote, job.cost
    state = job.billing_state
    video.billing = Billing(
        currency="USD",
        state=state,
        held=usd(held if state == "held" else 0),
        settled=usd(cost or 0),
        reservation_id=f"res_{job_id[4:]}" if held else UNSET,
    )
    produced = sum(o.duration_seconds for o in stored) if status == "completed" else 0.0
    video.usage = Usage(cost=usd(cost or 0), is_byok=job.is_byok, output_video_seconds=round(produced, 3))
    if status == "completed" and stored:
        expires = now // 1000 + ttl
        outs: list[VideoOutput] = []
        for o in stored:
            out = VideoOutput(index=o.index, mime_type=o.mime_type, bytes_available=True, asset=o.asset())
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
