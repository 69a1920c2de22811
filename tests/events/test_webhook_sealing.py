"""A job's own webhook secret: sealed in its row, opened only to sign, never shown; a webhook without
a secret delivered unsigned; ``endpointId`` taken for ``endpoint_id``. Over real HTTP on both
backends, with deliveries checked as the reference's receivers check them."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
from compat.receiver import Delivery, Receiver
from fakes.server import FakeUpstream
from helpers.backends import execute, rows
from helpers.gateway import GatewayProcess, wait_status
from phaseo import verify_async_webhook_signature

from vidgate.gateway.jobs.spec import Webhook, decode_spec, encode_spec
from vidgate.gateway.secret import SealError, Secret, SecretBox
from vidgate.webhooks import WebhookSignatureError, verify

pytestmark = pytest.mark.both_backends

MODEL = "vidgate/procedural"
SIGNATURE_HEADERS = ("webhook-signature", "x-phaseo-signature", "x-phaseo-timestamp")


def whsec() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.server = FakeUpstream(rec.app())
    with rec.server:
        yield rec


def create(api: httpx.Client, webhook: dict[str, Any]) -> dict[str, Any]:
    body = {"model": MODEL, "prompt": f"a lantern {uuid.uuid4().hex[:8]}", "duration": 1, "size": "160x90"}
    r = api.post("/v1/videos", json={**body, "webhook": webhook})
    assert r.status_code == 202, r.text
    return r.json()


def refused(r: httpx.Response, param: str) -> str:
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_error" and error["param"] == param, error
    return str(error["message"])


def verified(delivery: Delivery, secret: str, video_id: str) -> dict[str, Any]:
    """Both schemes verify with ``secret`` and with no other; the body is the job's event."""
    body, headers = delivery.body, delivery.headers
    assert verify_async_webhook_signature(secret=secret, body=body, headers=headers)
    assert not verify_async_webhook_signature(secret=whsec(), body=body, headers=headers)
    event = verify(body, headers, secret)
    assert event.data.id == video_id
    with pytest.raises(WebhookSignatureError):
        verify(body, headers, whsec())
    return dict(json.loads(body))


def settled(api: httpx.Client, video_id: str, delivered: int, timeout: float = 60.0) -> dict[str, Any]:
    """The job once its view shows ``delivered`` events delivered and no retry pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.get(f"/v1/videos/{video_id}").json()
        summary = job["webhook"]["delivery"]
        if summary["delivered_events"] >= delivered and summary["pending_retries"] == 0:
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"deliveries of {video_id} never settled: {job.get('webhook')}")


def unique(name: str) -> str:
    """A receiver path of the test's own: the receiver outlives one backend's run."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def first_call(receiver: Receiver, name: str, timeout: float = 60.0) -> list[Delivery]:
    """The first delivery to ``name``, whatever it was answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if calls := receiver.of(name):
            return calls[:1]
        time.sleep(0.05)
    raise AssertionError(f"{name}: no delivery arrived")


def forms(secret: str) -> list[str]:
    """How a secret's bytes could show in text: whole, and the base64 body of a ``whsec_`` one."""
    return [secret, secret.removeprefix("whsec_")]


def test_a_jobs_secret_is_sealed_in_its_row_and_deliveries_still_verify(
    gateway: GatewayProcess, api: httpx.Client, receiver: Receiver
) -> None:
    secret, sealed = whsec(), unique("sealed")
    made = create(api, {"url": receiver.url(sealed), "secret": secret, "events": ["video.created", "completed"]})
    video_id = made["id"]
    calls = receiver.wait(sealed, 2)
    assert sorted(verified(c, secret, video_id)["type"] for c in calls) == ["video.completed", "video.created"]
    job = settled(api, video_id, 2)
    assert job["webhook"]["has_secret"] is True and job["webhook"]["url"] == receiver.url(sealed)

    [(spec_text,)] = rows(gateway, "SELECT spec FROM jobs WHERE id = ?", video_id)
    hook = json.loads(spec_text)["webhook"]
    assert hook["secret"] is None and hook["secret_sealed"].startswith("v1:"), hook
    # Nothing the gateway wrote for the job holds the secret: its row, its events, its deliveries.
    written = [
        *rows(gateway, "SELECT * FROM jobs WHERE id = ?", video_id),
        *rows(gateway, "SELECT * FROM events WHERE job_id = ?", video_id),
        *rows(gateway, "SELECT * FROM webhook_deliveries WHERE job_id = ?", video_id),
    ]
    assert len(written) >= 5  # the job, its events (created, processing, completed…), two deliveries
    text = repr(written)
    # Nor any answer or event body (the deliveries carry the job as every event does), nor the log.
    shown = [
        json.dumps(made),
        api.get(f"/v1/videos/{video_id}").text,
        api.get("/v1/videos?limit=100").text,
        api.get(f"/v1/videos/{video_id}/webhook_deliveries").text,
        *(c.body.decode() for c in calls),
    ]
    log = gateway.log_path.read_text(errors="replace")
    for form in forms(secret):
        assert form not in text, "the secret is in the database"
        assert not [s for s in shown if form in s], "the secret is in an answer or an event"
        assert form not in log, "the secret is in the log"


