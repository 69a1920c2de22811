"""The async SDK against a real gateway: the same surface as the sync client, on the same ``_core``."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fakes.chaos_proxy import ChaosProxy
from helpers.gateway import GatewayProcess
from httpx_ws import WebSocketUpgradeError, aconnect_ws

from vidgate import errors
from vidgate.client import AsyncClient
from vidgate.types import Video, VideoGenerationRequest

MODEL = "vidgate/procedural"
SMALL = {"size": "160x90", "duration": 1}
LONG = {"size": "1920x1080", "duration": 20}


def prompt() -> str:
    return f"a paper boat on a pond {uuid.uuid4().hex[:8]}"


@pytest.fixture
async def client(gateway: GatewayProcess, key: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(api_key=key, base_url=gateway.base_url) as c:
        yield c


def via(proxy: ChaosProxy, key: str, **kw) -> AsyncClient:
    return AsyncClient(api_key=key, base_url=proxy.base_url, **kw)


async def test_every_method_on_a_small_render(gateway: GatewayProcess, client: AsyncClient, tmp_path: Path) -> None:
    models = await client.list_video_models()
    assert MODEL in {m.id for m in models.data}
    assert (await client.videos.list_models()).data == models.data

    job = await client.generate_video(model=MODEL, prompt=prompt(), **SMALL)
    assert job.status == "queued" and job.size == "160x90"
    typed = await client.videos.create(VideoGenerationRequest(model=MODEL, prompt=prompt(), size="160x90", duration=1))

    progress: list[str] = []

    async def on_progress(video: Video) -> None:  # async callbacks are awaited
        progress.append(video.status)

    done, typed_done = await asyncio.gather(
        client.videos.wait(job.id, timeout=60, on_progress=on_progress), client.videos.wait(typed.id, timeout=60)
    )
    assert done.status == typed_done.status == "completed" and progress[-1] == "completed"
    assert (await client.get_video(job.id)).asset == done.asset == (await client.videos.get(job.id)).asset

    data = await client.get_video_content(job.id)
    assert hashlib.sha256(data).hexdigest() == done.asset.sha256 and await client.videos.content(job.id) == data

    link = await client.get_video_download_url(job.id, ttl_seconds=300)
    async with httpx.AsyncClient(base_url=gateway.base_url) as anon:
        assert hashlib.sha256((await anon.get(link.url)).content).hexdigest() == done.asset.sha256
    assert (await client.videos.download_url(job.id, disposition="inline")).disposition == "inline"

    assert job.id in {v.id for v in (await client.list_videos(limit=100)).data}
    completed = await client.videos.list(status=["completed"], limit=100)
    assert job.id in {v.id for v in completed.data} and {v.status for v in completed.data} == {"completed"}

    path = await client.videos.download(job.id, tmp_path / "a.mp4")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == done.asset.sha256

    base = f"ws://127.0.0.1:{gateway.port}/v1/async/video/{job.id}/ws"
    assert client.get_async_job_websocket_url("video", job.id, close_on_terminal=False) == (
        base + "?close_on_terminal=false"
    )
    assert client.videos.websocket_url(job.id, interval_ms=2000) == base + "?interval_ms=2000"

    long = await client.videos.create(model=MODEL, prompt=prompt(), **LONG)
    assert (await client.cancel_video(long.id)).status == "cancelled"
    assert (await client.delete_video(long.id)).deleted
    assert (await client.videos.delete(job.id)).id == job.id
    with pytest.raises(errors.NotFoundError):
        await client.videos.get(job.id)


async def test_create_and_wait_timeout_and_failure(client: AsyncClient) -> None:
    done = await client.videos.create_and_wait(model=MODEL, prompt=prompt(), timeout=60, **SMALL)
    assert done.status == "completed"

    long = await client.videos.create(model=MODEL, prompt=prompt(), **LONG)
    t0 = time.monotonic()
    with pytest.raises(errors.WaitTimeoutError):
        await client.videos.wait(long.id, timeout=1)
    assert 0.9 <= time.monotonic() - t0 < 10  # at its timeout, long before the render ends
    await client.videos.cancel(long.id)
    with pytest.raises(errors.JobFailedError) as info:
        await client.videos.wait(long.id, timeout=10, raise_on_failure=True)
    assert info.value.job.status == "cancelled"


async def test_wait_uses_the_websocket_when_the_gateway_has_one(
    gateway: GatewayProcess, key: str, client: AsyncClient
) -> None:
    try:
        async with (
            httpx.AsyncClient(trust_env=False) as http,
            aconnect_ws(
                f"{gateway.base_url}/v1/async/video/vid_probe/ws", http, headers={"Authorization": f"Bearer {key}"}
            ),
        ):
            pass
    except WebSocketUpgradeError:
        pytest.skip("this gateway has no /v1/async/video/{id}/ws route yet")
    job = await client.videos.create(model=MODEL, prompt=prompt(), **SMALL)

    async def no_polling(video_id: str) -> Video:
        raise AssertionError("wait polled although the websocket was there")

    client.videos.get = no_polling  # type: ignore[method-assign]
    assert (await client.videos.wait(job.id, timeout=60)).status == "completed"


async def test_wait_polls_when_there_is_no_websocket(proxy: ChaosProxy, key: str) -> None:
    async with via(proxy, key) as c:
        job = await c.videos.create(model=MODEL, prompt=prompt(), **SMALL)
        assert (await c.videos.wait(job.id, timeout=60)).status == "completed"
    assert proxy.seen("GET", f"/v1/async/video/{job.id}/ws") and proxy.seen("GET", f"/v1/videos/{job.id}")


async def test_create_is_retried_into_one_job(proxy: ChaosProxy, key: str, client: AsyncClient) -> None:
    proxy.inject("POST", "/v1/videos", "503", "drop_after")
    text = prompt()
    async with via(proxy, key, max_retries=3) as c:
        c.config = dataclasses.replace(c.config, backoff_base=0.05)
        job = await c.videos.create(model=MODEL, prompt=text, **SMALL)
    posts = proxy.seen("POST", "/v1/videos")
    assert [p.fault for p in posts] == ["503", "drop_after", None]
    assert len({p.headers["idempotency-key"] for p in posts}) == 1
    mine = [v.id for v in (await client.videos.list(limit=100)).data if v.prompt == text]
    assert mine == [job.id]
    await client.videos.wait(job.id, timeout=60)


async def test_reads_retry_429_and_errors_are_typed(proxy: ChaosProxy, key: str, gateway: GatewayProcess) -> None:
    proxy.inject("GET", "/v1/videos", "429", "429")
    async with via(proxy, key, max_retries=2) as c:
        c.config = dataclasses.replace(c.config, backoff_base=30.0, backoff_max=30.0)
        t0 = time.monotonic()
        await c.videos.list()
        assert time.monotonic() - t0 < 20  # Retry-After: 0, not the 30 s backoff
    proxy.inject("GET", "/v1/videos", "429")
    async with via(proxy, key, max_retries=0) as c:
        with pytest.raises(errors.RateLimitError) as limited:
            await c.videos.list()
        assert limited.value.retry_after == 0.0
        with pytest.raises(errors.ValidationError) as bad:
            await c.videos.create(model=MODEL, prompt=prompt(), size="7x7", duration=1)
        assert bad.value.param == "size"
    assert len(proxy.seen("POST", "/v1/videos")) == 1
    async with AsyncClient(api_key="vg_wrong", base_url=gateway.base_url) as anon:
        with pytest.raises(errors.AuthenticationError):
            await anon.videos.get("vid_x")
    async with AsyncClient(api_key=gateway.new_key(balance=0.0), base_url=gateway.base_url) as broke:
        with pytest.raises(errors.InsufficientFundsError):
            await broke.generate_video(model=MODEL, prompt=prompt(), **SMALL)
    async with AsyncClient(api_key=key, base_url=gateway.base_url) as c:
        with pytest.raises(errors.NotFoundError):
            await c.videos.get("vid_01NOPE")
        long = await c.videos.create(model=MODEL, prompt=prompt(), **LONG)
        try:
            with pytest.raises(errors.NotReadyError):
                await c.videos.content(long.id)
        finally:
            await c.videos.cancel(long.id)


async def test_interrupted_download_resumes(proxy: ChaosProxy, key: str, client: AsyncClient, tmp_path: Path) -> None:
    done = await client.videos.create_and_wait(model=MODEL, prompt=prompt(), timeout=60, **SMALL)
    content = f"/v1/videos/{done.id}/content"
    proxy.inject("GET", content, "cut:2000")
    target = tmp_path / "b.mp4"
    async with via(proxy, key, max_retries=0) as c:
        with pytest.raises(errors.APIConnectionError):
            await c.videos.download(done.id, target)
        assert (tmp_path / "b.mp4.part").stat().st_size == 2000
        await c.videos.download(done.id, target)
    assert [f.headers.get("range") for f in proxy.seen("GET", content)] == [None, "bytes=2000-"]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == done.asset.sha256
    assert not proxy.seen("POST")
