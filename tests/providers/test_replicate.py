"""ReplicateProvider against the fake Replicate API on loopback."""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator
from functools import partial

import av
import pytest
from fakes.replicate_fake import FAILURE_ERROR, ReplicateFake, parse_duration
from fakes.server import free_port, small_mp4

from providers.harness import FIRST, LAST, PNG, job_maker, read_all, refused_before_a_call
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import WIRINGS
from vidgate.gateway.providers.base import (
    PollFailed,
    ReferenceImage,
    Rejected,
    RemoteProvider,
    UnknownOutcome,
)
from vidgate.gateway.providers.replicate import ReplicateProvider, cancel_after

WIRE = WIRINGS["replicate"]
config = partial(WIRE.config, timeout_seconds=5)
make_job = job_maker(
    job_id="vid_01JTESTREPLICATE",
    model="luma/ray-2",
    provider_model="luma/ray-2-720p",
    prompt="a fox running through snow",
    duration=5,
    width=1280,
    height=720,
    resolution="720p",
    aspect_ratio="16:9",
)


@pytest.fixture
def fake() -> ReplicateFake:
    return ReplicateFake(api_token="r8_test", polls_to_complete=3)


@pytest.fixture
async def provider(root: str) -> AsyncIterator[ReplicateProvider]:
    p = ReplicateProvider(config(root))
    yield p
    await p.aclose()


def created(fake: ReplicateFake) -> dict:  # type: ignore[type-arg]
    (rec,) = [r for r in fake.requests if r["method"] == "POST" and not r["path"].endswith("/cancel")]
    return rec


async def test_prediction_runs_to_completion(provider: ReplicateProvider, fake: ReplicateFake) -> None:
    assert isinstance(provider, RemoteProvider)
    assert provider.name == "replicate" and provider.cancellable is True
    deadline = int(time.time() * 1000) + 3_725_000
    job = make_job(deadline_at=deadline)
    accepted = await provider.submit(job)
    assert accepted.native_id in fake.predictions

    rec = created(fake)
    assert rec["path"] == "/v1/models/luma/ray-2-720p/predictions"
    assert rec["headers"]["authorization"] == "Bearer r8_test"
    assert "prefer" not in rec["headers"]  # never hold the connection open
    assert rec["headers"]["cancel-after"] in ("1h2m5s", "1h2m4s")
    assert fake.predictions[accepted.native_id].cancel_after in (3725, 3724)
    assert rec["json"] == {"input": {"prompt": "a fox running through snow", "duration": 5, "aspect_ratio": "16:9"}}

    seen = await poll_to_end(provider, job, accepted.native_id)
    assert [(s.status, s.progress) for s in seen] == [("queued", None), ("processing", 50), ("completed", 100)]
    (out,) = seen[-1].outputs
    assert "/delivery/" in out.url
    data = await read_all(provider, out)
    assert data == small_mp4()
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    download = fake.requests[-1]
    assert download["path"].startswith("/delivery/") and "authorization" not in download["headers"]


def test_cancel_after_durations() -> None:
    assert cancel_after(None) is None
    assert cancel_after(1_000_000 + 3_725_000, now_ms=1_000_000) == "1h2m5s"
    assert cancel_after(1_000_000 + 90_500, now_ms=1_000_000) == "1m31s"
    assert cancel_after(1_000_000 + 7_200_000, now_ms=1_000_000) == "2h"
    assert cancel_after(0, now_ms=1_000_000) == "1s"  # already past: the smallest deadline
    for text in ("1h2m5s", "1m31s", "2h", "1s"):
        assert parse_duration(text) is not None


async def test_luma_resolution_picks_the_sibling_model(provider: ReplicateProvider, fake: ReplicateFake) -> None:
    await provider.submit(make_job(resolution="540p", width=960, height=540, duration=9, references=(FIRST, LAST)))
    rec = created(fake)
    assert rec["path"] == "/v1/models/luma/ray-2-540p/predictions"
    assert rec["json"]["input"]["duration"] == 9
    assert rec["json"]["input"]["start_image"] == FIRST.data_url()
    assert rec["json"]["input"]["end_image"] == LAST.data_url()
    fake.requests.clear()
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(resolution="1080p", width=1920, height=1080))
    assert info.value.retryable and info.value.code == "unsupported_parameter" and "not 1080p" in info.value.message
    assert fake.requests == []


