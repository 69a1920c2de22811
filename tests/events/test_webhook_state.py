"""Webhook names, signatures and the job's delivery summary, as pure functions (no server)."""

from __future__ import annotations

import base64
import json

import msgspec
import pytest
from phaseo import verify_async_webhook_signature
from standardwebhooks import Webhook

from vidgate.errors import ValidationError
from vidgate.gateway.catalog.webhook_config import check_secret, endpoint_events, job_events
from vidgate.gateway.events.signatures import Attempt, signed_headers
from vidgate.gateway.events.webhook_endpoints import generate_secret
from vidgate.gateway.events.webhook_events import DEFAULT_EVENTS, video_event, wanted
from vidgate.gateway.events.webhook_state import (
    HISTORY,
    MAX_ATTEMPTS,
    Summary,
    decode_shown,
    decode_summary,
    encode_summary,
    iso,
    public_state,
    record,
)
from vidgate.gateway.jobs.spec import Webhook as HookSpec
from vidgate.gateway.secret import Secret
from vidgate.types import JobEvent, Video, WebhookDeliverySummary, WebhookState
from vidgate.webhooks import WebhookSignatureError, reference_signature, standard_key, verify

ONE = {"delivery_id": "whd_1", "event_type": "video.completed"}


def test_job_names_and_bare_phases_mean_video_events() -> None:
    assert (
        video_event("job.completed")
        == video_event("completed")
        == video_event("Video.Completed ")
        == ("video.completed")
    )
    assert video_event("batch.completed") is None and video_event("video.nothing") is None
    assert video_event("job.status_changed") == "video.status_changed"
    assert job_events(["completed", "job.completed", "video.failed", "job.created"]) == (
        "video.completed",
        "video.failed",
        "video.created",
    )
    with pytest.raises(ValidationError) as refused:
        job_events(["video.completed", "batch.completed"])
    assert refused.value.param == "webhook.events[1]"
    # An endpoint keeps the reference's names as given (bare phases as job.*), batch.* included.
    assert endpoint_events(["completed", "Batch.Failed", "video.completed", "completed"]) == (
        "job.completed",
        "batch.failed",
        "video.completed",
    )


def test_default_events_are_how_a_job_ends() -> None:
    assert DEFAULT_EVENTS == ("video.completed", "video.failed", "video.cancelled", "video.expired")
    assert [e for e in ("video.created", "video.status_changed", "video.progress") if wanted((), e)] == []
    assert all(wanted((), e) for e in DEFAULT_EVENTS)
    # A subscription to status changes hears of terminal events too; one to created hears nothing else.
    assert wanted(("video.status_changed",), "video.completed") and not wanted(("video.created",), "video.completed")


@pytest.mark.parametrize(
    "secret", ["my-app-webhook-secret-2026", "whsec_" + base64.b64encode(bytes(32)).decode(), "é" * 8]
)
def test_any_reasonable_secret_is_taken(secret: str) -> None:
    assert check_secret(secret) == secret


