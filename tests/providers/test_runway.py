"""RunwayProvider against the fake Runway API on loopback."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from functools import partial

import av
import httpx
import pytest
from fakes.runway_fake import RunwayFake
from fakes.server import free_port, small_mp4

from providers.harness import FIRST, LAST, job_maker, poll_until_done, read_all
from providers.wiring import WIRINGS
from vidgate.gateway.providers.base import (
    PollFailed,
    Rejected,
    RemoteProvider,
    UnknownOutcome,
)
from vidgate.gateway.providers.runway import RunwayProvider, pick_duration, pick_ratio

WIRE = WIRINGS["runway"]
config = partial(WIRE.config, timeout_seconds=2.0)
make_job = job_maker(
    job_id="vid_0001",
    model="runway/gen4.5",
    provider_model="gen4.5",
    prompt="a paper boat on a rainy street",
    duration=5,
    width=1280,
    height=720,
)


@pytest.fixture
def fake() -> RunwayFake:
    return RunwayFake(polls_to_complete=4)


@pytest.fixture
async def provider(root: str) -> AsyncIterator[RunwayProvider]:
    p = RunwayProvider(config(root))
    yield p
    await p.aclose()


def submitted(fake: RunwayFake) -> dict:
    creates = [r for r in fake.requests if r["method"] == "POST"]
    assert len(creates) == 1
    return creates[0]


async def test_text_to_video_runs_to_completion(provider: RunwayProvider, fake: RunwayFake) -> None:
    assert isinstance(provider, RemoteProvider)
    job = make_job(seed=7)
    accepted = await provider.submit(job)
    assert accepted.native_id in fake.tasks

    sent = submitted(fake)
    assert sent["path"] == "/v1/text_to_video"
    assert sent["json"] == {
        "model": "gen4.5",
        "promptText": "a paper boat on a rainy street",
        "ratio": "1280:720",
        "duration": 5,
        "seed": 7,
    }
    assert sent["headers"]["authorization"] == "Bearer key_test"
    assert sent["headers"]["x-runway-version"] == "2024-11-06"

    seen = await poll_until_done(provider, job, accepted.native_id)
    assert [s.status for s in seen] == ["queued", "processing", "processing", "completed"]
    progress = [s.progress for s in seen[1:]]
    assert progress == [33, 67, 100]

    (out,) = seen[-1].outputs
    assert out.url.startswith(provider._client.base_url.partition("://")[0] + "://") and "/cdn/" in out.url
    data = await read_all(provider, out)
    assert data == small_mp4()
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    download = fake.requests[-1]
    assert download["path"].startswith("/cdn/")
    assert "authorization" not in download["headers"]  # the key never goes to the CDN


async def test_image_to_video_mapping(provider: RunwayProvider, fake: RunwayFake) -> None:
    job = make_job(
        provider_model="gen4_turbo",
        width=1024,
        height=1024,
        duration=7,
        seed=99,
        references=(FIRST,),
        provider_params={"contentModeration": {"publicFigureThreshold": "low"}},
    )
    await provider.submit(job)
    sent = submitted(fake)
    assert sent["path"] == "/v1/image_to_video"
    body = sent["json"]
    assert body["promptImage"] == FIRST.data_url() and body["promptImage"].startswith("data:image/png;base64,")
    assert body["ratio"] == "960:960"
    assert body["duration"] == 7 and body["seed"] == 99
    assert body["contentModeration"] == {"publicFigureThreshold": "low"}
    assert body["promptText"] == job.prompt


async def test_veo_mapping_snaps_duration_and_keeps_only_supported_extras(
    provider: RunwayProvider, fake: RunwayFake
) -> None:
    job = make_job(
        provider_model="veo3.1",
        width=1920,
        height=1080,
        duration=5,
        seed=3,
        audio=True,
        negative_prompt="blurry",
        references=(FIRST, LAST),
    )
    await provider.submit(job)
    body = submitted(fake)["json"]
    assert body["ratio"] == "1920:1080"
    assert body["duration"] == 6  # 4/6/8 only; a tie goes to the longer clip
    assert body["audio"] is True and body["negativePrompt"] == "blurry"
    assert "seed" not in body  # veo models take no seed and Runway rejects unknown fields
    assert body["promptImage"] == [
        {"uri": FIRST.data_url(), "position": "first"},
        {"uri": LAST.data_url(), "position": "last"},
    ]


def test_ratio_and_duration_pickers() -> None:
    assert pick_ratio(("1280:720", "720:1280"), 1080, 1920) == "720:1280"
    assert pick_ratio(("1280:720", "720:1280", "1080:1920", "1920:1080"), 1080, 1920) == "1080:1920"
    assert pick_ratio(("1280:720", "1104:832", "960:960"), 1024, 768) == "1104:832"
    assert pick_ratio(None, 640, 480) == "640:480"
    assert pick_duration((8,), 5) == 8
    assert pick_duration(tuple(range(2, 11)), 12) == 10
    assert pick_duration(None, 12) == 12


async def test_image_only_model_without_image_is_refused_locally(provider: RunwayProvider, fake: RunwayFake) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_model="gen4_turbo"))
    assert info.value.retryable and info.value.code == "unsupported_input"
    assert fake.requests == []


async def test_failed_task_keeps_failure_code(provider: RunwayProvider, fake: RunwayFake) -> None:
    fake.fail_next = True
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_until_done(provider, job, accepted.native_id))[-1]
    assert final.status == "failed"
    assert final.error is not None
    assert final.error.code == "SAFETY.INPUT.TEXT"
    assert final.error.message == "Your input did not pass moderation."
    assert final.outputs == ()


@pytest.mark.parametrize("kind", ["429", "500"])
async def test_create_faults_are_retryable(provider: RunwayProvider, fake: RunwayFake, kind: str) -> None:
    fake.faults.add("create", kind)
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert info.value.retryable and info.value.status_code == int(kind)
    assert fake.tasks == {}
    assert (await provider.submit(make_job())).native_id in fake.tasks  # the next try goes through


async def test_create_timeout_is_an_unknown_outcome(root: str, fake: RunwayFake) -> None:
    fake.faults.hang_seconds = 10.0  # far past the 0.3 s timeout, however slow the machine
    fake.faults.add("create", "timeout")
    provider = RunwayProvider(config(root, timeout_seconds=0.3))
    try:
        with pytest.raises(UnknownOutcome) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable and info.value.code == "upstream_timeout"
    assert not isinstance(info.value, Rejected)  # sent: the job may exist, no failover


async def test_connection_refused_is_retryable() -> None:
    provider = RunwayProvider(config(f"http://127.0.0.1:{free_port()}"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable


@pytest.mark.parametrize(
    ("params", "needle"),
    [({"ratio": "999:1"}, "ratio: Invalid enum value"), ({"watermark": True}, "Unrecognized key(s)")],
)
async def test_bad_input_is_not_retryable(
    provider: RunwayProvider, fake: RunwayFake, params: dict, needle: str
) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_params=params))
    assert not info.value.retryable
    assert info.value.status_code == 400
    assert needle in info.value.message


async def test_wrong_key_is_not_retryable(root: str) -> None:
    provider = RunwayProvider(config(root, api_key="key_wrong"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert not info.value.retryable and info.value.status_code == 401
    assert "Invalid API key" in info.value.message


async def test_fake_requires_version_header(root: str) -> None:
    async with httpx.AsyncClient(base_url=root) as client:
        response = await client.post(
            "/v1/text_to_video",
            headers={"Authorization": "Bearer key_test"},
            json={"model": "gen4.5", "promptText": "x", "ratio": "1280:720", "duration": 5},
        )
    assert response.status_code == 400
    assert "X-Runway-Version" in response.json()["error"]


async def test_poll_faults_are_retryable_and_polling_recovers(provider: RunwayProvider, fake: RunwayFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    fake.faults.add("poll", "503")
    fake.faults.add("poll", "malformed")
    for expected_status in (503, 200):
        with pytest.raises(PollFailed) as info:
            await provider.poll(job, accepted.native_id)
        assert info.value.retryable and info.value.status_code == expected_status
    seen = await poll_until_done(provider, job, accepted.native_id)
    assert seen[-1].status == "completed"


async def test_throttled_maps_to_queued(root: str, fake: RunwayFake, provider: RunwayProvider) -> None:
    fake.throttle = True
    job = make_job()
    accepted = await provider.submit(job)
    assert (await provider.poll(job, accepted.native_id)).status == "queued"
    assert fake.tasks[accepted.native_id].status == "THROTTLED"


async def test_cancel_running_task(provider: RunwayProvider, fake: RunwayFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    await provider.poll(job, accepted.native_id)
    assert (await provider.poll(job, accepted.native_id)).status == "processing"
    assert await provider.cancel(accepted.native_id) is True
    assert fake.requests[-1]["method"] == "DELETE"
    assert fake.requests[-1]["path"] == f"/v1/tasks/{accepted.native_id}"
    assert (await provider.poll(job, accepted.native_id)).status == "cancelled"
    assert await provider.cancel("00000000-0000-0000-0000-000000000000") is False


async def test_expired_output_url_fails_the_download(provider: RunwayProvider, fake: RunwayFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_until_done(provider, job, accepted.native_id))[-1]
    fake.expire_outputs = True
    with pytest.raises(PollFailed) as info:
        await read_all(provider, final.outputs[0])
    assert info.value.status_code == 403 and not info.value.retryable
