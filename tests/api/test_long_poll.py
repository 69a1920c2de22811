"""Long polls (``GET /v1/videos/{id}?wait=N``): held until the job changes, N seconds pass or the client leaves.

Most tests use a gateway without a worker, so a job stays queued until the test changes it (a
cancel). Waiters are counted by the ``vidgate_long_polls_waiting`` gauge, which the tests wait on
instead of sleeping. One test runs two API processes and a worker on PostgreSQL: a poll held by one
process wakes on a change committed by another. A finished job held with its current tag wakes when
its webhook delivery is recorded, though that is no lifecycle event.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.server import FakeUpstream
from helpers.backends import migrate, postgres_env
from helpers.gateway import GatewayProcess, wait_status
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

SMALL = {"model": "vidgate/procedural", "prompt": "long polls", "duration": 1, "size": "160x90"}
SLOW = {**SMALL, "duration": 6, "size": "640x360"}
ORIGIN = "https://app.example.com"
CAP = 2
GAUGE = re.compile(r"^vidgate_long_polls_waiting ([0-9.]+)$", re.M)


@pytest.fixture(scope="module")
def idle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """A gateway whose jobs stay queued (no worker), with a small cap of held polls and CORS on."""
    env = {
        "VIDGATE_WORKER_ENABLED": "0",
        "VIDGATE_LONG_POLL_MAX_WAITERS": str(CAP),
        "VIDGATE_CORS_ORIGINS": ORIGIN,
    }
    proc = GatewayProcess(tmp_path_factory.mktemp("long-poll"), env=env).start()
    yield proc
    proc.stop()


@pytest.fixture
def idle_api(idle: GatewayProcess) -> Iterator[httpx.Client]:
    with idle.client(idle.new_key()) as client:
        yield client


def waiting(gw: GatewayProcess) -> int:
    m = GAUGE.search(httpx.get(f"{gw.base_url}/metrics", timeout=10).text)
    return int(float(m.group(1))) if m else 0


def until_waiting(gw: GatewayProcess, n: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if waiting(gw) == n:
            return
        time.sleep(0.05)
    raise AssertionError(f"{waiting(gw)} polls held, wanted {n}")


def timed(client: httpx.Client, url: str, **kw: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    r = client.get(url, timeout=60, **kw)
    return r, time.monotonic() - started


def test_a_held_poll_answers_when_the_job_changes(idle: GatewayProcess, idle_api: httpx.Client) -> None:
    job = idle_api.post("/v1/videos", json=SMALL).json()
    url = f"/v1/videos/{job['id']}"
    tag = idle_api.get(url).headers["etag"]
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        held = pool.submit(timed, idle_api, url, params={"wait": 30}, headers={"If-None-Match": tag})
        bare = pool.submit(timed, idle_api, url, params={"wait": "29.5"})  # no tag: the version it finds
        until_waiting(idle, 2)
        assert not held.done() and not bare.done()
        assert idle_api.post(f"{url}/cancel").status_code == 200
        for future in (held, bare):
            r, seconds = future.result(timeout=60)
            assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
            assert r.headers["etag"] != tag and seconds < 29  # the change ended it, not the wait
    until_waiting(idle, 0)


def test_an_unchanged_job_is_answered_when_the_wait_ends(idle_api: httpx.Client) -> None:
    job = idle_api.post("/v1/videos", json=SMALL).json()
    url = f"/v1/videos/{job['id']}"
    first = idle_api.get(url)
    tag = first.headers["etag"]
    r, seconds = timed(idle_api, url, params={"wait": "1.5"}, headers={"If-None-Match": tag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == tag and seconds >= 1.4
    r, seconds = timed(idle_api, url, params={"wait": 1})
    assert r.status_code == 200 and r.headers["etag"] == tag and seconds >= 0.9
    assert r.json()["status"] == "queued" and r.headers["retry-after"] == str(r.json()["poll_after_seconds"])
    # A tag of another version than the job's is answered at once, with the job as it is.
    r, seconds = timed(idle_api, url, params={"wait": 30}, headers={"If-None-Match": f'W/"{job["id"]}-999"'})
    assert r.status_code == 200 and r.headers["etag"] == tag and seconds < 20
    idle_api.post(f"{url}/cancel")


def test_a_finished_job_is_answered_at_once(idle_api: httpx.Client) -> None:
    job = idle_api.post("/v1/videos", json=SMALL).json()
    idle_api.post(f"/v1/videos/{job['id']}/cancel")
    r, seconds = timed(idle_api, f"/v1/videos/{job['id']}", params={"wait": 30})
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and seconds < 20


def test_the_cap_answers_at_once(idle: GatewayProcess, idle_api: httpx.Client) -> None:
    job = idle_api.post("/v1/videos", json=SMALL).json()
    url = f"/v1/videos/{job['id']}"
    tag = idle_api.get(url).headers["etag"]
    with concurrent.futures.ThreadPoolExecutor(CAP) as pool:
        held = [
            pool.submit(timed, idle_api, url, params={"wait": 30}, headers={"If-None-Match": tag}) for _ in range(CAP)
        ]
        until_waiting(idle, CAP)
        r, seconds = timed(idle_api, url, params={"wait": 30}, headers={"If-None-Match": tag})
        assert r.status_code == 304 and seconds < 20  # over the cap: not held
        assert not any(f.done() for f in held)
        idle_api.post(f"{url}/cancel")
        assert all(f.result(timeout=60)[0].status_code == 200 for f in held)
    until_waiting(idle, 0)


def test_a_client_that_leaves_releases_its_waiter(idle: GatewayProcess, idle_api: httpx.Client) -> None:
    job = idle_api.post("/v1/videos", json=SMALL).json()
    key = idle_api.headers["authorization"]
    with socket.create_connection(("127.0.0.1", idle.port), timeout=10) as sock:
        sock.sendall(
            f"GET /v1/videos/{job['id']}?wait=30 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {key}\r\n\r\n".encode()
        )
        until_waiting(idle, 1)
    until_waiting(idle, 0, timeout=15)  # well before the 30 s wait would have ended
    idle_api.post(f"/v1/videos/{job['id']}/cancel")


@pytest.mark.parametrize("bad", ["0", "-1", "31", "30.01", "abc", "", "nan", "inf", "1e3", "0x10", "1,5"])
def test_a_bad_wait_is_a_validation_error(idle_api: httpx.Client, bad: str) -> None:
    job = idle_api.post("/v1/videos", json=SMALL).json()
    r = idle_api.get(f"/v1/videos/{job['id']}", params={"wait": bad})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert (
        err["code"] == "validation_error" and err["param"] == "wait" and err["request_id"] == r.headers["x-request-id"]
    )
    idle_api.post(f"/v1/videos/{job['id']}/cancel")


def test_conditional_answers_keep_cors(idle_api: httpx.Client) -> None:
    job = idle_api.post("/v1/videos", json=SMALL).json()
    url = f"/v1/videos/{job['id']}"
    tag = idle_api.get(url).headers["etag"]
    r = idle_api.get(url, headers={"Origin": ORIGIN, "If-None-Match": tag})
    assert r.status_code == 304 and r.headers["access-control-allow-origin"] == ORIGIN
    assert "Origin" in r.headers["vary"] and "etag" in r.headers["access-control-expose-headers"].lower()
    pre = idle_api.options(
        url,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, if-none-match",
        },
    )
    assert pre.status_code == 200 and "if-none-match" in pre.headers["access-control-allow-headers"].lower()
    idle_api.post(f"{url}/cancel")


@pytest.mark.both_backends
def test_a_held_poll_wakes_on_the_worker(api: httpx.Client) -> None:
    """On the default gateway (worker on): the poll returns on the worker's change, not at the wait's end."""
    job = api.post("/v1/videos", json=SLOW).json()
    url = f"/v1/videos/{job['id']}"
    first = api.get(url)
    if first.json()["status"] in ("queued", "processing"):
        r, seconds = timed(api, url, params={"wait": 30}, headers={"If-None-Match": first.headers["etag"]})
        assert r.status_code == 200 and r.headers["etag"] != first.headers["etag"] and seconds < 29
    done = wait_status(api, job["id"], {"completed"}, timeout=120)
    r, seconds = timed(api, url, params={"wait": 30})
    assert r.json()["status"] == done["status"] and seconds < 20


class GatedReceiver:
    """A loopback webhook receiver that holds every delivery until ``gate`` opens."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.arrived = threading.Event()
        self.server = FakeUpstream(Starlette(routes=[Route("/hook", self._hook, methods=["POST"])]))

    async def _hook(self, request: Request) -> Response:
        await request.body()
        self.arrived.set()
        await asyncio.to_thread(self.gate.wait, 60)
        return Response(b"ok")

    @property
    def url(self) -> str:
        return f"{self.server.base_url}/hook"


