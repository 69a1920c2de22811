"""The OpenAI Videos adapter against its fake on loopback: mapping, lifecycle, bytes, failures."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator

import av
import httpx
import pytest
from fakes.openai_fake import OpenAIFake
from fakes.server import free_port, small_mp4
from helpers.media import png_bytes

from providers.harness import job_maker, read_all
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import WIRINGS
from vidgate.gateway.providers.base import (
    PollFailed,
    ReferenceImage,
    Rejected,
    RemoteProvider,
    UnknownOutcome,
)
from vidgate.gateway.providers.openai import OpenAIProvider

PNG = png_bytes((200, 40, 40), 1024, 1792)  # the size of the pro job below


WIRE = WIRINGS["openai"]
config = WIRE.config
make_job = job_maker(
    job_id="vid_01JTESTOPENAI",
    model="openai/sora-2",
    provider_model="sora-2",
    prompt="a red kite over dunes",
    duration=8,
    width=1280,
    height=720,
    audio=True,
)


@pytest.fixture
def fake() -> OpenAIFake:
    return OpenAIFake(api_key="sk-test", polls_to_complete=3)


@pytest.fixture
async def provider(root: str) -> AsyncIterator[OpenAIProvider]:
    p = OpenAIProvider(config(root, timeout_seconds=5))
    yield p
    await p.aclose()


async def test_create_poll_download(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    assert isinstance(provider, RemoteProvider)
    assert provider.name == "openai" and provider.cancellable is False
    job = make_job()
    accepted = await provider.submit(job)
    assert accepted.native_id.startswith("video_")
    assert accepted.request_id and accepted.request_id.startswith("req_")
    assert fake.idempotency_keys == ["vid_01JTESTOPENAI"]

    seen = await poll_to_end(provider, job, accepted.native_id)
    assert [u.status for u in seen] == ["queued", "processing", "completed"]
    assert [u.progress for u in seen] == [0, 50, 100]
    done = seen[-1]
    assert done.seconds == 8.0
    assert len(done.outputs) == 1
    out = done.outputs[0]
    assert out.index == 0
    assert out.url == f"{provider._client.base_url}videos/{accepted.native_id}/content?variant=video"
    assert out.url.startswith("http://127.0.0.1:")
    assert out.headers == {"Authorization": "Bearer sk-test"}

    data = await read_all(provider, out)
    assert data == small_mp4()
    with av.open(io.BytesIO(data)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == 24
    assert fake.requests[-1].body == {"variant": "video"}
    assert await provider.cancel(accepted.native_id) is False


async def test_request_mapping(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    ref = ReferenceImage(role="first_frame", url="https://example.test/a", data=PNG, mime_type="image/png")
    job = make_job(
        provider_model="sora-2-pro",
        duration=12,
        width=1024,
        height=1792,
        references=(ref,),
        provider_params={"quality": "high", "seconds": "4", "size": "720x1280"},
    )
    accepted = await provider.submit(job)
    assert accepted.note is None  # already the size: sent as it is
    (rec,) = [r for r in fake.requests if r.method == "POST"]
    assert rec.path == "/v1/videos"
    assert rec.headers["content-type"].startswith("multipart/form-data")
    assert rec.headers["authorization"] == "Bearer sk-test"
    assert rec.headers["idempotency-key"] == job.job_id
    body = rec.body
    assert body["model"] == "sora-2-pro"
    assert body["prompt"] == "a red kite over dunes"
    assert body["seconds"] == "12"  # mapped fields win over provider_params
    assert body["size"] == "1024x1792"
    assert body["quality"] == "high"  # unmapped provider_params pass through
    upload = body["input_reference"]
    assert upload["data"] == PNG
    assert upload["content_type"] == "image/png"
    assert upload["filename"].endswith(".png")


async def test_text_only_has_no_input_reference(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    await provider.submit(make_job(duration=4, width=720, height=1280))
    body = fake.requests[-1].body
    assert body["seconds"] == "4" and body["size"] == "720x1280"
    assert "input_reference" not in body


@pytest.mark.parametrize(
    ("outcome", "code", "text"),
    [
        ("failed", "internal_error", "internal error"),
        ("moderation", "moderation_blocked", "moderation"),
    ],
)
async def test_upstream_failure(provider: OpenAIProvider, fake: OpenAIFake, outcome: str, code: str, text: str) -> None:
    fake.fail_next = outcome
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_to_end(provider, job, accepted.native_id))[-1]
    assert final.status == "failed"
    assert final.outputs == ()
    assert final.error is not None
    assert final.error.code == code
    assert text in final.error.message
    assert final.error.request_id and final.error.request_id.startswith("req_")


@pytest.mark.parametrize("kind", ["429", "500"])
async def test_create_fault_is_retryable(provider: OpenAIProvider, fake: OpenAIFake, kind: str) -> None:
    fake.faults.add("create", kind)
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert info.value.retryable is True
    assert info.value.status_code == int(kind)
    assert info.value.code == ("upstream_rate_limited" if kind == "429" else "upstream_error")
    assert fake.jobs == {}


async def test_create_timeout_is_an_unknown_outcome(fake: OpenAIFake, root: str) -> None:
    fake.faults.hang_seconds = 10.0  # far past the 0.3 s timeout, however slow the machine
    fake.faults.add("create", "timeout")
    provider = OpenAIProvider(config(root, timeout_seconds=0.3))
    started = time.monotonic()
    try:
        with pytest.raises(UnknownOutcome) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert time.monotonic() - started < 8  # gave up at its timeout, not when the answer came
    assert info.value.retryable is True
    assert info.value.code == "upstream_timeout"
    assert not isinstance(info.value, Rejected)  # sent: the job may exist, no failover


async def test_connection_refused_is_retryable() -> None:
    provider = OpenAIProvider(config(f"http://127.0.0.1:{free_port()}", timeout_seconds=1))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable is True
    assert "unreachable" in info.value.message


async def test_bad_input_is_not_retryable(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_model="sora-9"))
    assert info.value.retryable is False
    assert info.value.status_code == 400
    assert "'sora-9' is not a supported video model" in info.value.message
    assert info.value.request_id and info.value.request_id.startswith("req_")


async def test_first_frame_of_another_size_is_fitted(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    # A tall 640x960 picture for a 1280x720 video: scaled to cover the width, centre rows kept.
    picture = png_bytes((10, 120, 240), 640, 960)
    ref = ReferenceImage(role="first_frame", url="https://example.test/tall.png", data=picture, mime_type="image/png")
    accepted = await provider.submit(make_job(references=(ref,)))
    assert accepted.note == "first_frame resized from 640x960 to 1280x720 (scaled to cover, centre cropped)"
    upload = fake.requests[-1].body["input_reference"]
    assert upload["content_type"] == "image/png" and upload["filename"] == "first_frame.png"
    with av.open(io.BytesIO(upload["data"])) as container:
        frame = next(container.decode(video=0))
    assert (frame.width, frame.height) == (1280, 720)
    assert tuple(frame.to_ndarray(format="rgb24")[360, 640]) == (10, 120, 240)


async def test_fake_refuses_a_first_frame_of_another_size(fake: OpenAIFake, root: str) -> None:
    files = {"input_reference": ("a.png", png_bytes((1, 2, 3), 64, 64), "image/png")}
    data = {"prompt": "x", "size": "1280x720", "seconds": "4"}
    async with httpx.AsyncClient(base_url=root + WIRE.suffix, headers={"Authorization": "Bearer sk-test"}) as client:
        r = await client.post("/videos", data=data, files=files)
    assert (
        r.status_code == 400
        and r.json()["error"]["message"] == "Inpaint image must match the requested width and height"
    )
    assert fake.jobs == {}


async def test_unreadable_first_frame_is_refused_for_good(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    junk = ReferenceImage(
        role="first_frame",
        url="https://example.test/x.png",
        data=b"\x89PNG\r\n\x1a\n" + b"\x00" * 32,
        mime_type="image/png",
    )
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(references=(junk,)))
    assert not info.value.retryable and info.value.code == "invalid_reference"
    assert fake.requests == []


async def test_unsupported_duration_or_role_fails_over_without_a_call(
    provider: OpenAIProvider, fake: OpenAIFake
) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(duration=5))
    assert info.value.retryable is True and info.value.code == "unsupported_parameter"
    last = ReferenceImage(role="last_frame", url="https://example.test/b", data=PNG, mime_type="image/png")
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(references=(last,)))
    assert info.value.retryable is True and "last_frame" in info.value.message
    for overrides, needle in (
        ({"sample_count": 2}, "one video"),
        ({"seed": 7}, "openai takes no seed"),
        ({"negative_prompt": "blur"}, "openai takes no negative_prompt"),
        ({"audio": False}, "always makes audio"),
        ({"width": 1792, "height": 1024}, "makes 720x1280, 1280x720 video, not 1792x1024"),
        ({"width": 1920, "height": 1080, "provider_model": "sora-2-pro"}, "not 1920x1080"),
    ):
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job(**overrides))
        assert info.value.retryable is True and info.value.code == "unsupported_parameter"
        assert needle in info.value.message
    assert fake.requests == []


async def test_wrong_api_key_is_not_retryable(fake: OpenAIFake, root: str) -> None:
    provider = OpenAIProvider(config(root, api_key="sk-wrong-key-123"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable is False
    assert info.value.status_code == 401
    assert "Incorrect API key" in info.value.message
    assert fake.jobs == {}


async def test_poll_faults_keep_the_job(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    fake.faults.add("poll", "503")
    with pytest.raises(PollFailed) as info:
        await provider.poll(job, accepted.native_id)
    assert info.value.retryable is True and info.value.status_code == 503
    fake.faults.add("poll", "malformed")
    with pytest.raises(PollFailed) as info:
        await provider.poll(job, accepted.native_id)
    assert info.value.retryable is True and "malformed" in info.value.message
    fake.faults.add("poll", "429")
    with pytest.raises(PollFailed) as info:
        await provider.poll(job, accepted.native_id)
    assert info.value.retryable is True
    seen = await poll_to_end(provider, job, accepted.native_id)
    assert [u.status for u in seen] == ["queued", "processing", "completed"]


async def test_unknown_video_poll_is_not_retryable(provider: OpenAIProvider) -> None:
    with pytest.raises(PollFailed) as info:
        await provider.poll(make_job(), "video_doesnotexist")
    assert info.value.retryable is False and info.value.status_code == 404


async def test_expired_content_is_a_download_error(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    done = (await poll_to_end(provider, job, accepted.native_id))[-1]
    fake.expired.add(accepted.native_id)
    with pytest.raises(PollFailed) as info:
        await read_all(provider, done.outputs[0])
    assert info.value.status_code == 404 and info.value.retryable is False


async def test_download_5xx_is_retryable(provider: OpenAIProvider, fake: OpenAIFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    done = (await poll_to_end(provider, job, accepted.native_id))[-1]
    fake.faults.add("download", "502")
    with pytest.raises(PollFailed) as info:
        await read_all(provider, done.outputs[0])
    assert info.value.retryable is True
    assert await read_all(provider, done.outputs[0]) == small_mp4()


async def test_fake_validates_like_the_upstream(fake: OpenAIFake, root: str) -> None:
    """The fake's own checks: JSON bodies, string-typed seconds, enums, auth."""
    base = root + WIRE.suffix
    auth = {"Authorization": "Bearer sk-test"}
    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.post("/videos", json={"prompt": "x", "seconds": 8}, headers=auth)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "invalid_type" and r.json()["error"]["param"] == "seconds"
        r = await client.post("/videos", json={"prompt": "x", "seconds": "5"}, headers=auth)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_value"
        r = await client.post("/videos", json={"prompt": "x", "size": "640x480"}, headers=auth)
        assert r.status_code == 400 and r.json()["error"]["param"] == "size"
        r = await client.post("/videos", json={"seconds": "4"}, headers=auth)
        assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"
        r = await client.post("/videos", json={"prompt": "x", "input_reference": {}}, headers=auth)
        assert r.status_code == 400 and r.json()["error"]["param"] == "input_reference"
        r = await client.post("/videos", json={"prompt": "x"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
        r = await client.post(
            "/videos",
            json={
                "prompt": "x",
                "seconds": "8",
                "size": "1280x720",
                "input_reference": {"image_url": "https://example.test/first.png"},
            },
            headers=auth,
        )
        assert r.status_code == 200
        video = r.json()
        assert video["status"] == "queued" and video["progress"] == 0 and video["seconds"] == "8"
        assert video["error"] is None and video["model"] == "sora-2"
        r = await client.get(f"/videos/{video['id']}/content", headers=auth)
        assert r.status_code == 400  # not ready yet
