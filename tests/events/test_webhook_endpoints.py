"""Webhook endpoints over HTTP: registered once per key, named by jobs, rotated, tested, deleted;
their secrets sealed at rest and shown only by create and rotate; their URLs checked like a job's."""

from __future__ import annotations

import json
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from compat.receiver import Delivery, Receiver
from fakes.server import FakeUpstream
from helpers.gateway import GatewayProcess, wait_status
from phaseo import verify_async_webhook_signature

from vidgate.webhooks import WebhookSignatureError, standard_key, verify

pytestmark = pytest.mark.both_backends

MODEL = "vidgate/procedural"
TERMINAL = {"completed", "failed", "cancelled", "expired"}
SPELLINGS = ("/v1/webhook-endpoints", "/v1/webhook_endpoints")
PLAIN = "a plain endpoint secret, 2026"


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    rec.server = FakeUpstream(rec.app())
    with rec.server:
        yield rec


def register(api: httpx.Client, receiver: Receiver, name: str, **fields: Any) -> dict[str, Any]:
    r = api.post(SPELLINGS[0], json={"url": receiver.url(name), "name": name, **fields})
    assert r.status_code == 201, r.text
    return r.json()


def create_job(api: httpx.Client, webhook: dict[str, Any]) -> dict[str, Any]:
    body = {"model": MODEL, "prompt": f"a kite {uuid.uuid4().hex[:8]}", "duration": 1, "size": "160x90"}
    r = api.post("/v1/videos", json={**body, "webhook": webhook})
    assert r.status_code == 202, r.text
    return r.json()


def refused(r: httpx.Response, status: int, param: str | None) -> str:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param, error
    return str(error["message"])


