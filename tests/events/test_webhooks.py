"""Webhooks over real HTTP to a loopback receiver: signatures, event sets, retries, restarts, SSRF, routes."""

from __future__ import annotations

import base64
import os
import socket
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from fakes.server import FakeUpstream
from helpers.gateway import GatewayProcess, wait_status
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MODEL = "vidgate/procedural"
TERMINAL = {"completed", "failed", "cancelled", "expired"}
FAST_RETRIES = {"VIDGATE_WEBHOOK_BACKOFF_BASE_SECONDS": "0.02"}


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


@dataclass
class Call:
    name: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    """A loopback webhook receiver; ``plans[name](attempt)`` picks the status for the n-th try of an event."""

    calls: list[Call] = field(default_factory=list)
    plans: dict[str, Callable[[int], int]] = field(default_factory=dict)
    tries: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            name = request.path_params["name"]
            body = await request.body()
            headers = dict(request.headers)
            with self.lock:
                self.tries[(name, headers.get("webhook-id", ""))] += 1
                status = self.plans.get(name, lambda n: 200)(self.tries[(name, headers.get("webhook-id", ""))])
                self.calls.append(Call(name, headers, body, status, time.time()))
            extra = {"Location": "/hook/elsewhere"} if 300 <= status < 400 else None
            body = b"" if status == 204 else b"ok" if status < 300 else b"no"
            return Response(body, status_code=status, headers=extra)

        return Starlette(routes=[Route("/hook/{name}", hook, methods=["POST"])])

    def url(self, server: FakeUpstream, name: str) -> str:
        return f"{server.base_url}/hook/{name}"

    def of(self, name: str) -> list[Call]:
        with self.lock:
            return [c for c in self.calls if c.name == name]


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, FakeUpstream]]:
    rec = Receiver()
    server = FakeUpstream(rec.app())
    with server:
        yield rec, server


@pytest.fixture(scope="module")
def hooks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    proc = GatewayProcess(tmp_path_factory.mktemp("hooks"), env=FAST_RETRIES, log_name="hooks").start()
    yield proc
    proc.stop()


def create(api: httpx.Client, webhook: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"model": MODEL, "prompt": "rain on a window", "duration": 1, "size": "160x90", "webhook": webhook, **fields}
    r = api.post("/v1/videos", json=body)
    assert r.status_code == 202, r.text
    return r.json()


