"""vidgate.webhooks.verify accepts what the gateway signs and refuses anything else."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

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


PLAIN = "my-app-webhook-secret-2026"


def reference_signed(body: bytes, secret: str = PLAIN, at: int | None = None, millis: bool = False) -> dict[str, str]:
    """The reference's headers alone, as a receiver behind a proxy that drops ``webhook-*`` may see them."""
    stamp = str(int((at or time.time()) * (1000 if millis else 1)))
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Phaseo-Timestamp": stamp, "X-Phaseo-Signature": mac}


def an_event() -> bytes:
    video = Video(id="vid_1", status="completed", model="vidgate/procedural", created_at=1)
    return msgspec.json.encode(JobEvent(id="evt_1", type="video.completed", created_at=1, data=video))


def test_verify_takes_the_reference_headers_alone() -> None:
    body = an_event()
    assert verify(body, reference_signed(body), PLAIN).data.id == "vid_1"
    assert verify(body.decode(), reference_signed(body, millis=True), PLAIN).id == "evt_1"
    for headers, secret in (
        (reference_signed(body), PLAIN + "x"),
        (reference_signed(body, at=int(time.time()) - 3600), PLAIN),
        ({**reference_signed(body), "X-Phaseo-Signature": "v1=" + "0" * 64}, PLAIN),
        ({}, PLAIN),
    ):
        with pytest.raises(WebhookSignatureError):
            verify(body, headers, secret)
    with pytest.raises(WebhookSignatureError):
        verify(body.replace(b"completed", b"failed", 1), reference_signed(body), PLAIN)


def test_a_plain_secret_keys_standard_webhooks_with_its_utf8_bytes() -> None:
    body = an_event()
    stamp = datetime.fromtimestamp(time.time(), UTC)
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(PLAIN.encode()).sign("evt_1", stamp, body),
    }
    assert verify(body, headers, PLAIN).type == "video.completed"
    with pytest.raises(WebhookSignatureError):
        verify(body, headers, "another-plain-secret")


def test_either_scheme_is_enough_when_both_are_sent() -> None:
    """A rotation may leave one scheme signed by a secret the receiver no longer holds."""
    body = an_event()
    other = "whsec_" + base64.b64encode(b"o" * 32).decode()
    assert verify(body, {**signed(body, other), **reference_signed(body)}, PLAIN).id == "evt_1"
    assert verify(body, {**signed(body), **reference_signed(body, other)}, SECRET).id == "evt_1"
    with pytest.raises(WebhookSignatureError) as refused:
        verify(body, {**signed(body, other), **reference_signed(body, other)}, PLAIN)
    assert "x-phaseo-signature" in str(refused.value) and PLAIN not in str(refused.value)
