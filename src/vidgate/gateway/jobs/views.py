"""The public view of a job: what every route, event and webhook shows."""

from __future__ import annotations

import math

import msgspec

from vidgate.gateway.base_url import websocket_base
from vidgate.gateway.billing.pricing import usd
from vidgate.gateway.events.webhook_state import public_state
from vidgate.gateway.jobs.records import JobView
from vidgate.gateway.jobs.signing import sign_path
from vidgate.gateway.jobs.state import TERMINAL
from vidgate.gateway.secret import Secret
from vidgate.types import Billing, LifecycleStatus, Usage, Video, VideoOutput

UNSET = msgspec.UNSET
MIN_POLL, MAX_POLL = 1, 20
# The reference's name for each status (``lifecycle_status``): pending until a provider runs the job.
LIFECYCLE: dict[str, LifecycleStatus] = {
    "queued": "pending",
    "processing": "running",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "expired": "expired",
}
# Stored progress sources shown under another name: rows say "estimate", the reference "estimated".
PROGRESS_SOURCES = {"estimate": "estimated"}
# The billing summary's state for each state of the job's hold.
BILLING_STATES = {"held": "estimated", "none": "pending", "settled": "settled", "void": "void"}
NANOS_PER_MICRO = 1000


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


_DECIMALS: dict[int, str] = {}  # a poll formats the same few prices over and over


def decimal_usd(micros: int) -> str:
    """Micro-dollars as an exact decimal string with at least two places: 1000 -> "0.001"."""
    text = _DECIMALS.get(micros)
    if text is None:
        whole, frac = divmod(micros, 1_000_000)
        text = f"{whole}.{f'{frac:06d}'.rstrip('0'):0<2}"
        if len(_DECIMALS) >= 4096:
            _DECIMALS.clear()
        _DECIMALS[micros] = text
    return text


def billing(job: JobView) -> Billing:
    """The job's billing summary: what was estimated and held at create, and what the end made of it."""
    quote, cost, hold = job.quote, job.cost or 0, job.billing_state
    ended = hold in ("settled", "void")
    return Billing(
        currency="USD",
        state=BILLING_STATES[hold],
        held=usd(quote if hold == "held" else 0),
        settled=usd(cost),
        reservation_id=f"res_{job.id[4:]}",
        reservation_status=hold,
        billable=quote > 0 or cost > 0,
        charged=hold == "settled",
        estimated_user_cost=decimal_usd(quote),
        settled_user_cost=decimal_usd(cost) if ended else None,
        estimated_nanos=quote * NANOS_PER_MICRO,
        reserved_nanos=quote * NANOS_PER_MICRO if hold == "held" else 0,
        total_nanos=cost * NANOS_PER_MICRO if ended else None,
    )


def render(job: JobView, *, secret: Secret | str, now: int, ttl: int = 900, base: str | None = None) -> Video:
    """Build the public ``Video`` from a job's record, its URLs on ``base`` (``base_url.py``); without
    one (an event, a webhook), on the base the job was created through."""
    spec = job.spec
    status = job.status
    job_id = job.id
    access = spec.output_access
    stored = job.outputs
    progress = job.progress
    if base is None:
        base = spec.base_url or ""
    url = f"{base}/v1/videos/{job_id}"
    ended = status in TERMINAL
    video = Video(
        id=job_id,
        status=status,
        model=job.model,
        created_at=job.created_at // 1000,
        lifecycle_status=LIFECYCLE[status],
        polling_url=url,
        websocket_url=f"{websocket_base(base)}/v1/async/video/{job_id}/ws",
        cancel_url=None if ended else f"{url}/cancel",
        provider=job.provider or UNSET,
        request_id=job.request_id or UNSET,
        output_access=access,
        generation_id=job.native_id,
        native_video_id=job.native_id,
        started_at=_seconds(job.started_at),
        completed_at=_seconds(job.completed_at),
        seconds=spec.duration,
        size=f"{spec.width}x{spec.height}",
        audio=spec.audio,
        prompt=spec.prompt,
        progress=progress,
        progress_source=PROGRESS_SOURCES.get(source, source) if (source := job.progress_source) else UNSET,
        attempts=UNSET if job.attempts is None else [a.public() for a in job.attempts],
        error=None if job.error is None else job.error.public(),
    )
    if not ended:
        video.poll_after_seconds = poll_after_seconds(
            status=status,
            now=now,
            created_at=job.created_at,
            started_at=job.started_at,
            progress=progress,
            expected_seconds=job.expected_seconds,
        )
    video.billing = billing(job)
    produced = sum(o.duration_seconds for o in stored) if status == "completed" else 0.0
    video.usage = Usage(cost=usd(job.cost or 0), is_byok=job.is_byok, output_video_seconds=round(produced, 3))
    if spec.webhook is not None:
        video.webhook = public_state(spec.webhook, job.webhook_state)
    if status == "completed" and stored:
        expires = now // 1000 + ttl
        outs: list[VideoOutput] = []
        for o in stored:
            out = VideoOutput(index=o.index, mime_type=o.mime_type, bytes_available=True, asset=o.asset())
            if access in ("bytes", "both"):
                content = out.content_url = f"{url}/content?index={o.index}"
                # The images go through the content route where it is open to the job, signed links otherwise.
                if o.thumbnail is not UNSET:
                    out.thumbnail_url = f"{content}&variant=thumbnail"
                if o.spritesheet is not UNSET:
                    out.spritesheet_url = f"{content}&variant=spritesheet"
            if access in ("signed_url", "both"):
                out.download_url = base + sign_path(secret, job_id, o.index, "attachment", expires)
                out.expires_at = expires
                if access == "signed_url":
                    if o.thumbnail is not UNSET:
                        out.thumbnail_url = base + sign_path(secret, job_id, o.index, "inline", expires, "thumbnail")
                    if o.spritesheet is not UNSET:
                        out.spritesheet_url = base + sign_path(
                            secret, job_id, o.index, "inline", expires, "spritesheet"
                        )
            outs.append(out)
        video.outputs = outs
        first = outs[0]
        video.asset = first.asset if first.asset is not UNSET else None
        video.thumbnail_url = first.thumbnail_url
        video.spritesheet_url = first.spritesheet_url
        if access in ("bytes", "both"):
            video.content_url = f"{url}/content"
        if access in ("signed_url", "both"):
            video.download_url = first.download_url
            video.expires_at = expires
    elif not ended:
        video.outputs = []
    return video
