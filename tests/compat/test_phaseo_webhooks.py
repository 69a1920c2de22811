"""Webhook deliveries checked the way a receiver on the reference checks them: with the SDK's
``verify_async_webhook_signature`` (the ``x-phaseo-*`` headers) and with ``vidgate.webhooks.verify``
(the Standard Webhooks headers) on the same request; and the SDK's webhook endpoint operations."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time
import uuid
from typing import Any

import httpx
import pytest
from gen import operations as ops
from helpers.gateway import GatewayProcess
from phaseo import Phaseo, verify_async_webhook_signature

from compat.driver import MODEL, SMALL, call, sdk_for, wait_terminal
from compat.receiver import Delivery, Receiver
from compat.shapes import check_webhook_state
from vidgate.webhooks import WebhookSignatureError, verify

PLAIN_SECRET = "my-app-webhook-secret-2026"


def whsec() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def hook_key(hooks: GatewayProcess) -> str:
    return hooks.new_key()


@pytest.fixture
def hook_sdk(hooks: GatewayProcess, hook_key: str) -> Phaseo:
    return sdk_for(hooks.base_url, hook_key)


def create(sdk: Phaseo, webhook: dict[str, Any]) -> dict[str, Any]:
    body = {"model": MODEL, "prompt": f"rain on a window {uuid.uuid4().hex[:8]}", **SMALL, "webhook": webhook}
    job = call(lambda: sdk.videos.create(body))
    assert wait_terminal(sdk, job["id"])["status"] == "completed"
    return job


def check_delivery(delivery: Delivery, secret: str, video_id: str) -> dict[str, Any]:
    """Both signatures verify with ``secret`` (and not without it); the reference's headers describe the event."""
    headers, body = delivery.headers, delivery.body
    payload = json.loads(body)
    stamp = headers["x-phaseo-timestamp"]
    assert stamp.isdigit() and abs(int(stamp) - time.time()) < 60, stamp
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["x-phaseo-signature"] == mac
    assert verify_async_webhook_signature(secret=secret, body=body, headers=headers)
    assert not verify_async_webhook_signature(secret=secret + "x", body=body, headers=headers)
    assert headers["x-phaseo-event-id"] == payload["id"] == headers["webhook-id"]
    assert headers["x-phaseo-event-type"] == payload["type"]
    assert headers["x-phaseo-attempt"].isdigit() and int(headers["x-phaseo-attempt"]) >= 1
    event = verify(body, headers, secret)
    assert event.id == payload["id"] and event.type == payload["type"] and event.data.id == video_id
    with pytest.raises(WebhookSignatureError):
        verify(body, headers, whsec())
    return payload


def delivered_state(sdk: Phaseo, video_id: str, events: int, timeout: float = 15.0) -> dict[str, Any]:
    """The job as the SDK reads it once its webhook state shows ``events`` delivered and nothing pending."""
    deadline = time.monotonic() + timeout
    job = sdk.videos.retrieve(video_id)
    while time.monotonic() < deadline:
        delivery = job["webhook"]["delivery"]
        if delivery["delivered_events"] >= events and delivery["pending_retries"] == 0:
            return job
        time.sleep(0.1)
        job = sdk.videos.retrieve(video_id)
    raise AssertionError(f"webhook state never settled: {job.get('webhook')}")


def test_deliveries_carry_the_reference_headers(hook_sdk: Phaseo, receiver: Receiver) -> None:
    secret = whsec()
    job = create(hook_sdk, {"url": receiver.url("headers"), "secret": secret, "events": ["video.completed"]})
    [call_] = receiver.wait("headers", 1)
    payload = check_delivery(call_, secret, job["id"])
    assert payload["type"] == "video.completed" and call_.headers["x-phaseo-attempt"] == "1"
    state = check_webhook_state(delivered_state(hook_sdk, job["id"], 1), receiver.url("headers"))
    assert state["delivery"]["last_attempt_status"] == "delivered" and state["delivery"]["next_retry_at"] is None
    assert [a["status"] for a in state["attempts"]] == ["delivered"]


def test_any_reasonable_secret_signs_deliveries(hook_sdk: Phaseo, receiver: Receiver) -> None:
    job = create(hook_sdk, {"url": receiver.url("plain"), "secret": PLAIN_SECRET, "events": ["video.completed"]})
    [call_] = receiver.wait("plain", 1)
    check_delivery(call_, PLAIN_SECRET, job["id"])


def test_default_events_are_the_references(hook_sdk: Phaseo, receiver: Receiver) -> None:
    """No ``events``: the reference's default set (completed, failed, cancelled), not every status change."""
    secret = whsec()
    job = create(hook_sdk, {"url": receiver.url("default"), "secret": secret})
    calls = receiver.wait("default", 1)
    assert [check_delivery(c, secret, job["id"])["type"] for c in calls] == ["video.completed"]


def test_job_event_names_subscribe_to_video_events(hook_sdk: Phaseo, receiver: Receiver) -> None:
    secret = whsec()
    job = create(hook_sdk, {"url": receiver.url("job"), "secret": secret, "events": ["job.created", "job.completed"]})
    calls = receiver.wait("job", 2)
    assert sorted(check_delivery(c, secret, job["id"])["type"] for c in calls) == ["video.completed", "video.created"]