@pytest.fixture
def gated() -> Iterator[GatedReceiver]:
    receiver = GatedReceiver()
    with receiver.server:
        yield receiver
        receiver.gate.set()


@pytest.mark.both_backends
def test_a_recorded_webhook_delivery_wakes_a_held_poll(
    gateway: GatewayProcess, api: httpx.Client, gated: GatedReceiver
) -> None:
    """A finished job held with its own tag answers when its delivery is recorded, not when the wait ends."""
    job = api.post("/v1/videos", json={**SMALL, "webhook": {"url": gated.url, "events": ["video.completed"]}})
    assert job.status_code == 202, job.text
    url = f"/v1/videos/{job.json()['id']}"
    assert gated.arrived.wait(60), "the webhook was never sent"  # sent, and held unanswered
    first = api.get(url)
    assert first.json()["status"] == "completed" and first.json()["webhook"]["delivery"]["total_attempts"] == 0
    tag = first.headers["etag"]
    before = waiting(gateway)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        held = pool.submit(timed, api, url, params={"wait": 30}, headers={"If-None-Match": tag})
        until_waiting(gateway, before + 1)
        assert not held.done()
        gated.gate.set()
        r, seconds = held.result(timeout=60)
    assert r.status_code == 200 and r.headers["etag"] != tag and seconds < 25, (r.status_code, seconds)
    delivery = r.json()["webhook"]["delivery"]
    assert delivery["total_attempts"] == 1 and delivery["last_attempt_status"] == "delivered", delivery
    # With the delivery recorded, the job holds still: its new version is held until the wait ends
    # (a 304, or a 200 of that version should the signed links' window turn meanwhile).
    settled = r.headers["etag"]
    r, seconds = timed(api, url, params={"wait": "1.5"}, headers={"If-None-Match": settled})
    assert seconds >= 1.4 and r.status_code in (200, 304)
    assert r.headers["etag"].split(".")[0].rstrip('"') == settled.split(".")[0].rstrip('"')


