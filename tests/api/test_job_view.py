"""The job view's reference fields: lifecycle status, provider id, progress source and the billing summary."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest

from vidgate.gateway.jobs.records import JobView
from vidgate.gateway.jobs.spec import VideoSpec
from vidgate.gateway.jobs.views import decimal_usd, render
from vidgate.types import Video

SPEC = VideoSpec(model="vidgate/procedural", prompt="a fox", duration=2, width=160, height=90)


def job(**fields: Any) -> JobView:
    values: dict[str, Any] = {
        "id": "vid_01abc",
        "model": "vidgate/procedural",
        "status": "queued",
        "provider": "vidgate",
        "native_id": None,
        "spec": SPEC,
        "created_at": 1_700_000_000_000,
        "started_at": None,
        "completed_at": None,
        "expected_seconds": 5,
        "progress": 0,
        "progress_source": "estimate",
        "error": None,
        "attempts": None,
        "outputs": (),
        "request_id": "req_1",
        "quote": 4000,
        "cost": None,
        "billing_state": "held",
        "is_byok": False,
    }
    values.update(fields)
    values.update({name: None for name in JobView.__struct_fields__ if name not in values})  # the rest: unset
    return JobView(**values)


@pytest.mark.parametrize(
    ("micros", "text"),
    [(0, "0.00"), (1, "0.000001"), (1000, "0.001"), (10_000, "0.01"), (1_500_000, "1.50"), (12_345_678, "12.345678")],
)
def test_costs_are_exact_decimal_strings(micros: int, text: str) -> None:
    assert decimal_usd(micros) == text
    assert Decimal(text) * 10**9 == micros * 1000


def test_a_queued_job_in_the_references_terms() -> None:
    video = render(job(), secret="s", now=1_700_000_000_500, base="https://v.test")
    assert video.lifecycle_status == "pending" and video.native_video_id is None
    assert video.progress_source == "estimated"  # stored as "estimate", shown as the reference spells it
    assert video.cancel_url == "https://v.test/v1/videos/vid_01abc/cancel"
    assert video.websocket_url == "wss://v.test/v1/async/video/vid_01abc/ws"
    billing = video.billing
    assert isinstance(billing, msgspec.Struct)
    assert msgspec.to_builtins(billing) == {
        "currency": "USD",
        "state": "estimated",
        "held": 0.004,
        "settled": 0.0,
        "reservation_id": "res_01abc",
        "reservation_status": "held",
        "billable": True,
        "charged": False,
        "estimated_user_cost": "0.004",
        "settled_user_cost": None,
        "estimated_nanos": 4_000_000,
        "reserved_nanos": 4_000_000,
        "total_nanos": None,
    }
    assert render(job(status="processing"), secret="s", now=1).lifecycle_status == "running"


def test_every_end_of_the_hold() -> None:
    settled = render(job(status="completed", native_id="n1", billing_state="settled", cost=2500), secret="s", now=1)
    assert settled.native_video_id == "n1" and settled.cancel_url is None
    b = settled.billing
    assert not isinstance(b, msgspec.UnsetType)
    assert (b.state, b.charged, b.settled_user_cost, b.total_nanos, b.reserved_nanos) == (
        "settled",
        True,
        "0.0025",
        2_500_000,
        0,
    )
    for status in ("failed", "cancelled"):
        void = render(job(status=status, billing_state="void", cost=0), secret="s", now=1).billing
        assert not isinstance(void, msgspec.UnsetType)
        assert (void.state, void.charged, void.settled_user_cost, void.total_nanos) == ("void", False, "0.00", 0)
    # A completed job whose outputs were later deleted keeps what it was charged.
    expired = render(job(status="expired", billing_state="settled", cost=2500), secret="s", now=1)
    assert expired.lifecycle_status == "expired" and expired.billing.state == "settled"  # type: ignore[union-attr]
    free = render(job(quote=0, billing_state="none"), secret="s", now=1).billing
    assert not isinstance(free, msgspec.UnsetType)
    assert (free.state, free.billable, free.reserved_nanos, free.estimated_user_cost) == ("pending", False, 0, "0.00")


def test_urls_without_a_request_use_the_base_the_job_was_created_through() -> None:
    created = job(spec=msgspec.structs.replace(SPEC, base_url="http://a.test:8080"))
    assert render(created, secret="s", now=1).polling_url == "http://a.test:8080/v1/videos/vid_01abc"
    assert render(created, secret="s", now=1, base="https://b.test").polling_url == "https://b.test/v1/videos/vid_01abc"
    assert render(job(), secret="s", now=1).polling_url == "/v1/videos/vid_01abc"  # a job from before bases were kept


def test_an_event_stored_by_an_older_gateway_still_decodes() -> None:
    """Webhook retries and stream catch-up re-read stored events: the old billing shape must decode."""
    old = {
        "id": "vid_01abc",
        "status": "queued",
        "model": "vidgate/procedural",
        "created_at": 1,
        "polling_url": "/v1/videos/vid_01abc",
        "progress_source": "estimate",
        "billing": {"currency": "USD", "state": "held", "held": 0.004, "settled": 0.0},
    }
    video = msgspec.convert(old, Video)
    assert video.billing.state == "held" and video.lifecycle_status is msgspec.UNSET  # type: ignore[union-attr]
    assert msgspec.json.decode(msgspec.json.encode(video))["billing"] == old["billing"]
