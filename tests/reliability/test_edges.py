"""The server's edges under abuse, through real ``vidgate serve`` processes on loopback.

Slow clients: request heads and bodies that never finish, from one address, do not stop another
address being answered, and the server closes them by its deadlines (on granian and on uvicorn).
``/metrics``: made-up methods add no series, and a metrics token guards the scrape. Streams: opens
racing each other stay within the per-key cap, count against the key's request rate, and end when
the key is revoked, whether through the admin route or from another process (the CLI).

The attacking sockets connect from 127.0.0.2, a second loopback address, so that the per-address cap
they run into is not the one the ordinary client's requests count against.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import selectors
import socket
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import BACKENDS
from helpers import backends
from helpers.gateway import GatewayProcess
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

ATTACKER = "127.0.0.2"
HEAD_SECONDS, BODY_SECONDS, PER_CLIENT = 2, 3, 64
METRICS_TOKEN = "metrics-test-token"
LONG = {"model": "vidgate/procedural", "prompt": "a lighthouse at dusk", "duration": 1, "size": "160x90"}


def slow_gateway(root: Path, server: str) -> GatewayProcess:
    env = {
        "VIDGATE_HEADER_TIMEOUT_SECONDS": str(HEAD_SECONDS),
        "VIDGATE_BODY_TIMEOUT_SECONDS": str(BODY_SECONDS),
        "VIDGATE_MAX_IN_FLIGHT_PER_CLIENT": str(PER_CLIENT),
        "VIDGATE_METRICS_TOKEN": METRICS_TOKEN,
    }
    args = () if server == "granian" else ("--server", server)  # granian is the default
    return GatewayProcess(root, env=env, args=args, log_name=f"serve-{server}").start()


def stalled(port: int, payload: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(ATTACKER, 0))
    sock.sendall(payload)
    return sock


def wait_closed(socks: list[socket.socket], timeout: float) -> tuple[dict[socket.socket, bytes], float]:
    """Read every socket until the server closes it; what each received, and when the last closed."""
    start = time.monotonic()
    received: dict[socket.socket, bytes] = {s: b"" for s in socks}
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    open_ = set(socks)
    try:
        while open_ and time.monotonic() - start < timeout:
            for key, _ in sel.select(0.2):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except ConnectionResetError:
                    data = b""
                if data:
                    received[s] += data
                else:
                    sel.unregister(s)
                    open_.discard(s)
    finally:
        sel.close()
        for s in socks:
            s.close()
    assert not open_, f"{len(open_)} of {len(socks)} stalled connections still open after {timeout} s"
    return received, time.monotonic() - start


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_slow_clients_do_not_stall_the_server(server: str, tmp_path: Path) -> None:
    gw = slow_gateway(tmp_path, server)
    try:
        key = gw.new_key("slow")
        heads = [stalled(gw.port, b"GET /v1/vid") for _ in range(300)]
        body_head = (
            f"POST /v1/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        ).encode()
        bodies = [stalled(gw.port, body_head + b'{"model": "vid') for _ in range(100)]
        time.sleep(0.5)  # every stalled request is with the server before the ordinary one
        t0 = time.monotonic()
        with gw.client(key) as api:
            r = api.get("/v1/videos", timeout=30)
        latency = time.monotonic() - t0
        assert r.status_code == 200, r.text
        got, closed_after = wait_closed(heads + bodies, timeout=20)
        statuses = [int(v.split(b" ", 2)[1]) if v.startswith(b"HTTP/1.1 ") else 0 for v in (got[s] for s in bodies)]
        assert all(got[s] == b"" or b" 408 " in got[s][:20] for s in heads), "a stalled head got an answer"
        assert set(statuses) <= {408, 429} and statuses.count(408) <= PER_CLIENT, statuses
        assert statuses.count(429) >= len(bodies) - PER_CLIENT
        assert all(b'"code":"request_timeout"' in got[s] for s, st in zip(bodies, statuses, strict=True) if st == 408)
        assert all(b'"code":"rate_limited"' in got[s] for s, st in zip(bodies, statuses, strict=True) if st == 429)
    finally:
        gw.stop()
    print(
        f"\nslow clients [{server}]: with 300 stalled heads and 100 stalled bodies from one address, an "
        f"ordinary request from another took {latency * 1000:.0f} ms; {statuses.count(429)} bodies refused "
        f"429 at once, {statuses.count(408)} cut off 408; every stalled connection closed within "
        f"{closed_after:.1f} s (head deadline {HEAD_SECONDS} s, body deadline {BODY_SECONDS} s)"
    )


@pytest.fixture(scope="module")
def edged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = slow_gateway(tmp_path_factory.mktemp("edged"), "granian")
    yield gw
    gw.stop()


def scrape(gw: GatewayProcess) -> str:
    r = httpx.get(f"{gw.base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.text


def test_made_up_methods_add_no_metric_series(edged: GatewayProcess) -> None:
    rng = random.Random(7)
    with httpx.Client(base_url=edged.base_url, timeout=30) as client:
        for i in range(500):
            method = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(3, 12)))
            client.request(method, rng.choice(["/v1/videos", f"/nope/{i}", "/healthz", f"/v1/videos/vid_{i}"]))
    text = scrape(edged)
    series = re.findall(
        r'^vidgate_http_request_duration_seconds_count\{method="([^"]*)",status="([^"]*)"\}', text, re.M
    )
    methods = {m for m, _ in series}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}, methods
    assert "other" in methods and len(series) <= 40, series
    print(
        f"\nmetrics: after 500 requests with made-up methods, {len(series)} latency series "
        f"({sorted(methods)}), /metrics is {len(text)} bytes"
    )


def test_metrics_token(edged: GatewayProcess) -> None:
    url = f"{edged.base_url}/metrics"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": METRICS_TOKEN}):
        r = httpx.get(url, headers=headers, timeout=30)
        assert r.status_code == 401, (headers, r.status_code)
        err = r.json()["error"]
        assert err["code"] == "unauthorized" and err["request_id"] == r.headers["x-request-id"]
    assert "vidgate_queue_depth" in scrape(edged)


# ---- streams --------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def streams_gw(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """No worker: jobs stay queued, so their streams stay open until the server ends them."""
    extra: dict[str, Any] = {}
    if request.param == "postgres":
        extra = {"pg": request.getfixturevalue("pg_server"), "s3": request.getfixturevalue("s3_server")}
    env = {"VIDGATE_WORKER_ENABLED": "0"}
    gw = backends.start(request.param, tmp_path_factory.mktemp(f"streams-{request.param}"), env=env, **extra)
    yield gw
    gw.stop()


def queued_job(gw: GatewayProcess, key: str) -> str:
    with gw.client(key) as api:
        r = api.post("/v1/videos", json=LONG)
        assert r.status_code == 202, r.text
        return r.json()["id"]


def ws_url(gw: GatewayProcess, job: str) -> str:
    return gw.base_url.replace("http://", "ws://", 1) + f"/v1/async/video/{job}/ws"


def open_ws(gw: GatewayProcess, job: str, key: str | None = None, query: str = "") -> ClientConnection:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return connect(ws_url(gw, job) + query, additional_headers=headers, proxy=None, open_timeout=10)


def test_concurrent_stream_opens_stay_within_the_cap(streams_gw: GatewayProcess) -> None:
    key = streams_gw.new_key("many-streams")
    job = queued_job(streams_gw, key)
    cap = 50  # max_websockets_per_key's default

    async def go() -> list[int]:
        limits = httpx.Limits(max_connections=250, max_keepalive_connections=0)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=streams_gw.base_url, headers=headers, limits=limits, timeout=60) as c:
            hold = asyncio.Event()
            answered = 0

            async def one() -> int:
                nonlocal answered
                async with c.stream("GET", f"/v1/videos/{job}/events") as r:
                    answered += 1
                    if r.status_code == 429:
                        body = json.loads(await r.aread())
                        assert body["error"]["code"] == "rate_limited" and r.headers["retry-after"], body
                    elif r.status_code == 200:
                        await hold.wait()  # keep it open until every open has been answered
                    return r.status_code

            tasks = [asyncio.create_task(one()) for _ in range(200)]
            deadline = time.monotonic() + 60
            while answered < len(tasks) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            hold.set()
            return list(await asyncio.gather(*tasks))

    codes = asyncio.run(go())
    opened = codes.count(200)
    assert set(codes) <= {200, 429}, codes
    assert 1 <= opened <= cap, f"{opened} event streams open against a cap of {cap}"
    print(
        f"\nstream cap [{streams_gw.backend}]: 200 concurrent event-stream opens on one key: "  # type: ignore[attr-defined]
        f"{opened} opened (cap {cap}), {codes.count(429)} refused 429"
    )


def test_stream_opens_count_against_the_key_rate(streams_gw: GatewayProcess) -> None:
    key = streams_gw.new_key("rate")
    job = queued_job(streams_gw, key)
    key_id = streams_gw.key_id(key)
    with streams_gw.admin() as admin:
        r = admin.patch(f"/v1/admin/keys/{key_id}/limits", json={"rate_per_second": 1, "rate_burst": 3})
        assert r.status_code == 200, r.text
    time.sleep(2.5)  # past the authentication cache, which holds the key's old (unlimited) rate
    codes = []
    started = time.monotonic()
    while len(codes) < 40 and codes.count(4429) < 5:  # opens until five are refused
        with open_ws(streams_gw, job, key) as ws:
            try:
                ws.recv(timeout=10)
                codes.append(200)
            except ConnectionClosed as closed:
                codes.append(closed.rcvd.code if closed.rcvd else 0)
    elapsed = time.monotonic() - started
    # The burst, what refilled while the opens went on (however slowly answered), one at the boundary.
    assert codes.count(4429) >= 5, codes
    assert codes.count(200) <= 3 + elapsed + 1, (codes, elapsed)
    print(
        f"\nstream rate [{streams_gw.backend}]: 10 websocket opens at rate 1/s burst 3: "  # type: ignore[attr-defined]
        f"{codes.count(200)} opened, {codes.count(4429)} closed 4429"
    )


class SSEWatch:
    """An event stream read on a thread; ``ended`` is set when the server ends it."""

    def __init__(self, gw: GatewayProcess, key: str, job: str) -> None:
        self.frames: list[str] = []
        self.opened = threading.Event()
        self.ended = threading.Event()
        self.ended_at = 0.0
        self.thread = threading.Thread(target=self._read, args=(gw, key, job), daemon=True)
        self.thread.start()
        assert self.opened.wait(15), "the event stream did not open"

    def _read(self, gw: GatewayProcess, key: str, job: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        try:
            with httpx.stream("GET", f"{gw.base_url}/v1/videos/{job}/events", headers=headers, timeout=60) as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    self.frames.append(line)
                    if line.startswith("event: job.snapshot"):
                        self.opened.set()
        finally:
            self.ended_at = time.monotonic()
            self.ended.set()


def revoke_and_watch(gw: GatewayProcess, how: str) -> tuple[float, float]:
    """Open a websocket and an event stream on a key, revoke it ``how``; the delays until each ended."""
    key = gw.new_key(f"revoked-{how}")
    job = queued_job(gw, key)
    with gw.client(key) as api:
        token = api.post(f"/v1/videos/{job}/stream_token", json={"ttl_seconds": 120}).json()["token"]
    with open_ws(gw, job, key) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "job.snapshot"
        sse = SSEWatch(gw, key, job)
        key_id = gw.key_id(key)
        t0 = time.monotonic()
        if how == "admin route":
            with gw.admin() as admin:
                assert admin.delete(f"/v1/admin/keys/{key_id}").status_code == 200
        else:
            cli = [sys.executable, "-m", "vidgate.cli.main", "keys", "revoke", key_id, "--data-dir", str(gw.data_dir)]
            out = subprocess.run(cli, env=gw.env, capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr
        revoked_at = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            while time.monotonic() - revoked_at < 15:  # heartbeats may come first
                ws.recv(timeout=15)
        ws_delay = time.monotonic() - revoked_at
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401, closed.value
    assert sse.ended.wait(15), "the event stream stayed open after the key was revoked"
    sse_delay = sse.ended_at - revoked_at
    assert any("revoked" in f for f in sse.frames), sse.frames[-3:]
    with connect(ws_url(gw, job) + f"?token={token}", proxy=None, open_timeout=10) as late:
        with pytest.raises(ConnectionClosed) as refused:
            late.recv(timeout=10)
        assert refused.value.rcvd is not None and refused.value.rcvd.code == 4401
    print(
        f"\nrevocation [{gw.backend}, {how}, which took {revoked_at - t0:.2f} s]: websocket closed 4401 "  # type: ignore[attr-defined]
        f"{ws_delay * 1000:+.0f} ms and event stream ended {sse_delay * 1000:+.0f} ms from its return; "
        "its stream token refused"
    )
    return ws_delay, sse_delay


def test_revoking_a_key_ends_its_streams(streams_gw: GatewayProcess) -> None:
    revoke_and_watch(streams_gw, "admin route")


def test_revoking_a_key_from_another_process_ends_its_streams(streams_gw: GatewayProcess) -> None:
    revoke_and_watch(streams_gw, "CLI")
