"""The reference SDK's response shapes, as checks on the plain dicts ``phaseo`` hands back.

Field names, enums and types follow the SDK's generated models (``gen/models.py``:
``VideoGenerationResponse``, ``VideoBillingSummary``, ``AsyncWebhookPublicState``, ``VideoOutput``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from compat.driver import TERMINAL

STATUSES = frozenset({"queued", "processing", "completed", "failed", "cancelled", "expired"})
# The reference's lifecycle_status for each public status (``pending`` until a provider runs it).
LIFECYCLE = {
    "queued": "pending",
    "processing": "running",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
    "expired": "expired",
}
BILLING_STATES = frozenset({"pending", "estimated", "settled", "void"})
ATTEMPT_STATUSES = frozenset({"delivered", "scheduled_retry", "failed_permanently"})
DECIMAL = re.compile(r"^\d+(\.\d+)?$")
NANOS = Decimal(10) ** 9


def ws_base(http_base: str) -> str:
    return "wss://" + http_base[len("https://") :] if http_base.startswith("https://") else "ws://" + http_base[7:]


def check_urls(job: dict[str, Any], base: str) -> None:
    """Every URL in a job is absolute, on ``base`` (the public URL or the request's scheme and host)."""
    vid = job["id"]
    assert job["polling_url"] == f"{base}/v1/videos/{vid}", job["polling_url"]
    assert job["websocket_url"] == f"{ws_base(base)}/v1/async/video/{vid}/ws", job["websocket_url"]
    if job["status"] in TERMINAL:
        assert job["cancel_url"] is None
    else:
        assert job["cancel_url"] == f"{base}/v1/videos/{vid}/cancel", job["cancel_url"]
    if job["status"] == "completed":
        assert job["content_url"].startswith(f"{base}/v1/videos/{vid}/content"), job["content_url"]
        assert job["download_url"].startswith(("http://", "https://")), job["download_url"]
        for out in job["outputs"]:
            assert out["content_url"].startswith(f"{base}/v1/videos/{vid}/content"), out
            assert out["download_url"].startswith(("http://", "https://")), out


def cost(text: str) -> Decimal:
    assert isinstance(text, str) and DECIMAL.match(text), f"not a decimal string: {text!r}"
    return Decimal(text)


def check_billing(job: dict[str, Any]) -> dict[str, Any]:
    """``VideoBillingSummary``: the state follows the job; costs are decimal strings that agree with the nanos."""
    billing = job["billing"]
    status = job["status"]
    assert billing["state"] in BILLING_STATES, billing
    assert isinstance(billing["currency"], str)
    assert isinstance(billing["reservation_id"], str) and billing["reservation_id"], billing
    assert cost(billing["estimated_user_cost"]) * NANOS == billing["estimated_nanos"], billing
    if status == "completed":
        assert billing["state"] == "settled" and billing["charged"] is True, billing
        assert cost(billing["settled_user_cost"]) * NANOS == billing["total_nanos"] > 0, billing
    elif status in TERMINAL:
        assert billing["state"] == "void" and billing["charged"] is False, billing
        assert cost(billing["settled_user_cost"]) == 0, billing
    else:
        assert billing["state"] in ("pending", "estimated"), billing
        assert billing["charged"] in (False, None), billing
        assert isinstance(billing["reserved_nanos"], int) and billing["reserved_nanos"] > 0, billing
    return billing


def check_job(job: dict[str, Any], base: str) -> dict[str, Any]:
    """The reference's ``VideoGenerationResponse`` fields vidgate must return beside its own."""
    assert job["id"].startswith("vid_") and job["object"] == "video", job
    assert job["status"] in STATUSES, job
    assert job["lifecycle_status"] == LIFECYCLE[job["status"]], job
    assert "native_video_id" in job and (job["native_video_id"] is None or isinstance(job["native_video_id"], str))
    if job["status"] == "completed":
        assert isinstance(job["native_video_id"], str) and job["native_video_id"], job
        assert job["progress"] == 100
    assert isinstance(job["progress_source"], str) and job["progress_source"] != "estimate", job
    assert job["status"] in TERMINAL or isinstance(job.get("poll_after_seconds"), int), job
    check_urls(job, base)
    check_billing(job)
    return job


def check_webhook_state(job: dict[str, Any], url: str) -> dict[str, Any]:
    """``AsyncWebhookPublicState``: where and what is delivered, never the secret."""
    hook = job["webhook"]
    assert hook["url"] == url and hook["has_secret"] is True, hook
    assert isinstance(hook["events"], list) and hook["events"], hook
    assert "secret" not in hook and "signing_secret" not in hook, hook
    delivery = hook["delivery"]
    for name in ("total_attempts", "delivered_events", "pending_retries"):
        assert isinstance(delivery[name], int), delivery
    assert "next_retry_at" in delivery and "last_attempt_status" in delivery, delivery
    for attempt in hook["attempts"]:
        assert attempt["status"] in ATTEMPT_STATUSES, attempt
        assert isinstance(attempt["attempt_number"], int) and isinstance(attempt["event_type"], str), attempt
    return hook
