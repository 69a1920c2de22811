"""AlibabaProvider (Wan on DashScope) against the fake DashScope API on loopback."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from functools import partial

import av
import httpx
import pytest
from fakes.alibaba_fake import AlibabaFake
from fakes.server import free_port, small_mp4

from providers.harness import FIRST, LAST, PNG, job_maker, poll_until_done, read_all, refused_before_a_call
from providers.wiring import WIRINGS
from vidgate.gateway.providers.alibaba import AlibabaProvider, pick_size
from vidgate.gateway.providers.base import (
    PollFailed,
    ProviderError,
    ReferenceImage,
    Rejected,
    RemoteProvider,
    UnknownOutcome,
)

SYNTHESIS = "/api/v1/services/aigc/video-generation/video-synthesis"


WIRE = WIRINGS["alibaba"]
config = partial(WIRE.config, timeout_seconds=2.0)
make_job = job_maker(
    job_id="vid_0001",
    model="alibaba/wan-2.5",
    provider_model="wan2.5-t2v-preview",
    prompt="a lighthouse at dusk, slow push-in",
    duration=5,
    width=1280,
    height=720,
    resolution="720p",
    aspect_ratio="16:9",
)


@pytest.fixture
def fake() -> AlibabaFake:
    return AlibabaFake(polls_to_complete=3)


@pytest.fixture
async def provider(root: str) -> AsyncIterator[AlibabaProvider]:
    p = AlibabaProvider(config(root))
    yield p
    await p.aclose()


def created(fake: AlibabaFake) -> dict:
    posts = [r for r in fake.requests if r["path"] == SYNTHESIS]
    assert len(posts) == 1
    return posts[0]


async def test_text_to_video_runs_to_completion(provider: AlibabaProvider, fake: AlibabaFake) -> None:
    assert isinstance(provider, RemoteProvider) and provider.name == "alibaba" and provider.cancellable
    job = make_job(seed=12345, negative_prompt="blurry", enhance_prompt=True)
    accepted = await provider.submit(job)
    assert accepted.native_id in fake.tasks

    sent = created(fake)
    assert sent["json"] == {
        "model": "wan2.5-t2v-preview",
        "input": {"prompt": "a lighthouse at dusk, slow push-in", "negative_prompt": "blurry"},
        "parameters": {"size": "1280*720", "duration": 5, "seed": 12345, "prompt_extend": True, "audio": False},
    }
    assert sent["headers"]["authorization"] == "Bearer sk-ds-test"
    assert sent["headers"]["x-dashscope-async"] == "enable"

    seen = await poll_until_done(provider, job, accepted.native_id)
    assert [s.status for s in seen] == ["queued", "processing", "completed"]
    polls = [r for r in fake.requests if r["path"].startswith("/api/v1/tasks/")]
    assert all("x-dashscope-async" not in r["headers"] for r in polls)
    (out,) = seen[-1].outputs
    assert seen[-1].seconds == 1.0 and "/cdn/" in out.url
    data = await read_all(provider, out)
    assert data == small_mp4()
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    download = fake.requests[-1]
    assert download["path"].startswith("/cdn/") and "authorization" not in download["headers"]


async def test_first_frame_goes_to_the_image_model(provider: AlibabaProvider, fake: AlibabaFake) -> None:
    job = make_job(
        width=1920,
        height=1080,
        resolution="1080p",
        duration=10,
        audio=True,
        references=(FIRST,),
        provider_params={"watermark": False, "audio_url": "https://example.test/a.mp3", "duration": 5},
    )
    await provider.submit(job)
    body = created(fake)["json"]
    assert body["model"] == "wan2.5-i2v-preview"
    assert body["input"] == {
        "prompt": "a lighthouse at dusk, slow push-in",
        "img_url": FIRST.data_url(),
        "audio_url": "https://example.test/a.mp3",
    }
    assert body["parameters"] == {"watermark": False, "resolution": "1080P", "duration": 10, "audio": True}


async def test_first_and_last_frames_go_to_the_keyframe_model(provider: AlibabaProvider, fake: AlibabaFake) -> None:
    job = make_job(
        provider_model="wan2.2-t2v-plus", references=(FIRST, LAST), width=1920, height=1080, resolution="1080p"
    )
    await provider.submit(job)
    body = created(fake)["json"]
    assert body["model"] == "wan2.2-kf2v-flash"
    assert body["input"]["first_frame_url"] == FIRST.data_url() and body["input"]["last_frame_url"] == LAST.data_url()
    assert body["parameters"] == {"resolution": "1080P", "duration": 5}  # no audio field for a silent model


def test_sizes_snap_to_the_tier_native_size() -> None:
    assert pick_size("480P", 854, 480) == "832*480"
    assert pick_size("720P", 720, 720) == "960*960"
    assert pick_size("720P", 960, 720) == "1088*832"
    assert pick_size("1080P", 1080, 1920) == "1080*1920"


async def test_square_720p_is_sent_as_960(provider: AlibabaProvider, fake: AlibabaFake) -> None:
    await provider.submit(make_job(width=720, height=720, aspect_ratio="1:1"))
    assert created(fake)["json"]["parameters"]["size"] == "960*960"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"references": (FIRST, LAST)}, "no last_frame"),
        ({"references": (LAST,)}, "first_frame image to go with"),
        ({"provider_model": "wan2.2-t2v-plus", "audio": True}, "cannot generate audio"),
        ({"provider_model": "wan2.2-t2v-plus"}, "not 720P"),
        ({"duration": 7}, "5, 10 s"),
        ({"seed": 2**31}, "seeds from 0"),
        ({"sample_count": 2}, "one video"),
        ({"provider_model": "wan2.5-i2v-preview"}, "needs a first_frame"),
        ({"references": (ReferenceImage("reference", "https://x.test/r.png", PNG, "image/png"),)}, "reference"),
    ],
)
async def test_inputs_wan_cannot_take_are_refused_before_any_call(
    provider: AlibabaProvider, fake: AlibabaFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)


async def test_failed_and_unknown_tasks(provider: AlibabaProvider, fake: AlibabaFake) -> None:
    fake.fail_next = True
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_until_done(provider, job, accepted.native_id))[-1]
    assert final.status == "failed" and final.error is not None
    assert final.error.code == "moderation_blocked"
    assert final.error.message == "Output data may contain inappropriate content."

    gone = await provider.poll(job, "0385dc79-0000-0000-0000-000000000000")
    assert gone.status == "failed" and gone.error is not None and gone.error.code == "task_unknown"


@pytest.mark.parametrize("kind", ["429", "500", "503"])
async def test_create_faults_are_retryable(provider: AlibabaProvider, fake: AlibabaFake, kind: str) -> None:
    fake.faults.add("create", kind)
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert info.value.retryable and info.value.status_code == int(kind)
    assert fake.tasks == {}
    assert (await provider.submit(make_job())).native_id in fake.tasks


@pytest.mark.parametrize(
    ("code", "retryable"),
    [("Throttling.RateQuota", True), ("InternalError", True), ("Arrearage", False)],
)
async def test_http_200_without_output_is_an_error(
    provider: AlibabaProvider, fake: AlibabaFake, code: str, retryable: bool
) -> None:
    fake.inband("create", code, f"{code} happened")
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert info.value.retryable is retryable and info.value.message == f"{code} happened"
    assert fake.tasks == {}


async def test_create_timeout_is_an_unknown_outcome(root: str, fake: AlibabaFake) -> None:
    fake.faults.hang_seconds = 10.0  # far past the 0.3 s timeout, however slow the machine
    fake.faults.add("create", "timeout")
    provider = AlibabaProvider(config(root, timeout_seconds=0.3))
    try:
        with pytest.raises(UnknownOutcome) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable and info.value.code == "upstream_timeout"
    assert not isinstance(info.value, Rejected)  # sent: the job may exist, no failover


async def test_connection_refused_is_retryable() -> None:
    provider = AlibabaProvider(config(f"http://127.0.0.1:{free_port()}"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable


async def test_bad_input_is_not_retryable(provider: AlibabaProvider, fake: AlibabaFake) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_params={"shot_type": "multi", "fps": 30}))
    assert not info.value.retryable and info.value.status_code == 400
    assert "Unrecognized field(s): fps" in info.value.message


async def test_wrong_key_is_not_retryable(root: str) -> None:
    provider = AlibabaProvider(config(root, api_key="sk-wrong"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert not info.value.retryable and info.value.status_code == 401
    assert info.value.message == "Invalid API-key provided."


async def test_fake_requires_the_async_header(root: str) -> None:
    async with httpx.AsyncClient(base_url=root) as client:
        response = await client.post(
            SYNTHESIS,
            headers={"Authorization": "Bearer sk-ds-test"},
            json={"model": "wan2.5-t2v-preview", "input": {"prompt": "x"}, "parameters": {}},
        )
    assert response.status_code == 403
    assert "does not support synchronous calls" in response.json()["message"]


async def test_poll_faults_are_retryable_and_polling_recovers(provider: AlibabaProvider, fake: AlibabaFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    fake.faults.add("poll", "503")
    fake.faults.add("poll", "malformed")
    fake.inband("poll", "Throttling", "Requests throttling triggered.")
    for expected_status in (503, 200, None):
        with pytest.raises(PollFailed) as info:
            await provider.poll(job, accepted.native_id)
        assert info.value.retryable
        assert expected_status is None or info.value.status_code == expected_status
    assert (await poll_until_done(provider, job, accepted.native_id))[-1].status == "completed"
    assert len([r for r in fake.requests if r["path"] == SYNTHESIS]) == 1


async def test_cancel_pending_only(provider: AlibabaProvider, fake: AlibabaFake) -> None:
    job = make_job()
    pending = await provider.submit(job)
    assert await provider.cancel(pending.native_id) is True
    assert fake.requests[-1]["method"] == "POST"
    assert fake.requests[-1]["path"] == f"/api/v1/tasks/{pending.native_id}/cancel"
    assert (await provider.poll(job, pending.native_id)).status == "cancelled"

    running = await provider.submit(job)
    await provider.poll(job, running.native_id)
    assert (await provider.poll(job, running.native_id)).status == "processing"
    assert await provider.cancel(running.native_id) is False  # only PENDING tasks can be cancelled
    assert (await provider.poll(job, running.native_id)).status == "completed"
    assert await provider.cancel("0385dc79-0000-0000-0000-000000000000") is False

    fake.faults.add("cancel", "502")
    with pytest.raises(ProviderError) as info:
        await provider.cancel(running.native_id)
    assert info.value.retryable


async def test_expired_output_url_fails_the_download(provider: AlibabaProvider, fake: AlibabaFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_until_done(provider, job, accepted.native_id))[-1]
    fake.expire_outputs = True
    with pytest.raises(PollFailed) as info:
        await read_all(provider, final.outputs[0])
    assert info.value.status_code == 403 and not info.value.retryable
