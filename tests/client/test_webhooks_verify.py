"""vidgate.webhooks.verify accepts what the gateway signs and refuses anything else."""

from __future__ import annotations

import base64
import time

import msgspec
import pytest
from standardwebhooks import Webhook

from vidgate.types import JobEvent, Video
from vidgate.webhooks import WebhookSignatureError, verify

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def signed(body: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(at or time.time(), UTC)
    return {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign("evt_1", stamp, body.decode()),
    }


def test_verify_returns_the_typed_event() -> None:
    event = JobEvent(
        id="evt_1",
        type="video.completed",
        created_at=1,
        data=Video(id="vid_1", status="completed", model="vidgate/procedural", created_at=1),
    )
    body = msgspec.json.encode(event)
    got = verify(body, signed(body), SECRET)
    assert got.type == "video.completed" and got.data.id == "vid_1"
    with pytest.raises(WebhookSignatureError):
        verify(body, signed(body, "whsec_" + base64.b64encode(b"x" * 32).decode()), SECRET)
    with pytest.raises(WebhookSignatureError):
        verify(body.replace(b"completed", b"failed", 1), signed(body), SECRET)
    with pytest.raises(WebhookSignatureError):
        verify(body, signed(body, at=int(time.time()) - 3600), SECRET)