def test_a_row_written_before_sealing_still_delivers_with_its_clear_secret(
    gateway: GatewayProcess, api: httpx.Client, receiver: Receiver
) -> None:
    """A job whose row keeps its secret in the clear (as rows written before sealing do) is signed with it."""
    first, old, legacy = whsec(), "an-older-clear-secret-2025", unique("legacy")
    ready = {"flag": False}
    receiver.plans[legacy] = lambda attempt: 200 if ready["flag"] else 503
    made = create(api, {"url": receiver.url(legacy), "secret": first, "events": ["video.completed"]})
    video_id = made["id"]
    [refused_call] = first_call(receiver, legacy)
    verified(refused_call, first, video_id)

    [(spec_text,)] = rows(gateway, "SELECT spec FROM jobs WHERE id = ?", video_id)
    spec = json.loads(spec_text)
    spec["webhook"].pop("secret_sealed")
    spec["webhook"]["secret"] = old  # the row as an older gateway wrote it
    execute(gateway, "UPDATE jobs SET spec = ? WHERE id = ?", json.dumps(spec), video_id)
    ready["flag"] = True
    [delivery] = api.get(f"/v1/videos/{video_id}/webhook_deliveries").json()["data"]
    r = api.post(f"/v1/videos/{video_id}/webhook_deliveries/{delivery['id']}/redeliver")
    assert r.status_code == 200, r.text

    calls = receiver.wait(legacy, 1)
    [ok] = [c for c in calls if c.status == 200]
    verified(ok, old, video_id)
    assert not verify_async_webhook_signature(secret=first, body=ok.body, headers=ok.headers)
    assert settled(api, video_id, 1)["webhook"]["has_secret"] is True


def test_a_webhook_without_a_secret_is_taken_and_delivered_unsigned(
    gateway: GatewayProcess, api: httpx.Client, receiver: Receiver
) -> None:
    unsigned = unique("unsigned")
    made = create(api, {"url": receiver.url(unsigned), "events": ["video.completed"]})
    assert made["webhook"]["has_secret"] is False and made["webhook"]["url"] == receiver.url(unsigned)
    video_id = made["id"]
    [call] = receiver.wait(unsigned, 1)
    payload = json.loads(call.body)
    assert payload["type"] == "video.completed" and payload["data"]["id"] == video_id
    assert call.headers["x-phaseo-event-id"] == call.headers["webhook-id"] == payload["id"]
    assert call.headers["x-phaseo-event-type"] == "video.completed" and call.headers["x-phaseo-attempt"] == "1"
    assert [h for h in SIGNATURE_HEADERS if h in call.headers] == []
    assert not verify_async_webhook_signature(secret=whsec(), body=call.body, headers=call.headers)
    with pytest.raises(WebhookSignatureError):
        verify(call.body, call.headers, whsec())
    job = settled(api, video_id, 1)
    assert job["webhook"]["has_secret"] is False and job["webhook"]["delivery"]["last_attempt_status"] == "delivered"
    [(spec_text,)] = rows(gateway, "SELECT spec FROM jobs WHERE id = ?", video_id)
    hook = json.loads(spec_text)["webhook"]
    assert hook["secret"] is None and "secret_sealed" not in hook, hook
    # A secret given empty is a mistake, not a wish for unsigned deliveries.
    body = {"model": MODEL, "prompt": "p", "webhook": {"url": receiver.url(unsigned), "secret": ""}}
    assert "leave it out" in refused(api.post("/v1/videos", json=body), "webhook.secret")