def test_a_delivery_recorded_by_a_worker_process_wakes_an_api_process(
    tmp_path: Path, pg_server: Any, s3_server: Any, gated: GatedReceiver
) -> None:
    """On PostgreSQL the worker process records the delivery; the API process holding the poll hears of it."""
    env = {**postgres_env(pg_server, s3_server, "long_poll_hook"), "VIDGATE_SIGNING_SECRET": "long-poll"}
    migrate(env)
    api = GatewayProcess(tmp_path / "api", env=env, command="api", log_name="api", args=("--workers", "1")).start()
    worker = GatewayProcess(tmp_path / "worker", env=env, command="worker", log_name="worker").start()
    try:
        with api.client(api.new_key("long-poll-hook", balance=10.0)) as client:
            body = {**SMALL, "webhook": {"url": gated.url, "events": ["video.completed"]}}
            url = f"/v1/videos/{client.post('/v1/videos', json=body).json()['id']}"
            assert gated.arrived.wait(60), "the webhook was never sent"
            tag = client.get(url).headers["etag"]
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                held = pool.submit(timed, client, url, params={"wait": 30}, headers={"If-None-Match": tag})
                until_waiting(api, 1)
                gated.gate.set()
                r, seconds = held.result(timeout=60)
        assert r.status_code == 200 and r.headers["etag"] != tag and seconds < 25, (r.status_code, seconds)
        assert r.json()["webhook"]["delivery"]["total_attempts"] == 1
    finally:
        for p in (api, worker):
            p.kill()


def test_two_api_processes_on_postgres(tmp_path: Path, pg_server: Any, s3_server: Any) -> None:
    """A poll held by API process A wakes on a cancel made through B, and on a worker process's progress."""
    env = {**postgres_env(pg_server, s3_server, "long_poll"), "VIDGATE_SIGNING_SECRET": "long-poll"}
    migrate(env)
    a, b = (
        GatewayProcess(tmp_path / name, env=env, command="api", log_name="api", args=("--workers", "1")).start()
        for name in ("a", "b")
    )
    worker: GatewayProcess | None = None
    try:
        key = a.new_key("long-poll", balance=10.0)
        with a.client(key) as on_a, b.client(key) as on_b:
            job = on_b.post("/v1/videos", json=SMALL).json()
            url = f"/v1/videos/{job['id']}"
            tag = on_a.get(url).headers["etag"]
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                held = pool.submit(timed, on_a, url, params={"wait": 30}, headers={"If-None-Match": tag})
                until_waiting(a, 1)
                assert on_b.post(f"{url}/cancel").status_code == 200
                r, seconds = held.result(timeout=60)
            assert r.status_code == 200 and r.json()["status"] == "cancelled" and seconds < 29

            job = on_b.post("/v1/videos", json=SMALL).json()
            url = f"/v1/videos/{job['id']}"
            tag = on_a.get(url).headers["etag"]
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                held = pool.submit(timed, on_a, url, params={"wait": 30}, headers={"If-None-Match": tag})
                until_waiting(a, 1)
                worker = GatewayProcess(tmp_path / "worker", env=env, command="worker", log_name="worker").start()
                r, seconds = held.result(timeout=60)
            assert r.status_code == 200 and r.headers["etag"] != tag and seconds < 29
            assert r.json()["status"] in ("processing", "completed")
    finally:
        for p in (a, b, worker):
            if p is not None:
                p.kill()
