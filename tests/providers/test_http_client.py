"""The shared upstream client against real loopback servers: URLs, redirects, timeouts, bad bodies."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.server import FakeUpstream, free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from vidgate.gateway.net import private_urls
from vidgate.gateway.providers.base import PollFailed, ProviderConfig, Rejected, UnknownOutcome
from vidgate.gateway.providers.http import Client, make_client, request, retry_after, stream_url


class Recorder:
    """A Starlette app that records every request and answers by path."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.redirect_to = ""
        self.app = Starlette(
            routes=[
                Route("/hang", self.hang, methods=["GET", "POST"]),
                Route("/bad-json", self.bad_json),
                Route("/bad-json-500", self.bad_json_500),
                Route("/redirect", self.redirect),
                Route("/failing", self.failing),
                Route("/file", self.file),
                Route("/{rest:path}", self.echo, methods=["GET", "POST"]),
            ]
        )

    def record(self, request: Request) -> None:
        self.seen.append({"raw_path": request.scope["raw_path"].decode(), "headers": dict(request.headers)})

    async def echo(self, request: Request) -> Response:
        self.record(request)
        return JSONResponse({"path": request.url.path}, headers={"x-request-id": "req-1"})

    async def hang(self, request: Request) -> Response:
        await asyncio.sleep(10)  # far past the caller's timeout, however slow the machine
        return JSONResponse({})

    async def bad_json(self, request: Request) -> Response:
        return Response(b'{"id": "trunc', media_type="application/json", headers={"x-request-id": "req-bad"})

    async def bad_json_500(self, request: Request) -> Response:
        return Response(b"<html>oops</html>", status_code=500, media_type="text/html")

    async def redirect(self, request: Request) -> Response:
        self.record(request)
        return RedirectResponse(self.redirect_to, status_code=302)

    async def failing(self, request: Request) -> Response:
        return JSONResponse({"error": "busy"}, status_code=503, headers={"request-id": "req-503"})

    async def file(self, request: Request) -> Response:
        self.record(request)
        return Response(b"x" * 200_000, media_type="video/mp4")


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Recorder, FakeUpstream]]:
    rec = Recorder()
    with FakeUpstream(rec.app) as server:
        yield rec, server


@pytest.fixture(scope="module")
def cdn() -> Iterator[tuple[Recorder, FakeUpstream]]:
    rec = Recorder()
    with FakeUpstream(rec.app) as server:
        yield rec, server


def client_for(base_url: str, *, timeout: float = 5.0) -> Client:
    config = ProviderConfig(name="t", base_url=base_url, timeout_seconds=timeout, connect_timeout_seconds=1.0)
    return make_client(config, default_base_url="https://unused.example", headers={"Authorization": "Bearer k"})


async def test_relative_urls_join_under_the_base_path(upstream: tuple[Recorder, FakeUpstream]) -> None:
    rec, server = upstream
    client = client_for(f"{server.base_url}/v1/")
    try:
        assert client.base_url == f"{server.base_url}/v1/"
        body, response = await request(client, "GET", "/videos/a%2Fb", phase="poll", params={"n": 1, "ok": True})
        assert body == {"path": "/v1/videos/a/b"}
        assert rec.seen[-1]["raw_path"] == "/v1/videos/a%2Fb"  # sent exactly as the adapter quoted it
        assert response.status_code == 200 and response.headers.get("X-Request-ID") == "req-1"
        await request(client, "GET", "tasks", phase="poll")
        assert rec.seen[-1]["raw_path"] == "/v1/tasks"
        await request(client, "GET", f"{server.base_url}/elsewhere", phase="poll", headers={"authorization": "B"})
        assert rec.seen[-1]["raw_path"] == "/elsewhere"
        assert rec.seen[-1]["headers"]["authorization"] == "B"  # a per-call header replaces the default
    finally:
        await client.aclose()


async def test_request_does_not_follow_redirects(upstream: tuple[Recorder, FakeUpstream]) -> None:
    rec, server = upstream
    rec.redirect_to = f"{server.base_url}/target"
    client = client_for(server.base_url)
    try:
        with pytest.raises(PollFailed) as info:
            await request(client, "GET", "/redirect", phase="poll")
        assert info.value.status_code == 302 and not info.value.retryable
        assert rec.seen[-1]["raw_path"] == "/redirect"
        body, response = await request(client, "GET", "/redirect", phase="poll", expect=(302,))
        assert body is None and response.headers["location"] == rec.redirect_to
    finally:
        await client.aclose()


