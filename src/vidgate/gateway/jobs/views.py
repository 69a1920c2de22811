"""The public view of a job row: what every route, event and webhook shows."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import msgspec
import orjson

from vidgate.gateway.billing.pricing import usd
from vidgate.gateway.jobs.signing import sign_path
from vidgate.gateway.jobs.state import TERMINAL
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


def _json(value: Any) -> Any:
    if value is None or isinstance(value, (dict, list)):
        return value
    return orjson.loads(value)


def _seconds(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def render(
    row: Mapping[str, Any], *, secret: str, now: int, ttl: int = 900, spec: dict[str, Any] | None = None
) -> Video:
    """Build the public ``Video`` from a ``jobs`` row."""
    spec = spec if spec is not None else _json(row["spec"])
    status = row["status"]
    job_id = row["id"]
    access = spec.get("output_access", "both")
    outputs_raw = _json(row["outputs"]) or []
    attempts_raw = _json(row["attempts"]) or []
    error_raw = _json(row["error"])
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
        seconds=spec["duration"],
        size=f"{spec['width']}x{spec['height']}",
        audio=spec["audio"],
        prompt=spec["prompt"],
        progress=progress,
        progress_source=row["progress_source"] or UNSET,
        attempts=[ProviderAttempt(**a) for a in attempts_raw] if attempts_raw else UNSET,
        error=JobError(**error_raw) if error_raw else None,
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
    produced = sum(o["duration_seconds"] for o in outputs_raw) if status == "completed" else 0.0
    video.usage = Usage(cost=usd(cost or 0), is_byok=bool(row["is_byok"]), output_video_seconds=round(produced, 3))
    if status == "completed" and outputs_raw:
        expires = now // 1000 + ttl
        outs: list[VideoOutput] = []
        for o in outputs_raw:
            asset = Asset(
                id=o["asset_id"],
                mime_type=o["mime_type"],
                bytes=o["bytes"],
                sha256=o["sha256"],
                width=o["width"],
                height=o["height"],
                duration_seconds=o["duration_seconds"],
            )
            out = VideoOutput(index=o["index"], mime_type=o["mime_type"], bytes_available=True, asset=asset)
            if access in ("bytes", "both"):
                out.content_url = f"/v1/videos/{job_id}/content?index={o['index']}"
            if access in ("signed_url", "both"):
                out.download_url = sign_path(secret, job_id, o["index"], "attachment", expires)
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
