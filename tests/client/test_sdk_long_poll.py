"""``wait`` without a websocket: long polls where the gateway holds them, the hinted pace where it does not.

The chaos proxy carries no websockets, so ``wait`` falls back to HTTP through it. A second proxy
plays the hosted reference, which knows neither ``?wait=`` nor ETags: it drops the one and strips the other.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fakes.chaos_proxy import ChaosProxy
from fakes.server import FakeUpstream
from helpers.gateway import GatewayProcess
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vidgate.client import AsyncClient, Client
from vidgate.types import Video

MODEL = "vidgate/procedural"
RENDER = {"size": "640x360", "duration": 8}  # about 1.5 s of render: several changes to wake on


def prompt() -> str:
    return f"a harbour at dawn {uuid.uuid4().hex[:8]}"


class NoLongPolls:
    """Forwards to the gateway as the reference would answer: ``wait`` ignored, no ETag, no 304."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.polls: list[tuple[float, str, str | None]] = []  # when, query, If-None-Match
        app = Starlette(routes=[Route("/{path:path}", self.handle, methods=["GET", "POST"])])
        self.server = FakeUpstream(app)

    async def handle(self, request: Request) -> Response:
        params = [(k, v) for k, v in request.query_params.multi_items() if k != "wait"]
        headers = {
            k: v for k, v in request.headers.items() if k in ("authorization", "content-type", "idempotency-key")
        }
        if request.method == "GET" and request.url.path.startswith("/v1/videos/vid_"):
            self.polls.append((time.monotonic(), request.url.query, request.headers.get("if-none-match")))
        async with httpx.AsyncClient(timeout=60, trust_env=False) as http:
            r = await http.request(
                request.method,
                self.upstream + request.url.path,
                params=params,
                headers=headers,
                content=await request.body(),
            )
        keep = {k: v for k, v in r.headers.items() if k in ("content-type", "retry-after", "x-request-id")}
        return Response(r.content, r.status_code, headers=keep)


@pytest.fixture
def reference(gateway: GatewayProcess) -> Iterator[NoLongPolls]:
    proxy = NoLongPolls(gateway.base_url)
    with proxy.server:
        yield proxy


def check_long_polls(proxy: ChaosProxy, video_id: str, seen: list[Video]) -> None:
    polls = proxy.seen("GET", f"/v1/videos/{video_id}")
    # A first plain look, then polls held on the tag of the version last seen.
    assert polls[0].query == "" and "if-none-match" not in polls[0].headers
    assert len(polls) >= 2 and all("wait=" in p.query and p.headers.get("if-none-match") for p in polls[1:])
    # Each held poll returned on a change: every answer was news to on_progress, none a repeat.
    assert len(seen) == len(polls)


def test_wait_long_polls_without_a_websocket(proxy: ChaosProxy, key: str) -> None:
    with Client(api_key=key, base_url=proxy.base_url) as c:
        job = c.videos.create(model=MODEL, prompt=prompt(), **RENDER)
        seen: list[Video] = []
        done = c.videos.wait(job.id, timeout=60, on_progress=seen.append)
    assert done.status == "completed" and seen[-1].status == "completed"
    assert proxy.seen("GET", f"/v1/async/video/{job.id}/ws"), "wait did not try the websocket first"
    check_long_polls(proxy, job.id, seen)


async def test_async_wait_long_polls_without_a_websocket(proxy: ChaosProxy, key: str) -> None:
    async with AsyncClient(api_key=key, base_url=proxy.base_url) as c:
        job = await c.videos.create(model=MODEL, prompt=prompt(), **RENDER)
        seen: list[Video] = []
        done = await c.videos.wait(job.id, timeout=60, on_progress=seen.append)
    assert done.status == "completed"
    check_long_polls(proxy, job.id, seen)


def test_wait_times_out_during_a_held_poll(proxy: ChaosProxy, key: str) -> None:
    from vidgate import errors

    with Client(api_key=key, base_url=proxy.base_url) as c:
        job = c.videos.create(model=MODEL, prompt=prompt(), size="1920x1080", duration=20)
        try:
            t0 = time.monotonic()
            with pytest.raises(errors.WaitTimeoutError):
                c.videos.wait(job.id, timeout=1.5, websocket=False)
            assert 1.4 <= time.monotonic() - t0 < 10
        finally:
            assert c.videos.cancel(job.id).status == "cancelled"


def test_wait_polls_at_the_hinted_pace_where_polls_are_not_held(reference: NoLongPolls, key: str) -> None:
    with Client(api_key=key, base_url=reference.server.base_url) as c:
        job = c.videos.create(model=MODEL, prompt=prompt(), **RENDER)
        seen: list[Video] = []
        t0 = time.monotonic()
        done = c.videos.wait(job.id, timeout=60, on_progress=seen.append, websocket=False)
        took = time.monotonic() - t0
    assert done.status == "completed"
    polls = reference.polls
    assert len(polls) == len(seen) >= 2 and all(inm is None for _, _, inm in polls)
    assert all(isinstance(v.poll_after_seconds, int) for v in seen[:-1])
    # Polling at min_interval (0.2 s) instead of the hint would make about five times as many requests.
    assert len(polls) <= took + 2