async def test_veo_mapping(provider: ReplicateProvider, fake: ReplicateFake) -> None:
    job = make_job(
        model="google/veo-3.0",
        provider_model="google/veo-3",
        duration=8,
        resolution="1080p",
        aspect_ratio="9:16",
        width=1080,
        height=1920,
        seed=11,
        negative_prompt="blurry",
        references=(FIRST,),
        provider_params={"duration": 4, "some_new_input": "x"},
    )
    await provider.submit(job)
    rec = created(fake)
    assert rec["path"] == "/v1/models/google/veo-3/predictions"
    assert rec["json"]["input"] == {
        "prompt": "a fox running through snow",
        "duration": 8,  # mapped wins over provider_params
        "resolution": "1080p",
        "aspect_ratio": "9:16",
        "seed": 11,
        "negative_prompt": "blurry",
        "generate_audio": False,  # Veo on Replicate defaults to audio on: off is sent explicitly
        "image": FIRST.data_url(),
        "some_new_input": "x",
    }


async def test_veo31_reference_images(provider: ReplicateProvider, fake: ReplicateFake) -> None:
    refs = tuple(ReferenceImage("reference", f"https://example.test/{i}.png", PNG, "image/png") for i in range(2))
    await provider.submit(make_job(provider_model="google/veo-3.1", duration=8, audio=True, references=refs))
    data = created(fake)["json"]["input"]
    assert data["reference_images"] == [r.data_url() for r in refs]
    assert data["generate_audio"] is True


async def test_kling_modes_and_frames(provider: ReplicateProvider, fake: ReplicateFake) -> None:
    job = make_job(
        model="kling/kling-2.1",
        provider_model="kwaivgi/kling-v2.1",
        duration=10,
        resolution="1080p",
        width=1920,
        height=1080,
        negative_prompt="blur",
        references=(FIRST, LAST),
    )
    await provider.submit(job)
    assert created(fake)["json"]["input"] == {
        "prompt": "a fox running through snow",
        "duration": 10,
        "mode": "pro",
        "negative_prompt": "blur",
        "start_image": FIRST.data_url(),
        "end_image": LAST.data_url(),
    }
    fake.requests.clear()
    base = {"model": "kling/kling-2.1", "provider_model": "kwaivgi/kling-v2.1"}
    for overrides, needle in (
        ({"references": (FIRST, LAST)}, "only at 1080p"),  # 720p = standard mode
        ({}, "needs a first_frame"),
        ({"references": (FIRST,), "duration": 8}, "not 8 s"),
    ):
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job(**base, **overrides))
        assert info.value.retryable and info.value.code == "unsupported_parameter" and needle in info.value.message
    assert fake.requests == []


async def test_versioned_model(provider: ReplicateProvider, fake: ReplicateFake) -> None:
    job = make_job(provider_model=f"kwaivgi/kling-v2.1:{'a' * 64}", references=(FIRST,))
    accepted = await provider.submit(job)
    rec = created(fake)
    assert rec["path"] == "/v1/predictions"
    assert rec["json"]["version"] == "a" * 64 and rec["json"]["input"]["mode"] == "standard"
    assert fake.predictions[accepted.native_id].model == "kwaivgi/kling-v2.1"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"seed": 3}, "no seed"),
        ({"negative_prompt": "x"}, "no negative prompt"),
        ({"audio": True}, "no audio"),
        ({"sample_count": 2}, "one video"),
        ({"duration": 6}, "not 6 s"),
        ({"provider_model": "google/veo-3", "aspect_ratio": "1:1", "duration": 8}, "not 1:1"),
        ({"references": (ReferenceImage("mask", "https://x.test/m.png", PNG, "image/png"),)}, "no mask"),
        ({"provider_model": "google/veo-3", "duration": 8, "references": (FIRST, LAST)}, "no last frame"),
    ],
)
async def test_unsupported_inputs_fail_over_without_a_call(
    provider: ReplicateProvider, fake: ReplicateFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)


def test_unknown_model_gets_the_generic_mapping(provider: ReplicateProvider) -> None:
    path, body = provider.build_request(
        make_job(provider_model="acme/new-video", seed=1, references=(FIRST,), provider_params={"fps": 30})
    )
    assert path == "/models/acme/new-video/predictions"
    assert body == {
        "input": {
            "prompt": "a fox running through snow",
            "duration": 5,
            "resolution": "720p",
            "aspect_ratio": "16:9",
            "seed": 1,
            "image": FIRST.data_url(),
            "fps": 30,
        }
    }