async def test_stream_url_keeps_credentials_off_other_hosts(
    upstream: tuple[Recorder, FakeUpstream], cdn: tuple[Recorder, FakeUpstream]
) -> None:
    rec, server = upstream
    cdn_rec, cdn_server = cdn
    client = client_for(server.base_url)
    try:
        rec.redirect_to = "/file"  # same host: credentials kept
        data = b"".join([chunk async for chunk in stream_url(client, "/redirect", {"X-Key": "secret"})])
        assert len(data) == 200_000
        assert rec.seen[-1]["headers"]["authorization"] == "Bearer k" and rec.seen[-1]["headers"]["x-key"] == "secret"

        rec.redirect_to = f"{cdn_server.base_url}/file"  # another host: neither default nor given headers
        with private_urls(True):  # the CDN is on loopback too; the SSRF guard has tests of its own
            chunks = [chunk async for chunk in stream_url(client, f"{server.base_url}/redirect", {"X-Key": "secret"})]
        assert sum(map(len, chunks)) == 200_000 and max(map(len, chunks)) <= 1 << 16
        assert rec.seen[-1]["headers"]["x-key"] == "secret"
        assert "authorization" not in cdn_rec.seen[-1]["headers"] and "x-key" not in cdn_rec.seen[-1]["headers"]
    finally:
        await client.aclose()


async def test_stream_url_failures(upstream: tuple[Recorder, FakeUpstream]) -> None:
    _, server = upstream
    client = client_for(server.base_url)
    try:
        with pytest.raises(PollFailed) as info:
            _ = [chunk async for chunk in stream_url(client, "/failing")]
        assert info.value.retryable and info.value.status_code == 503 and info.value.request_id == "req-503"
        with private_urls(True), pytest.raises(PollFailed) as info:  # a closed port on loopback, not refused
            _ = [chunk async for chunk in stream_url(client, f"http://127.0.0.1:{free_port()}/x")]
        assert info.value.retryable and "download failed" in info.value.message
    finally:
        await client.aclose()


async def test_a_submit_timeout_is_an_unknown_outcome(upstream: tuple[Recorder, FakeUpstream]) -> None:
    _, server = upstream
    client = client_for(server.base_url, timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(UnknownOutcome) as info:
            await request(client, "POST", "/hang", phase="submit", json={"a": 1})
    finally:
        await client.aclose()
    assert time.monotonic() - started < 8  # gave up at its timeout, not when the answer came
    assert info.value.retryable and info.value.code == "upstream_timeout"
    assert not isinstance(info.value, Rejected)  # sent: the job may exist, no failover


def test_retry_after_is_read_in_seconds_or_as_a_date() -> None:
    assert retry_after("7") == 7.0 and retry_after(" 2.5 ") == 2.5 and retry_after("-3") == 0.0
    assert retry_after(None) is None and retry_after("soon") is None and retry_after("inf") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: at once


async def test_connection_refused_is_retryable() -> None:
    client = client_for(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(PollFailed) as info:
            await request(client, "GET", "/x", phase="poll")
    finally:
        await client.aclose()
    assert info.value.retryable and "unreachable" in info.value.message


async def test_malformed_bodies(upstream: tuple[Recorder, FakeUpstream]) -> None:
    _, server = upstream
    client = client_for(server.base_url)
    try:
        with pytest.raises(PollFailed) as info:
            await request(client, "GET", "/bad-json", phase="poll")
        assert info.value.retryable and "malformed" in info.value.message
        assert info.value.request_id == "req-bad" and info.value.status_code == 200
        with pytest.raises(Rejected) as rejected:
            await request(client, "GET", "/bad-json-500", phase="submit")
        assert rejected.value.retryable and rejected.value.message == "upstream answered 500 during submit"
    finally:
        await client.aclose()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_client_follows_the_running_loop(upstream: tuple[Recorder, FakeUpstream]) -> None:
    """Built outside any loop, used on one loop and then another, closed unused.

    The first loop's session cannot be closed once that loop is closed; it is let go and its
    sockets reclaimed on collection (hence the ignored unraisable warnings).
    """
    _, server = upstream
    client = client_for(server.base_url)

    async def fetch() -> Any:
        body, _ = await request(client, "GET", "/ping", phase="poll")
        return body

    assert asyncio.run(fetch()) == {"path": "/ping"}
    assert asyncio.run(fetch()) == {"path": "/ping"}
    asyncio.run(client.aclose())
    asyncio.run(client_for(server.base_url).aclose())
    gc.collect()