@pytest.mark.parametrize(
    ("secret", "why"),
    [("", "required"), ("short", "8 to 256"), (" padded-secret", "whitespace"), ("tab\there-it-is", "printable")],
)
def test_unreasonable_secrets_are_refused_without_quoting_them(secret: str, why: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check_secret(secret)
    assert refused.value.param == "webhook.secret" and why in str(refused.value)
    assert not secret or secret.strip() not in str(refused.value)


def test_standard_key_decodes_whsec_base64_and_takes_anything_else_as_utf8() -> None:
    raw = bytes(range(32))
    assert standard_key("whsec_" + base64.b64encode(raw).decode()) == raw
    assert standard_key("whsec_" + base64.b64encode(raw).decode().rstrip("=")) == raw
    assert standard_key("my-app-webhook-secret") == b"my-app-webhook-secret"
    assert standard_key("whsec_not base64!") == b"whsec_not base64!"


def test_generated_secrets_are_url_safe_and_standard_base64_alike() -> None:
    for _ in range(50):
        secret = generate_secret().reveal()
        body = secret.removeprefix("whsec_")
        assert secret.startswith("whsec_") and "-" not in body and "_" not in body and "=" not in body
        assert len(standard_key(secret)) == 32
        assert base64.urlsafe_b64decode(body + "=") == standard_key(secret)


def signed_event(secrets: list[Secret], number: int = 1) -> tuple[bytes, dict[str, str]]:
    event = JobEvent(
        id="evt_1",
        type="video.completed",
        created_at=1,
        data=Video(id="vid_1", status="completed", model="vidgate/procedural", created_at=1),
    )
    body = msgspec.json.encode(event)
    return body, signed_headers(body, secrets, Attempt("evt_1", "video.completed", number, 100, "whd_1"))


def test_both_schemes_sign_the_exact_body_and_describe_the_attempt() -> None:
    plain = "my-app-webhook-secret-2026"
    body, headers = signed_event([Secret(plain)], number=3)
    assert headers["x-phaseo-timestamp"] == headers["webhook-timestamp"]
    assert headers["x-phaseo-signature"] == reference_signature(plain, headers["x-phaseo-timestamp"], body)
    assert verify_async_webhook_signature(secret=plain, body=body, headers=headers)
    assert Webhook(plain.encode()).verify(body, headers)["id"] == "evt_1"
    assert headers["x-phaseo-event-id"] == headers["webhook-id"] == json.loads(body)["id"]
    assert headers["x-phaseo-event-type"] == "video.completed"
    assert (headers["x-phaseo-attempt"], headers["x-phaseo-max-attempts"]) == ("3", "100")
    assert headers["x-phaseo-delivery-key"] == "whd_1"
    assert verify(body, headers, plain).data.id == "vid_1"


def test_a_rotation_signs_standard_webhooks_with_both_and_the_reference_with_the_newest() -> None:
    new, old = "whsec_" + base64.b64encode(b"n" * 32).decode(), "an-older-plain-secret"
    body, headers = signed_event([Secret(new), Secret(old)])
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert verify_async_webhook_signature(secret=new, body=body, headers=headers)
    assert not verify_async_webhook_signature(secret=old, body=body, headers=headers)
    assert verify(body, headers, new).id == verify(body, headers, old).id == "evt_1"
    with pytest.raises(WebhookSignatureError):
        verify(body, headers, "a-third-secret-entirely")


def shown_state(hook: HookSpec, summary: Summary | None) -> WebhookState:
    """The view's ``webhook`` as a client decodes it, from the column as the deliverer left it."""
    text = None if summary is None else encode_summary(summary)
    return msgspec.json.decode(msgspec.json.encode(public_state(hook, decode_shown(text))), type=WebhookState)


def test_the_summary_follows_retries_to_delivery() -> None:
    hook = HookSpec("https://h.test/in", Secret("s3cret-value"), ("video.completed",))
    assert shown_state(hook, None).delivery == WebhookDeliverySummary() and shown_state(hook, None).attempts == []
    s = record(
        Summary(), status="scheduled_retry", number=1, at=1_000, next_at=2_000, code=503, error="HTTP 503", **ONE
    )
    s = record(s, status="scheduled_retry", number=2, at=2_000, next_at=4_000, code=503, error="HTTP 503", **ONE)
    mid = shown_state(hook, s).delivery
    assert (mid.total_attempts, mid.pending_retries, mid.delivered_events) == (2, 1, 0)
    assert mid.next_retry_at == iso(4_000) and mid.last_attempt_status == "scheduled_retry"
    s = record(decode_summary(encode_summary(s)), status="delivered", number=3, at=4_000, code=200, preview="ok", **ONE)
    state = shown_state(hook, s)
    assert state.url == "https://h.test/in" and state.has_secret and state.endpoint_id is None
    d = state.delivery
    assert (d.total_attempts, d.pending_retries, d.delivered_events, d.delivered_event_types) == (
        3,
        0,
        1,
        ["video.completed"],
    )
    assert d.next_retry_at is None and d.last_attempt_status == "delivered" and d.last_response_status == 200
    assert d.last_delivered_at == iso(4_000) and d.last_failure_at == iso(2_000) and d.last_error_message == "HTTP 503"
    assert [(a.status, a.attempt_number, a.delivery_key) for a in state.attempts] == [
        ("scheduled_retry", 1, "whd_1"),
        ("scheduled_retry", 2, "whd_1"),
        ("delivered", 3, "whd_1"),
    ]
    assert state.attempts[-1].delivered_at == iso(4_000) and state.attempts[-1].response_body_preview == "ok"
    assert state.attempts[0].tried_at == "1970-01-01T00:00:01.000Z" and state.attempts[0].max_attempts == MAX_ATTEMPTS
    assert "s3cret-value" not in msgspec.json.encode(public_state(hook, None)).decode()


def test_the_summary_keeps_the_latest_attempts_and_every_count() -> None:
    s = Summary()
    for n in range(1, HISTORY + 11):
        s = record(s, status="scheduled_retry", number=n, at=n, next_at=n + 1, error="timed out", **ONE)
    s = record(s, status="failed_permanently", number=HISTORY + 11, at=999, error="gave up", **ONE)
    state = shown_state(HookSpec("", None, (), endpoint_id="whe_1"), s)
    assert len(state.attempts) == HISTORY and state.attempts[-1].attempt_number == HISTORY + 11
    assert state.delivery.total_attempts == HISTORY + 11 and state.delivery.pending_retries == 0
    assert state.delivery.last_attempt_status == "failed_permanently" and state.delivery.last_error_message == "gave up"
    # A job sent to an endpoint: signed by the endpoint's secret, its events the defaults until given.
    assert state.has_secret and state.endpoint_id == "whe_1" and state.url is None
    assert state.events == list(DEFAULT_EVENTS)