async def test_list_output(provider: ReplicateProvider, fake: ReplicateFake) -> None:
    fake.output_as_list = True
    job = make_job()
    accepted = await provider.submit(job)
    (out,) = (await poll_to_end(provider, job, accepted.native_id))[-1].outputs
    assert await read_all(provider, out) == small_mp4()


async def test_failed_prediction_keeps_the_error(provider: ReplicateProvider, fake: ReplicateFake) -> None:
    fake.fail_next = True
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_to_end(provider, job, accepted.native_id))[-1]
    assert final.status == "failed" and final.outputs == ()
    assert final.error is not None and final.error.message == FAILURE_ERROR


@pytest.mark.parametrize("kind", ["429", "500", "503"])
async def test_create_faults_are_retryable(provider: ReplicateProvider, fake: ReplicateFake, kind: str) -> None:
    fake.faults.add("create", kind)
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert info.value.retryable and info.value.status_code == int(kind)
    assert fake.predictions == {}
    assert (await provider.submit(make_job())).native_id in fake.predictions


async def test_create_timeout_is_an_unknown_outcome(fake: ReplicateFake, root: str) -> None:
    fake.faults.hang_seconds = 10.0  # far past the 0.3 s timeout, however slow the machine
    fake.faults.add("create", "timeout")
    provider = ReplicateProvider(config(root, timeout_seconds=0.3))
    try:
        with pytest.raises(UnknownOutcome) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable and info.value.code == "upstream_timeout"
    assert not isinstance(info.value, Rejected)  # sent: the job may exist, no failover


async def test_connection_refused_is_retryable() -> None:
    provider = ReplicateProvider(config(f"http://127.0.0.1:{free_port()}", timeout_seconds=1))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable and "unreachable" in info.value.message


async def test_invalid_input_is_not_retryable(provider: ReplicateProvider, fake: ReplicateFake) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_params={"loop": "yes"}))
    assert not info.value.retryable and info.value.status_code == 422
    assert "input.loop: Invalid type" in info.value.message
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_model="acme/no-such-model"))
    assert not info.value.retryable and info.value.status_code == 404
    assert fake.predictions == {}


async def test_wrong_token_is_not_retryable(fake: ReplicateFake, root: str) -> None:
    provider = ReplicateProvider(config(root, api_key="r8_wrong"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert not info.value.retryable and info.value.status_code == 401
    assert info.value.message == "You did not pass a valid authentication token"


async def test_poll_faults_are_retryable_and_polling_recovers(provider: ReplicateProvider, fake: ReplicateFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    fake.faults.add("poll", "503")
    fake.faults.add("poll", "malformed")
    fake.faults.add("poll", "429")
    for status in (503, 200, 429):
        with pytest.raises(PollFailed) as info:
            await provider.poll(job, accepted.native_id)
        assert info.value.retryable and info.value.status_code == status
    assert (await poll_to_end(provider, job, accepted.native_id))[-1].status == "completed"
    assert len(fake.predictions) == 1


async def test_cancel(provider: ReplicateProvider, fake: ReplicateFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    await provider.poll(job, accepted.native_id)
    assert (await provider.poll(job, accepted.native_id)).status == "processing"
    assert await provider.cancel(accepted.native_id) is True
    rec = fake.requests[-1]
    assert rec["method"] == "POST" and rec["path"] == f"/v1/predictions/{accepted.native_id}/cancel"
    assert rec["headers"]["authorization"] == "Bearer r8_test"
    assert (await provider.poll(job, accepted.native_id)).status == "cancelled"
    assert await provider.cancel("nosuchprediction") is False

    done = await provider.submit(make_job())
    await poll_to_end(provider, job, done.native_id)
    assert await provider.cancel(done.native_id) is False  # finished predictions stay finished
    fake.faults.add("cancel", "503")
    with pytest.raises(PollFailed):  # a transient failure is raised so the worker can log it
        await provider.cancel(done.native_id)


async def test_expired_output_url_fails_the_download(provider: ReplicateProvider, fake: ReplicateFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_to_end(provider, job, accepted.native_id))[-1]
    fake.expire_outputs = True
    with pytest.raises(PollFailed) as info:
        await read_all(provider, final.outputs[0])
    assert info.value.status_code == 404 and not info.value.retryable