def test_endpoint_id_is_taken_in_camel_case_too(gateway: GatewayProcess, api: httpx.Client, receiver: Receiver) -> None:
    camel = unique("camel")
    r = api.post("/v1/webhook-endpoints", json={"url": receiver.url(camel), "events": ["video.completed"]})
    assert r.status_code == 201, r.text
    endpoint = r.json()
    made = create(api, {"endpointId": endpoint["id"]})
    assert made["webhook"]["endpoint_id"] == endpoint["id"] and made["webhook"]["has_secret"] is True
    [call] = receiver.wait(camel, 1)
    assert verified(call, endpoint["signing_secret"], made["id"])["type"] == "video.completed"
    assert settled(api, made["id"], 1)["webhook"]["url"] == receiver.url(camel)

    both = create(api, {"endpoint_id": endpoint["id"], "endpointId": endpoint["id"]})  # the same: one endpoint
    assert both["webhook"]["endpoint_id"] == endpoint["id"]
    assert wait_status(api, both["id"], {"completed"})["status"] == "completed"
    base = {"model": MODEL, "prompt": "p"}
    differ = {**base, "webhook": {"endpoint_id": endpoint["id"], "endpointId": "whe_someone_else"}}
    assert "different endpoints" in refused(api.post("/v1/videos", json=differ), "webhook.endpoint_id")
    unknown = {**base, "webhook": {"endpointId": "whe_nobody"}}
    refused(api.post("/v1/videos", json=unknown), "webhook.endpoint_id")
    with_url = {**base, "webhook": {"endpointId": endpoint["id"], "url": receiver.url(camel)}}
    refused(api.post("/v1/videos", json=with_url), "webhook.endpoint_id")

    document = httpx.get(f"{gateway.base_url}/openapi.json", timeout=30).json()
    fields = document["components"]["schemas"]["WebhookConfig"]["properties"]
    assert fields["endpointId"]["type"] == "string" and "endpoint_id" in fields["endpointId"]["description"]
    assert "unsigned" in fields["secret"]["description"]


# ---- the sealing itself, without a server ------------------------------------------------------


def test_a_sealed_secret_opens_only_for_its_own_job_and_stays_out_of_reprs() -> None:
    box = SecretBox("a sealing key for the test")
    hook = Webhook("https://h.test/in", Secret("my-app-webhook-secret-2026"), ("video.completed",))
    sealed = hook.sealed(box, "vid_1")
    assert sealed.secret is None and sealed.secret_sealed is not msgspec.UNSET and sealed.signed
    assert sealed.signing_secret(box, "vid_1") == Secret("my-app-webhook-secret-2026")
    with pytest.raises(SealError):
        sealed.signing_secret(box, "vid_2")  # copied into another job's row, it does not open
    with pytest.raises(SealError):
        sealed.signing_secret(SecretBox("another key"), "vid_1")
    assert "my-app-webhook-secret" not in repr(sealed) and "v1:" not in repr(sealed)
    with pytest.raises(RuntimeError):
        hook.sealed(None, "vid_1")
    unsigned = Webhook("https://h.test/in")
    assert unsigned.sealed(box, "vid_1") == unsigned and not unsigned.signed
    assert unsigned.signing_secret(box, "vid_1") is None


def test_the_spec_column_round_trips_a_sealed_secret_and_still_reads_a_clear_one() -> None:
    box = SecretBox("a sealing key for the test")
    clear = '{"model":"m","prompt":"p","duration":4,"width":8,"height":8,'
    clear += '"webhook":{"url":"https://h.test/in","secret":"an-old-clear-secret","events":[]}}'
    old = decode_spec(clear)
    assert old.webhook is not None and old.webhook.signing_secret(box, "vid_1") == Secret("an-old-clear-secret")
    new = msgspec.structs.replace(old, webhook=old.webhook.sealed(box, "vid_1"))
    text = encode_spec(new)
    assert "an-old-clear-secret" not in text and '"secret":null' in text and '"secret_sealed":"v1:' in text
    back = decode_spec(text).webhook
    assert back is not None and back.signing_secret(box, "vid_1") == Secret("an-old-clear-secret")
