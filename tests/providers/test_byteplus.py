"""BytePlusProvider (Seedance on ModelArk) against the fake Ark API on loopback."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from functools import partial

import av
import pytest
from fakes.byteplus_fake import BytePlusFake
from fakes.server import free_port, small_mp4

from providers.harness import FIRST, LAST, PNG, job_maker, poll_until_done, read_all, refused_before_a_call
from providers.wiring import WIRINGS
from vidgate.gateway.providers.base import (
    PollFailed,
    ProviderError,
    ReferenceImage,
    Rejected,
    RemoteProvider,
    UnknownOutcome,
)
from vidgate.gateway.providers.byteplus import BytePlusProvider

REF = ReferenceImage(role="reference", url="https://example.test/ref.png", data=PNG, mime_type="image/png")
TASKS = "/api/v3/contents/generations/tasks"


WIRE = WIRINGS["byteplus"]
config = partial(WIRE.config, timeout_seconds=2.0)
make_job = job_maker(
    job_id="vid_0001",
    model="bytedance/seedance-1.0-pro",
    provider_model="seedance-1-0-pro-250528",
    prompt="a paper boat drifting on a quiet lake",
    duration=5,
    width=1280,
    height=720,
    resolution="720p",
    aspect_ratio="16:9",
)


@pytest.fixture
def fake() -> BytePlusFake:
    return BytePlusFake(polls_to_complete=3)


@pytest.fixture
async def provider(root: str) -> AsyncIterator[BytePlusProvider]:
    p = BytePlusProvider(config(root))
    yield p
    await p.aclose()


def created(fake: BytePlusFake) -> dict:
    posts = [r for r in fake.requests if r["method"] == "POST"]
    assert len(posts) == 1
    return posts[0]


async def test_seedance_1_0_uses_text_flags_and_runs_to_completion(
    provider: BytePlusProvider, fake: BytePlusFake
) -> None:
    assert isinstance(provider, RemoteProvider) and provider.name == "byteplus" and provider.cancellable
    job = make_job(seed=7)
    accepted = await provider.submit(job)
    task = fake.tasks[accepted.native_id]

    sent = created(fake)
    assert sent["path"] == TASKS
    assert sent["json"] == {
        "model": "seedance-1-0-pro-250528",
        "content": [
            {
                "type": "text",
                "text": "a paper boat drifting on a quiet lake --resolution 720p --ratio 16:9 --duration 5 --seed 7",
            }
        ],
    }
    assert sent["headers"]["authorization"] == "Bearer ark-test"
    assert task.settings == {
        "prompt": "a paper boat drifting on a quiet lake",
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 5,
        "seed": 7,
    }

    seen = await poll_until_done(provider, job, accepted.native_id)
    assert [s.status for s in seen] == ["queued", "processing", "completed"]
    (out,) = seen[-1].outputs
    assert seen[-1].seconds == 1.0 and "/cdn/" in out.url
    data = await read_all(provider, out)
    assert data == small_mp4()
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    download = fake.requests[-1]
    assert download["path"].startswith("/cdn/") and "authorization" not in download["headers"]


async def test_newer_models_use_fields_and_image_roles(provider: BytePlusProvider, fake: BytePlusFake) -> None:
    job = make_job(
        provider_model="seedance-1-5-pro-251215",
        width=1080,
        height=1920,
        resolution="1080p",
        aspect_ratio="9:16",
        duration=8,
        audio=True,
        references=(FIRST, LAST),
        provider_params={"camera_fixed": True, "duration": 12, "generate_audio": False},
    )
    accepted = await provider.submit(job)
    body = created(fake)["json"]
    assert body["resolution"] == "1080p" and body["ratio"] == "9:16" and body["duration"] == 8
    assert body["generate_audio"] is True and body["camera_fixed"] is True  # priced fields are ours
    assert body["content"] == [
        {"type": "text", "text": "a paper boat drifting on a quiet lake"},
        {"type": "image_url", "image_url": {"url": FIRST.data_url()}, "role": "first_frame"},
        {"type": "image_url", "image_url": {"url": LAST.data_url()}, "role": "last_frame"},
    ]
    assert fake.tasks[accepted.native_id].settings["duration"] == 8


async def test_param_style_override_and_flags_typed_into_the_prompt(root: str, fake: BytePlusFake) -> None:
    provider = BytePlusProvider(config(root, extra={"param_style": "fields"}))
    try:
        job = make_job(prompt="a boat --dur 12 --rs 1080p at dawn --camerafixed true", duration=5)
        accepted = await provider.submit(job)
    finally:
        await provider.aclose()
    body = created(fake)["json"]
    assert body["content"] == [{"type": "text", "text": "a boat at dawn"}]
    assert body["duration"] == 5 and body["resolution"] == "720p"
    settings = fake.tasks[accepted.native_id].settings
    assert settings["duration"] == 5 and settings["resolution"] == "720p" and "camera_fixed" not in settings


async def test_flag_mode_passes_known_fields_as_flags(provider: BytePlusProvider, fake: BytePlusFake) -> None:
    job = make_job(
        aspect_ratio=None, width=1000, height=1000, resolution="720p", provider_params={"camera_fixed": False}
    )
    accepted = await provider.submit(job)
    text = created(fake)["json"]["content"][0]["text"]
    assert text.endswith("--ratio 1:1 --duration 5 --camerafixed false")
    assert fake.tasks[accepted.native_id].settings["camera_fixed"] is False


async def test_lite_text_model_switches_to_its_image_twin(provider: BytePlusProvider, fake: BytePlusFake) -> None:
    await provider.submit(make_job(provider_model="seedance-1-0-lite-t2v-250428", references=(REF,)))
    body = created(fake)["json"]
    assert body["model"] == "seedance-1-0-lite-i2v-250428"
    assert body["content"][1]["role"] == "reference_image"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"negative_prompt": "blurry"}, "negative prompt"),
        ({"audio": True}, "cannot generate audio"),
        ({"sample_count": 2}, "one video"),
        ({"enhance_prompt": True}, "enhance_prompt"),
        ({"resolution": "4K", "width": 3840, "height": 2160}, "not 4k"),
        ({"references": (ReferenceImage("mask", "https://x.test/m.png", PNG, "image/png"),)}, "mask"),
        ({"provider_model": "seedance-1-0-lite-i2v-250428"}, "needs an input image"),
    ],
)
async def test_inputs_seedance_cannot_take_are_refused_before_any_call(
    provider: BytePlusProvider, fake: BytePlusFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)


async def test_failed_and_expired_tasks(provider: BytePlusProvider, fake: BytePlusFake) -> None:
    fake.fail_next = True
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_until_done(provider, job, accepted.native_id))[-1]
    assert final.status == "failed" and final.error is not None
    assert final.error.code == "moderation_blocked"
    assert final.error.message.startswith("The request failed because the output video may contain sensitive")

    accepted = await provider.submit(job)
    fake.tasks[accepted.native_id].status = "expired"
    final = await provider.poll(job, accepted.native_id)
    assert final.status == "failed" and final.error is not None and final.error.code == "expired"


@pytest.mark.parametrize("kind", ["429", "500", "502"])
async def test_create_faults_are_retryable(provider: BytePlusProvider, fake: BytePlusFake, kind: str) -> None:
    fake.faults.add("create", kind)
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert info.value.retryable and info.value.status_code == int(kind)
    assert fake.tasks == {}
    assert (await provider.submit(make_job())).native_id in fake.tasks


async def test_create_timeout_is_an_unknown_outcome(root: str, fake: BytePlusFake) -> None:
    fake.faults.hang_seconds = 10.0  # far past the 0.3 s timeout, however slow the machine
    fake.faults.add("create", "timeout")
    provider = BytePlusProvider(config(root, timeout_seconds=0.3))
    try:
        with pytest.raises(UnknownOutcome) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable and info.value.code == "upstream_timeout"
    assert not isinstance(info.value, Rejected)  # sent: the job may exist, no failover


async def test_connection_refused_is_retryable() -> None:
    provider = BytePlusProvider(config(f"http://127.0.0.1:{free_port()}"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable


@pytest.mark.parametrize(
    ("overrides", "status", "needle"),
    [
        ({"provider_params": {"bogus": 1}}, 400, "The parameter `bogus`"),
        ({"duration": 30}, 400, "between 2 and 12"),
        ({"provider_model": "seedance-9-9-250101"}, 404, "does not exist"),
    ],
)
async def test_bad_input_is_not_retryable(
    provider: BytePlusProvider, fake: BytePlusFake, overrides: dict, status: int, needle: str
) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(**overrides))
    assert not info.value.retryable and info.value.status_code == status
    assert needle in info.value.message and "Request id:" in info.value.message
    assert info.value.request_id  # Ark's x-request-id


async def test_wrong_key_is_not_retryable(root: str) -> None:
    provider = BytePlusProvider(config(root, api_key="ark-wrong"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert not info.value.retryable and info.value.status_code == 401
    assert "API key" in info.value.message


async def test_poll_faults_are_retryable_and_polling_recovers(provider: BytePlusProvider, fake: BytePlusFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    fake.faults.add("poll", "503")
    fake.faults.add("poll", "malformed")
    fake.faults.add("poll", "429")
    for expected_status in (503, 200, 429):
        with pytest.raises(PollFailed) as info:
            await provider.poll(job, accepted.native_id)
        assert info.value.retryable and info.value.status_code == expected_status
    assert (await poll_until_done(provider, job, accepted.native_id))[-1].status == "completed"
    assert len([r for r in fake.requests if r["method"] == "POST"]) == 1


async def test_cancel_queued_only(provider: BytePlusProvider, fake: BytePlusFake) -> None:
    job = make_job()
    queued = await provider.submit(job)
    assert await provider.cancel(queued.native_id) is True
    assert fake.requests[-1]["method"] == "DELETE" and fake.requests[-1]["path"] == f"{TASKS}/{queued.native_id}"
    assert (await provider.poll(job, queued.native_id)).status == "cancelled"

    running = await provider.submit(job)
    await provider.poll(job, running.native_id)
    assert (await provider.poll(job, running.native_id)).status == "processing"
    assert await provider.cancel(running.native_id) is False  # Ark refuses to cancel a running task
    assert (await provider.poll(job, running.native_id)).status == "completed"
    assert await provider.cancel("cgt-00000000000000-nope") is False

    fake.faults.add("cancel", "503")
    with pytest.raises(ProviderError) as info:
        await provider.cancel(running.native_id)
    assert info.value.retryable and info.value.status_code == 503


async def test_expired_output_url_fails_the_download(provider: BytePlusProvider, fake: BytePlusFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_until_done(provider, job, accepted.native_id))[-1]
    fake.expire_outputs = True
    with pytest.raises(PollFailed) as info:
        await read_all(provider, final.outputs[0])
    assert info.value.status_code == 403 and not info.value.retryable