def test_retries_count_attempts_under_one_event_id(hook_sdk: Phaseo, receiver: Receiver) -> None:
    receiver.plans["retry"] = lambda attempt: 503 if attempt <= 2 else 200
    secret = whsec()
    job = create(hook_sdk, {"url": receiver.url("retry"), "secret": secret, "events": ["video.completed"]})
    calls = receiver.wait("retry", 1)
    assert [c.status for c in calls] == [503, 503, 200]
    assert [c.headers["x-phaseo-attempt"] for c in calls] == ["1", "2", "3"]
    assert len({check_delivery(c, secret, job["id"])["id"] for c in calls}) == 1
    state = check_webhook_state(delivered_state(hook_sdk, job["id"], 1), receiver.url("retry"))
    assert state["delivery"]["total_attempts"] == 3 and state["delivery"]["next_retry_at"] is None
    assert [a["status"] for a in state["attempts"]] == ["scheduled_retry", "scheduled_retry", "delivered"]
    assert [a["attempt_number"] for a in state["attempts"]] == [1, 2, 3]


ENDPOINT_FIELDS = {"id", "url", "name", "events", "hasSecret", "status", "workspaceId"}


def new_endpoint(sdk: Phaseo, receiver: Receiver, name: str) -> dict[str, Any]:
    body = {"url": receiver.url(name), "name": name, "events": ["video.completed"]}
    endpoint = call(lambda: ops.createWebhookEndpoint(sdk.raw_client, body=body))
    assert endpoint.keys() >= ENDPOINT_FIELDS, endpoint
    assert endpoint["url"] == receiver.url(name) and endpoint["name"] == name and endpoint["status"] == "active"
    assert endpoint["hasSecret"] is True and endpoint["events"] == ["video.completed"]
    assert isinstance(endpoint["signing_secret"], str) and len(endpoint["signing_secret"]) >= 24
    return endpoint


def test_webhook_endpoints_are_created_and_listed(
    hooks: GatewayProcess, hook_key: str, hook_sdk: Phaseo, receiver: Receiver
) -> None:
    endpoint = new_endpoint(hook_sdk, receiver, "listed")
    listing = call(lambda: ops.listWebhookEndpoints(hook_sdk.raw_client))
    assert listing["object"] == "list"
    [row] = [e for e in listing["data"] if e["id"] == endpoint["id"]]
    assert row.keys() >= ENDPOINT_FIELDS and "signing_secret" not in row and row["hasSecret"] is True
    auth = {"Authorization": f"Bearer {hook_key}"}
    underscored = httpx.get(f"{hooks.base_url}/v1/webhook_endpoints", headers=auth, timeout=30)
    assert underscored.status_code == 200 and endpoint["id"] in {e["id"] for e in underscored.json()["data"]}


def test_jobs_deliver_to_an_endpoint_by_id(hook_sdk: Phaseo, receiver: Receiver) -> None:
    endpoint = new_endpoint(hook_sdk, receiver, "by-id")
    job = create(hook_sdk, {"endpoint_id": endpoint["id"]})
    [call_] = receiver.wait("by-id", 1)
    assert check_delivery(call_, endpoint["signing_secret"], job["id"])["type"] == "video.completed"
    state = check_webhook_state(delivered_state(hook_sdk, job["id"], 1), receiver.url("by-id"))
    assert state["endpoint_id"] == endpoint["id"]


def test_rotated_secret_overlaps_the_old_one(hook_sdk: Phaseo, receiver: Receiver) -> None:
    """After a rotation ``x-phaseo-signature`` (one HMAC) uses the new secret; the Standard Webhooks
    header carries a signature for each secret in the overlap window, so either one verifies."""
    endpoint = new_endpoint(hook_sdk, receiver, "rotated")
    old = endpoint["signing_secret"]
    rotated = call(lambda: ops.rotateWebhookEndpointSecret(hook_sdk.raw_client, path={"id": endpoint["id"]}))
    new = rotated["signing_secret"]
    assert rotated["id"] == endpoint["id"] and isinstance(new, str) and new != old
    job = create(hook_sdk, {"endpoint_id": endpoint["id"]})
    [call_] = receiver.wait("rotated", 1)
    check_delivery(call_, new, job["id"])
    assert not verify_async_webhook_signature(secret=old, body=call_.body, headers=call_.headers)
    assert verify(call_.body, call_.headers, old).data.id == job["id"]


def test_deleted_endpoints_leave_the_listing(hook_sdk: Phaseo, receiver: Receiver) -> None:
    endpoint = new_endpoint(hook_sdk, receiver, "deleted")
    deleted = call(lambda: ops.deleteWebhookEndpoint(hook_sdk.raw_client, path={"id": endpoint["id"]}))
    assert deleted["deleted"] is True and deleted["id"] == endpoint["id"] and deleted["object"] == "webhook_endpoint"
    listing = call(lambda: ops.listWebhookEndpoints(hook_sdk.raw_client))
    assert [e for e in listing["data"] if e["id"] == endpoint["id"] and e["status"] != "deleted"] == []