def test_an_endpoint_is_created_read_changed_and_deleted_under_both_spellings(
    api: httpx.Client, receiver: Receiver
) -> None:
    made = register(api, receiver, "crud")
    secret = made["signing_secret"]
    assert secret.startswith("whsec_") and len(standard_key(secret)) == 32
    assert made["events"] == ["video.completed", "video.failed", "video.cancelled", "video.expired"]
    assert made["hasSecret"] is True and made["status"] == "active" and made["workspaceId"]
    assert made["createdAt"].endswith("Z") and made["deletedAt"] is None
    path = f"/{made['id']}"
    for base in SPELLINGS:
        got = api.get(base + path).json()
        assert got["id"] == made["id"] and "signing_secret" not in got and secret not in json.dumps(got)
        listed = api.get(base).json()
        assert listed["object"] == "list" and made["id"] in {e["id"] for e in listed["data"]}
        assert secret not in json.dumps(listed)
    changed = api.patch(
        SPELLINGS[1] + path, json={"name": "renamed", "events": ["completed", "batch.failed"], "status": "disabled"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["events"], changed.json()["status"]) == (
        "renamed",
        ["job.completed", "batch.failed"],
        "disabled",
    )
    refused(api.patch(SPELLINGS[0] + path, json={"status": "deleted"}), 400, "status")
    refused(api.patch(SPELLINGS[0] + path, json={"url": "ftp://h.test/in"}), 400, "url")
    gone = api.delete(SPELLINGS[1] + path)
    assert gone.json() == {"id": made["id"], "deleted": True, "object": "webhook_endpoint"}, gone.text
    for r in (api.get(SPELLINGS[0] + path), api.delete(SPELLINGS[0] + path), api.post(f"{SPELLINGS[0]}{path}/test")):
        refused(r, 404, "id")
    assert made["id"] not in {e["id"] for e in api.get(SPELLINGS[0]).json()["data"]}


def test_a_job_takes_url_secret_and_events_from_its_endpoint_and_may_override_the_events(
    api: httpx.Client, receiver: Receiver
) -> None:
    name = f"named-{uuid.uuid4().hex[:8]}"  # the receiver outlives a backend's run
    made = register(api, receiver, name, events=["job.completed"], secret=PLAIN)
    assert "signing_secret" in made and made["signing_secret"] == PLAIN
    job = create_job(api, {"endpoint_id": made["id"]})
    hook = job["webhook"]
    assert (hook["endpoint_id"], hook["url"], hook["events"], hook["has_secret"]) == (
        made["id"],
        receiver.url(name),
        ["video.completed"],
        True,
    )
    override = create_job(api, {"endpoint_id": made["id"], "events": ["job.created"]})
    assert override["webhook"]["events"] == ["video.created"]
    wait_status(api, job["id"], TERMINAL)
    wait_status(api, override["id"], TERMINAL)
    calls = receiver.wait(name, 2)
    seen = {(verify(c.body, c.headers, PLAIN).data.id, c.headers["x-phaseo-event-type"]) for c in calls}
    assert seen == {(job["id"], "video.completed"), (override["id"], "video.created")}
    assert all(verify_async_webhook_signature(secret=PLAIN, body=c.body, headers=c.headers) for c in calls)


def test_endpoints_are_the_owners_alone(gateway: GatewayProcess, api: httpx.Client, receiver: Receiver) -> None:
    made = register(api, receiver, "mine")
    path = f"{SPELLINGS[0]}/{made['id']}"
    with gateway.client(gateway.new_key()) as stranger:
        for r in (
            stranger.get(path),
            stranger.patch(path, json={"name": "x"}),
            stranger.post(f"{path}/rotate-secret"),
            stranger.post(f"{path}/test"),
            stranger.delete(path),
        ):
            refused(r, 404, "id")
        assert made["id"] not in {e["id"] for e in stranger.get(SPELLINGS[0]).json()["data"]}
        body = {"model": MODEL, "prompt": "p", "duration": 1, "size": "160x90"}
        r = stranger.post("/v1/videos", json={**body, "webhook": {"endpoint_id": made["id"]}})
        assert made["id"] in refused(r, 400, "webhook.endpoint_id")
    body = {"model": MODEL, "prompt": "p", "duration": 1, "size": "160x90"}
    for hook, param in (
        ({"endpoint_id": "whe_nothing"}, "webhook.endpoint_id"),
        ({"endpoint_id": made["id"], "url": receiver.url("mine"), "secret": PLAIN}, "webhook.endpoint_id"),
        ({"secret": PLAIN}, "webhook.url"),
    ):
        refused(api.post("/v1/videos", json={**body, "webhook": hook}), 400, param)
    api.patch(path, json={"status": "disabled"})
    assert "disabled" in refused(
        api.post("/v1/videos", json={**body, "webhook": {"endpoint_id": made["id"]}}), 400, "webhook.endpoint_id"
    )


def signatures(call: Delivery) -> int:
    return len(call.headers["webhook-signature"].split(" "))


def test_a_rotated_secret_overlaps_the_old_one_for_the_window_asked(api: httpx.Client, receiver: Receiver) -> None:
    made = register(api, receiver, "rotate")
    path = f"{SPELLINGS[0]}/{made['id']}"
    first = made["signing_secret"]
    rotated = api.post(f"{path}/rotate-secret")  # no body: the default window (a day)
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["signing_secret"]
    tested = api.post(f"{path}/test").json()
    assert tested["ok"] is True and tested["status_code"] == 200 and tested["error"] is None, tested
    [call] = [c for c in receiver.wait("rotate", 1) if c.headers["webhook-id"] == tested["event_id"]]
    assert json.loads(call.body)["type"] == "webhook.test" and signatures(call) == 2
    assert verify(call.body, call.headers, first).id == verify(call.body, call.headers, second).id
    assert verify_async_webhook_signature(secret=second, body=call.body, headers=call.headers)
    assert not verify_async_webhook_signature(secret=first, body=call.body, headers=call.headers)
    # No overlap: the secret before is dropped at once (and the one before that is long gone).
    third = api.post(f"{path}/rotate-secret", json={"overlap_seconds": 0}).json()["signing_secret"]
    tested = api.post(f"{path}/test").json()
    [call] = [c for c in receiver.of("rotate") if c.headers["webhook-id"] == tested["event_id"]]
    assert signatures(call) == 1 and verify(call.body, call.headers, third).id == tested["event_id"]
    for old in (first, second):
        with pytest.raises(WebhookSignatureError):
            verify(call.body, call.headers, old)
    refused(api.post(f"{path}/rotate-secret", json={"overlap_seconds": -1}), 400, "overlap_seconds")


def test_a_test_event_reports_what_the_receiver_answered(api: httpx.Client, receiver: Receiver) -> None:
    receiver.plans["refusing"] = lambda n: 500
    made = register(api, receiver, "refusing")
    tested = api.post(f"{SPELLINGS[1]}/{made['id']}/test").json()
    assert tested["ok"] is False and tested["status_code"] == 500 and tested["error"] == "HTTP 500", tested
    assert tested["response_body_preview"] == "no" and tested["event_id"].startswith("evt_")


def test_secrets_are_sealed_at_rest_refused_without_echo_and_never_logged(
    gateway: GatewayProcess, backend: str, api: httpx.Client, receiver: Receiver
) -> None:
    made = register(api, receiver, "sealed", secret=PLAIN)
    rotated = api.post(f"{SPELLINGS[0]}/{made['id']}/rotate-secret").json()["signing_secret"]
    for bad in (" " + PLAIN, "seven77", "x" * 257, "line\nbreak-in-it"):
        message = refused(api.post(SPELLINGS[0], json={"url": receiver.url("sealed"), "secret": bad}), 400, "secret")
        assert bad.strip() not in message
        body = {"model": MODEL, "prompt": "p", "webhook": {"url": receiver.url("sealed"), "secret": bad}}
        assert bad.strip() not in refused(api.post("/v1/videos", json=body), 400, "webhook.secret")
    if backend == "sqlite":
        with sqlite3.connect(f"file:{gateway.data_dir / 'vidgate.db'}?mode=ro", uri=True) as db:
            row = db.execute(
                "SELECT secret, previous_secret FROM webhook_endpoints WHERE id = ?", (made["id"],)
            ).fetchone()
        assert row[0].startswith("v1:") and row[1].startswith("v1:"), row
        assert all(s not in v for v in row for s in (PLAIN, rotated, rotated.removeprefix("whsec_")))
    log = gateway.log_path.read_text()
    assert PLAIN not in log and rotated not in log


def test_endpoint_urls_are_checked_like_job_urls(tmp_path: Path, backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("one strict gateway is enough")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    gw = GatewayProcess(tmp_path / "strict", env={"VIDGATE_ALLOW_PRIVATE_URLS": "0"}, log_name="strict").start()
    try:
        with gw.client(gw.new_key()) as api:
            refused(api.post(SPELLINGS[0], json={"url": f"http://127.0.0.1:{port}/hook"}), 400, "url")
            made = api.post(SPELLINGS[0], json={"url": f"https://127.0.0.1:{port}/hook"}).json()
            tested = api.post(f"{SPELLINGS[0]}/{made['id']}/test").json()
            assert tested["ok"] is False and "private or reserved address" in tested["error"], tested
            job = create_job(api, {"endpoint_id": made["id"]})
            wait_status(api, job["id"], TERMINAL)
            deadline = time.monotonic() + 30
            while (state := api.get(f"/v1/videos/{job['id']}").json()["webhook"])["delivery"]["total_attempts"] < 1:
                assert time.monotonic() < deadline, state
                time.sleep(0.05)
    finally:
        gw.stop()
    assert state["delivery"]["last_attempt_status"] == "failed_permanently", state
    assert "private or reserved address" in state["attempts"][0]["error_message"]
    with pytest.raises(TimeoutError):
        listener.accept()  # nothing ever connected
    listener.close()