def deliveries(api: httpx.Client, video_id: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/videos/{video_id}/webhook_deliveries")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list"
    return body["data"]


def settle(api: httpx.Client, video_id: str, count: int, timeout: float = 20) -> list[dict[str, Any]]:
    """Wait until the job has ``count`` deliveries and none is pending."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = deliveries(api, video_id)
        if len(rows) == count and all(d["status"] != "pending" for d in rows):
            return rows
        time.sleep(0.05)
    raise AssertionError(f"deliveries did not settle: {rows}")


def verify_all(calls: list[Call], secret: str, video_id: str) -> list[dict[str, Any]]:
    bodies = []
    for call in calls:
        payload = Webhook(secret).verify(call.body, call.headers)
        assert payload["id"] == call.id and payload["data"]["id"] == video_id
        assert call.headers["content-type"] == "application/json"
        assert abs(int(call.headers["webhook-timestamp"]) - time.time()) < 60
        with pytest.raises(WebhookVerificationError):
            Webhook(new_secret()).verify(call.body, call.headers)
        bodies.append(payload)
    return bodies


def test_default_events_are_signed_and_sent_at_once(
    hooks: GatewayProcess, receiver: tuple[Receiver, FakeUpstream]
) -> None:
    rec, server = receiver
    secret = new_secret()
    with hooks.client(hooks.new_key()) as api:
        job = create(api, {"url": rec.url(server, "default"), "secret": secret})
        assert job["webhook"]["events"] == ["video.completed", "video.failed", "video.cancelled", "video.expired"]
        wait_status(api, job["id"], TERMINAL)
        rows = settle(api, job["id"], 1)
    bodies = verify_all(rec.of("default"), secret, job["id"])
    # Default: how the job ended (completed, failed, cancelled, expired); no status changes, no progress.
    assert [b["type"] for b in bodies] == ["video.completed"]
    assert bodies[0]["data"]["status"] == "completed"
    assert bodies[0]["data"]["asset"]["sha256"] and isinstance(bodies[0]["created_at"], int)
    assert {r["event_id"] for r in rows} == {b["id"] for b in bodies}
    for row in rows:
        assert row["status"] == "delivered" and row["attempts"] == 1 and row["last_status_code"] == 200
        assert row["url"] == rec.url(server, "default") and row["delivered_at"] >= row["created_at"]
        assert row["next_attempt_at"] is None and row["last_error"] is None
        assert len(row["log"]) == 1 and row["log"][0]["status_code"] == 200 and row["log"][0]["error"] is None
    assert {r["event_type"] for r in rows} == {"video.completed"}
    # Pushed from the event bus, not found by a timer: the receiver hears within moments of the commit.
    with sqlite3.connect(f"file:{hooks.data_dir / 'vidgate.db'}?mode=ro", uri=True) as db:
        written = dict(db.execute("SELECT id, created_at FROM events WHERE job_id = ?", (job["id"],)).fetchall())
    gaps = [c.at * 1000 - written[c.id] for c in rec.of("default")]
    print(f"\nwebhook commit->receipt: {', '.join(f'{g:.1f} ms' for g in gaps)}")
    assert max(gaps) < 300, gaps


def test_status_changed_subscription_includes_terminal_events(
    hooks: GatewayProcess, receiver: tuple[Receiver, FakeUpstream]
) -> None:
    rec, server = receiver
    secret = new_secret()
    with hooks.client(hooks.new_key()) as api:
        job = create(api, {"url": rec.url(server, "status"), "secret": secret, "events": ["video.status_changed"]})
        wait_status(api, job["id"], TERMINAL)
        settle(api, job["id"], 2)
        every = create(
            api,
            {
                "url": rec.url(server, "every"),
                "secret": secret,
                "events": ["video.created", "video.progress", "video.completed"],
            },
        )
        wait_status(api, every["id"], TERMINAL)
        time.sleep(0.3)
        rows = deliveries(api, every["id"])
        settle(api, every["id"], len(rows))
    assert [b["type"] for b in verify_all(rec.of("status"), secret, job["id"])] == [
        "video.status_changed",
        "video.completed",
    ]
    types = [b["type"] for b in verify_all(rec.of("every"), secret, every["id"])]
    assert types[0] == "video.created" and types[-1] == "video.completed" and "video.status_changed" not in types
    progress = [
        b["data"]["progress"] for b in verify_all(rec.of("every"), secret, every["id"]) if b["type"] == "video.progress"
    ]
    assert len({p // 10 for p in progress}) == len(progress)  # only when progress crosses a 10% step


def test_retries_reuse_the_id_and_each_event_is_acknowledged_once(
    hooks: GatewayProcess, receiver: tuple[Receiver, FakeUpstream]
) -> None:
    rec, server = receiver
    rec.plans["flaky"] = lambda attempt: 503 if attempt <= 2 else 200
    secret = new_secret()
    with hooks.client(hooks.new_key()) as api:
        job = create(api, {"url": rec.url(server, "flaky"), "secret": secret, "events": ["video.status_changed"]})
        wait_status(api, job["id"], TERMINAL)
        rows = settle(api, job["id"], 2)
    calls = rec.of("flaky")
    verify_all(calls, secret, job["id"])
    acknowledged = [c.id for c in calls if 200 <= c.status < 300]
    assert len(acknowledged) == len(set(acknowledged)) == 2
    for event_id in acknowledged:
        assert [c.status for c in calls if c.id == event_id] == [503, 503, 200]  # same webhook-id on every try
    for row in rows:
        assert row["status"] == "delivered" and row["attempts"] == 3
        assert [e["status_code"] for e in row["log"]] == [503, 503, 200]
        assert [e["error"] for e in row["log"]] == ["HTTP 503", "HTTP 503", None]
        assert all(isinstance(e["latency_ms"], int) and e["at"] > 0 for e in row["log"])


def test_redirects_are_not_followed_and_redeliver(
    hooks: GatewayProcess, receiver: tuple[Receiver, FakeUpstream]
) -> None:
    rec, server = receiver
    rec.plans["moved"] = lambda attempt: 302 if attempt == 1 else 200
    secret = new_secret()
    with hooks.client(hooks.new_key()) as api:
        job = create(api, {"url": rec.url(server, "moved"), "secret": secret, "events": ["video.completed"]})
        wait_status(api, job["id"], TERMINAL)
        [row] = settle(api, job["id"], 1)
        assert row["status"] == "delivered" and row["attempts"] == 2
        assert row["log"][0]["status_code"] == 302 and "redirects are not followed" in row["log"][0]["error"]
        assert rec.of("elsewhere") == []  # the Location was never visited

        r = api.post(f"/v1/videos/{job['id']}/webhook_deliveries/{row['id']}/redeliver")
        assert r.status_code == 200, r.text
        assert r.json()["id"] == row["id"] and r.json()["status"] in ("pending", "delivered")
        [again] = settle(api, job["id"], 1)
        assert again["attempts"] == 3 and again["status"] == "delivered" and len(again["log"]) == 3
    calls = rec.of("moved")
    assert [c.status for c in calls] == [302, 200, 200] and len({c.id for c in calls}) == 1
    verify_all(calls, secret, job["id"])


def test_other_owners_get_404(hooks: GatewayProcess, receiver: tuple[Receiver, FakeUpstream]) -> None:
    rec, server = receiver
    with hooks.client(hooks.new_key()) as api, hooks.client(hooks.new_key()) as stranger:
        job = create(api, {"url": rec.url(server, "private"), "secret": new_secret()})
        wait_status(api, job["id"], TERMINAL)
        [row] = settle(api, job["id"], 1)
        for r in (
            stranger.get(f"/v1/videos/{job['id']}/webhook_deliveries"),
            stranger.post(f"/v1/videos/{job['id']}/webhook_deliveries/{row['id']}/redeliver"),
            api.post(f"/v1/videos/{job['id']}/webhook_deliveries/whd_nope/redeliver"),
        ):
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
        assert httpx.get(f"{hooks.base_url}/v1/videos/{job['id']}/webhook_deliveries").status_code == 401


def test_pending_deliveries_survive_a_restart_and_arrive_once(tmp_path: Any) -> None:
    rec = Receiver()
    server = FakeUpstream(rec.app())  # its port is reserved but nothing listens yet: the receiver is down
    secret = new_secret()
    first = GatewayProcess(tmp_path / "gw", env=FAST_RETRIES, log_name="first").start()
    try:
        with first.client(first.new_key()) as api:
            key = api.headers["authorization"].split()[1]
            job = create(api, {"url": rec.url(server, "restart"), "secret": secret, "events": ["video.status_changed"]})
            wait_status(api, job["id"], TERMINAL)
            deadline = time.monotonic() + 30
            while not ((rows := deliveries(api, job["id"])) and len(rows) == 2 and all(r["attempts"] for r in rows)):
                assert time.monotonic() < deadline, rows
                time.sleep(0.02)
        assert all(r["status"] == "pending" and "ConnectError" in r["last_error"] for r in rows), rows
    finally:
        first.stop()
    second = GatewayProcess(tmp_path / "gw", env=FAST_RETRIES, log_name="second").start()
    try:
        with server:
            with second.client(key) as api:
                rows = settle(api, job["id"], 2, timeout=30)
            assert all(r["status"] == "delivered" for r in rows), rows
            calls = rec.of("restart")
    finally:
        second.stop()
    assert sorted(c.id for c in calls) == sorted(r["event_id"] for r in rows)  # each exactly once
    verify_all(calls, secret, job["id"])


def test_private_addresses_are_refused_when_not_allowed(tmp_path: Any) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.3)
    port = listener.getsockname()[1]
    gw = GatewayProcess(tmp_path / "strict", env={"VIDGATE_ALLOW_PRIVATE_URLS": "0"}, log_name="strict").start()
    try:
        with gw.client(gw.new_key()) as api:
            job = create(api, {"url": f"https://127.0.0.1:{port}/hook", "secret": new_secret()})
            wait_status(api, job["id"], TERMINAL)
            rows = settle(api, job["id"], 1)
    finally:
        gw.stop()
    for row in rows:
        assert row["status"] == "failed" and row["attempts"] == 1 and row["last_status_code"] is None
        assert "private or reserved address" in row["last_error"], row
    with pytest.raises(TimeoutError):
        listener.accept()  # nothing ever connected
    listener.close()


def test_deleted_video_drops_its_pending_deliveries(hooks: GatewayProcess) -> None:
    """A delivery whose event was deleted with its video fails with a reason instead of retrying forever."""
    with hooks.client(hooks.new_key()) as api:
        job = create(api, {"url": "http://127.0.0.1:9/hook", "secret": new_secret(), "events": ["video.completed"]})
        wait_status(api, job["id"], TERMINAL)
        assert api.delete(f"/v1/videos/{job['id']}").status_code == 200
    with sqlite3.connect(hooks.data_dir / "vidgate.db") as db:
        db.execute(
            "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE job_id = ?", (int(time.time() * 1000), job["id"])
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with sqlite3.connect(f"file:{hooks.data_dir / 'vidgate.db'}?mode=ro", uri=True) as db:
            status, error = db.execute(
                "SELECT status, last_error FROM webhook_deliveries WHERE job_id = ?", (job["id"],)
            ).fetchone()
        if status == "failed":
            assert "deleted" in error
            return
        time.sleep(0.05)
    raise AssertionError(f"still {status}: {error}")


def test_delivery_body_is_stable_across_retries(hooks: GatewayProcess, receiver: tuple[Receiver, FakeUpstream]) -> None:
    rec, server = receiver
    rec.plans["stable"] = lambda attempt: 500 if attempt == 1 else 204
    with hooks.client(hooks.new_key()) as api:
        job = create(api, {"url": rec.url(server, "stable"), "secret": new_secret(), "events": ["video.completed"]})
        wait_status(api, job["id"], TERMINAL)
        settle(api, job["id"], 1)
    first, second = rec.of("stable")
    assert first.body == second.body and orjson.loads(first.body)["type"] == "video.completed"
