"""The sync SDK against a real gateway: every method, typed errors, retries, waits and resumable downloads."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import subprocess
import sys
import time
import uuid
from pathlib import Path

import av
import httpx
import pytest
from fakes.chaos_proxy import ChaosProxy
from helpers.gateway import GatewayProcess

from vidgate import errors
from vidgate.client import Client
from vidgate.types import Video, VideoGenerationRequest

MODEL = "vidgate/procedural"
SMALL = {"size": "160x90", "duration": 1}
LONG = {"size": "1920x1080", "duration": 20}


def duration_of(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as c:
        return float(c.duration / 1_000_000)


def prompt() -> str:
    return f"a lighthouse at dusk {uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(gateway: GatewayProcess, key: str) -> Client:
    with Client(api_key=key, base_url=gateway.base_url) as c:
        yield c


def via(proxy: ChaosProxy, key: str, **kw) -> Client:
    """A client that talks through the chaos proxy."""
    return Client(api_key=key, base_url=proxy.base_url, **kw)


def done_video(client: Client, **fields) -> Video:
    return client.videos.create_and_wait(model=MODEL, prompt=prompt(), timeout=60, **{**SMALL, **fields})


def test_sdk_imports_without_the_gateway() -> None:
    code = (
        "import sys\n"
        "sys.modules['vidgate.gateway'] = None\n"
        "import vidgate.client, vidgate.types, vidgate.errors\n"
        "from vidgate.client import AsyncClient, Client\n"
        "Client(api_key='k', base_url='http://127.0.0.1:9').close()\n"
        "server_only = ('starlette', 'av', 'orjson', 'sqlalchemy', 'granian')\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in server_only]\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_every_method_on_a_small_render(gateway: GatewayProcess, client: Client, tmp_path: Path) -> None:
    models = client.list_video_models()
    assert MODEL in {m.id for m in models.data}
    assert [m.id for m in client.videos.list_models().data] == [m.id for m in models.data]

    job = client.generate_video(model=MODEL, prompt=prompt(), **SMALL)
    assert job.id.startswith("vid_") and job.status == "queued" and job.model == MODEL
    assert job.size == "160x90" and job.seconds == 1
    assert job.lifecycle_status == "pending" and job.polling_url == f"{gateway.base_url}/v1/videos/{job.id}"
    assert job.websocket_url == client.videos.websocket_url(job.id) and job.cancel_url is not None
    typed = client.videos.create(VideoGenerationRequest(model=MODEL, prompt=prompt(), size="160x90", duration=1))
    as_dict = client.videos.create({"model": MODEL, "prompt": prompt(), "size": "160x90", "duration": 1})
    assert len({job.id, typed.id, as_dict.id}) == 3

    seen: list[Video] = []
    done = client.videos.wait(job.id, timeout=60, on_progress=seen.append)
    assert done.status == "completed" and done.progress == 100 and seen[-1].status == "completed"
    assert done.asset is not None and (done.asset.width, done.asset.height) == (160, 90)
    assert client.get_video(job.id).status == "completed"
    assert client.videos.get(job.id).asset == done.asset

    data = client.get_video_content(job.id)
    assert hashlib.sha256(data).hexdigest() == done.asset.sha256 and client.videos.content(job.id) == data
    assert duration_of(data) == pytest.approx(1.0, abs=0.05)

    link = client.get_video_download_url(job.id, ttl_seconds=120, disposition="inline")
    assert link.index == 0 and link.disposition == "inline"
    assert link.expires_at - time.time() == pytest.approx(120, abs=5)
    assert link.download_url == link.url and link.url.startswith(f"{gateway.base_url}/v1/videos/{job.id}/download?")
    anon = httpx.get(link.url, timeout=30)
    assert anon.status_code == 200 and hashlib.sha256(anon.content).hexdigest() == done.asset.sha256
    assert client.videos.download_url(job.id).disposition == "attachment"

    page = client.list_videos(limit=100)
    assert job.id in {v.id for v in page.data} and page.object == "list"
    done_only = client.videos.list(status="completed", limit=100)
    assert job.id in {v.id for v in done_only.data} and {v.status for v in done_only.data} == {"completed"}
    first = client.videos.list(limit=1, order="desc")
    assert first.has_more and first.last_id == first.data[0].id
    assert client.videos.list(limit=1, after=first.last_id).data[0].id < first.last_id

    path = client.videos.download(job.id, tmp_path / "out.mp4")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == done.asset.sha256
    assert not (tmp_path / "out.mp4.part").exists()

    ws = client.get_async_job_websocket_url("video", job.id, interval_ms=1500)
    assert ws == f"ws://127.0.0.1:{gateway.port}/v1/async/video/{job.id}/ws?interval_ms=1500"
    assert client.videos.websocket_url(job.id) == f"ws://127.0.0.1:{gateway.port}/v1/async/video/{job.id}/ws"

    long = client.videos.create(model=MODEL, prompt=prompt(), **LONG)
    cancelled = client.cancel_video(long.id)
    assert cancelled.status == "cancelled"
    for vid in (job.id, long.id):
        deleted = client.delete_video(vid)
        assert deleted.id == vid and deleted.deleted and deleted.object == "video.deleted"
    for other in (typed.id, as_dict.id):
        client.videos.wait(other, timeout=60)
        assert client.videos.delete(other).deleted
    with pytest.raises(errors.NotFoundError):
        client.get_video(job.id)


def test_create_and_wait_and_raise_on_failure(client: Client) -> None:
    done = done_video(client)
    assert done.status == "completed" and done.billing.state == "settled"
    assert done.billing.charged is True and done.lifecycle_status == "completed" and done.native_video_id

    long = client.videos.create(model=MODEL, prompt=prompt(), **LONG)
    client.videos.cancel(long.id)
    assert client.videos.wait(long.id, timeout=10).status == "cancelled"  # returned, not raised, by default
    with pytest.raises(errors.JobFailedError) as info:
        client.videos.wait(long.id, timeout=10, raise_on_failure=True)
    assert info.value.job.status == "cancelled" and info.value.code == "job_failed"
    assert "cancelled" in str(info.value)


def test_wait_times_out_on_a_long_render(client: Client) -> None:
    long = client.videos.create(model=MODEL, prompt=prompt(), **LONG)
    try:
        t0 = time.monotonic()
        with pytest.raises(errors.WaitTimeoutError) as info:
            client.videos.wait(long.id, timeout=1)
        assert 0.9 <= time.monotonic() - t0 < 10  # at its timeout, long before the render ends
        assert long.id in info.value.message and info.value.code == "wait_timeout"
    finally:
        assert client.videos.cancel(long.id).status == "cancelled"


def test_wait_uses_the_websocket_when_the_gateway_has_one(gateway: GatewayProcess, key: str, client: Client) -> None:
    from httpx_ws import WebSocketUpgradeError, connect_ws

    try:
        with (
            httpx.Client(trust_env=False) as http,
            connect_ws(
                f"{gateway.base_url}/v1/async/video/vid_probe/ws", http, headers={"Authorization": f"Bearer {key}"}
            ),
        ):
            pass
    except WebSocketUpgradeError:
        pytest.skip("this gateway has no /v1/async/video/{id}/ws route yet; wait polls (tested below)")
    job = client.videos.create(model=MODEL, prompt=prompt(), **SMALL)

    def no_polling(video_id: str) -> Video:
        raise AssertionError("wait polled although the websocket was there")

    client.videos.get = no_polling  # type: ignore[method-assign]
    seen: list[Video] = []
    done = client.videos.wait(job.id, timeout=60, on_progress=seen.append)
    assert done.status == "completed" and seen[0].id == job.id


def test_create_is_retried_past_503_and_dropped_connections_into_one_job(
    proxy: ChaosProxy, key: str, client: Client
) -> None:
    proxy.inject("POST", "/v1/videos", "503", "drop", "drop_after")
    text = prompt()
    with via(proxy, key, max_retries=4) as c:
        c.config = dataclasses.replace(c.config, backoff_base=0.05)
        job = c.videos.create(model=MODEL, prompt=text, **SMALL)
    posts = proxy.seen("POST", "/v1/videos")
    assert [p.fault for p in posts] == ["503", "drop", "drop_after", None]
    keys = {p.headers.get("idempotency-key") for p in posts}
    assert len(keys) == 1 and None not in keys, keys
    mine = [v for v in client.videos.list(limit=100).data if v.prompt == text]
    assert [v.id for v in mine] == [job.id], "a retried create made more than one job"
    client.videos.wait(job.id, timeout=60)


def test_reads_are_retried_past_429_honouring_retry_after(proxy: ChaosProxy, key: str, client: Client) -> None:
    job = client.videos.create(model=MODEL, prompt=prompt(), **SMALL)
    proxy.inject("GET", f"/v1/videos/{job.id}", "429", "429")
    proxy.inject("GET", "/v1/videos", "429", "502")
    with via(proxy, key, max_retries=3) as c:
        # With a 30 s backoff base, only honouring Retry-After: 0 keeps these calls fast.
        c.config = dataclasses.replace(c.config, backoff_base=30.0, backoff_max=30.0)
        t0 = time.monotonic()
        assert c.videos.get(job.id).id == job.id
        assert time.monotonic() - t0 < 20  # Retry-After: 0, not the 30 s backoff
        c.config = dataclasses.replace(c.config, backoff_base=0.05)
        assert job.id in {v.id for v in c.videos.list(limit=100).data}
    assert [r.fault for r in proxy.seen("GET", f"/v1/videos/{job.id}")] == ["429", "429", None]
    assert [r.fault for r in proxy.seen("GET", "/v1/videos")] == ["429", "502", None]
    client.videos.wait(job.id, timeout=60)


def test_a_400_is_not_retried(proxy: ChaosProxy, key: str) -> None:
    with via(proxy, key, max_retries=3) as c, pytest.raises(errors.ValidationError) as info:
        c.videos.create(model=MODEL, prompt=prompt(), size="160x90", duration=99)
    assert info.value.param == "duration" and info.value.status == 400
    assert len(proxy.seen("POST", "/v1/videos")) == 1


def test_max_retries_zero_surfaces_the_typed_error(proxy: ChaosProxy, key: str) -> None:
    proxy.inject("GET", "/v1/videos", "503", "429", "drop")
    with via(proxy, key, max_retries=0) as c:
        with pytest.raises(errors.ServiceUnavailableError) as unavailable:
            c.videos.list()
        with pytest.raises(errors.RateLimitError) as limited:
            c.videos.list()
        with pytest.raises(errors.APIConnectionError):
            c.videos.list()
    err = unavailable.value
    assert (err.status, err.code, err.message, err.request_id) == (
        503,
        "service_unavailable",
        "chaos proxy injected 503",
        "req_chaos",
    )
    assert limited.value.retry_after == 0.0 and limited.value.code == "rate_limited"
    assert len(proxy.seen("GET", "/v1/videos")) == 3


def test_typed_errors(gateway: GatewayProcess, client: Client) -> None:
    with pytest.raises(errors.NotFoundError) as nf:
        client.videos.get("vid_01NOPE")
    assert nf.value.status == 404 and nf.value.code == "not_found" and nf.value.request_id.startswith("req_")

    with pytest.raises(errors.ValidationError) as bad:
        client.videos.create(model=MODEL, prompt=prompt(), size="160x90", duration=0)
    assert bad.value.param == "duration" and bad.value.code == "validation_error"
    with pytest.raises(errors.InvalidRequestError) as unknown:
        client.videos.create(model="nobody/nothing", prompt=prompt())
    assert unknown.value.param == "model"

    with (
        Client(api_key="vg_not_a_real_key", base_url=gateway.base_url) as anon,
        pytest.raises(errors.AuthenticationError) as auth,
    ):
        anon.videos.list()
    assert auth.value.status == 401 and auth.value.code == "unauthorized"

    with (
        Client(api_key=gateway.new_key(balance=0.0), base_url=gateway.base_url) as broke,
        pytest.raises(errors.InsufficientFundsError) as funds,
    ):
        broke.videos.create(model=MODEL, prompt=prompt(), **SMALL)
    assert funds.value.status == 402 and funds.value.code == "insufficient_funds"

    long = client.videos.create(model=MODEL, prompt=prompt(), **LONG)
    try:
        with pytest.raises(errors.NotReadyError) as not_ready:
            client.videos.content(long.id)
        assert not_ready.value.status == 409 and not_ready.value.code == "not_ready"
        with pytest.raises(errors.NotReadyError):
            client.videos.download(long.id, Path("never.mp4"))
    finally:
        client.videos.cancel(long.id)


def test_rate_limit_error_carries_retry_after(proxy: ChaosProxy, key: str) -> None:
    proxy.inject("POST", "/v1/videos", "429")
    with via(proxy, key, max_retries=0) as c, pytest.raises(errors.RateLimitError) as info:
        c.videos.create(model=MODEL, prompt=prompt(), **SMALL)
    assert info.value.retry_after == 0.0 and info.value.headers["retry-after"] == "0"


def test_interrupted_download_resumes_with_a_range_request(
    proxy: ChaosProxy, key: str, client: Client, tmp_path: Path
) -> None:
    done = done_video(client, size="320x180", duration=2)
    total = done.asset.bytes
    cut = total // 3
    content = f"/v1/videos/{done.id}/content"
    proxy.inject("GET", content, f"cut:{cut}")
    target = tmp_path / "resumed.mp4"
    part = tmp_path / "resumed.mp4.part"
    with via(proxy, key, max_retries=0) as c:
        with pytest.raises(errors.APIConnectionError) as info:
            c.videos.download(done.id, target)
        assert "resumes" in info.value.message
        assert part.stat().st_size == cut and not target.exists()
        c.videos.download(done.id, target)
    fetches = proxy.seen("GET", content)
    assert [f.headers.get("range") for f in fetches] == [None, f"bytes={cut}-"]
    assert hashlib.sha256(target.read_bytes()).hexdigest() == done.asset.sha256 and not part.exists()
    assert duration_of(target.read_bytes()) == pytest.approx(2.0, abs=0.05)
    assert not proxy.seen("POST"), "a download must never start a generation"


def test_download_resumes_within_one_call(proxy: ChaosProxy, key: str, client: Client, tmp_path: Path) -> None:
    done = done_video(client)
    content = f"/v1/videos/{done.id}/content"
    proxy.inject("GET", content, "cut:1000", "cut:1000")
    got: list[tuple[int, int]] = []
    with via(proxy, key, max_retries=2) as c:
        c.config = dataclasses.replace(c.config, backoff_base=0.05)
        path = c.videos.download(done.id, tmp_path / "v.mp4", on_bytes=lambda n, t: got.append((n, t)))
    assert [f.headers.get("range") for f in proxy.seen("GET", content)] == [None, "bytes=1000-", "bytes=2000-"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == done.asset.sha256
    assert got[-1] == (done.asset.bytes, done.asset.bytes)
