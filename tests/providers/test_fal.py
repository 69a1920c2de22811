"""FalProvider against the fake fal queue on loopback."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from functools import partial

import av
import httpx
import pytest
from fakes.fal_fake import FalFake
from fakes.server import free_port, small_mp4

from providers.harness import job_maker, poll_until_done, read_all, refused_before_a_call
from providers.wiring import WIRINGS
from vidgate.gateway.providers.base import (
    PollFailed,
    ReferenceImage,
    Rejected,
    RemoteProvider,
    UnknownOutcome,
)
from vidgate.gateway.providers.fal import FalProvider, app_of, fal_message

KLING_T2V = "fal-ai/kling-video/v2.1/master/text-to-video"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 32
FIRST = ReferenceImage(role="first_frame", url="https://example.test/first.png", data=PNG, mime_type="image/png")
LAST = ReferenceImage(role="last_frame", url="https://example.test/last.png", data=PNG, mime_type="image/png")


WIRE = WIRINGS["fal"]
config = partial(WIRE.config, timeout_seconds=2.0)
make_job = job_maker(
    job_id="vid_0002",
    model="kling-v2.1-master",
    provider_model=KLING_T2V,
    prompt="a fox running through snow",
    duration=5,
    width=1920,
    height=1080,
)


@pytest.fixture
def fake() -> FalFake:
    return FalFake(polls_to_complete=3, queue_polls=1)


@pytest.fixture
async def provider(root: str) -> AsyncIterator[FalProvider]:
    p = FalProvider(config(root))
    yield p
    await p.aclose()


def submitted(fake: FalFake) -> dict:
    creates = [r for r in fake.requests if r["method"] == "POST"]
    assert len(creates) == 1
    return creates[0]


async def test_text_to_video_runs_to_completion(provider: FalProvider, fake: FalFake) -> None:
    assert isinstance(provider, RemoteProvider)
    job = make_job(negative_prompt="blur")
    accepted = await provider.submit(job)
    (request_id,) = fake.tasks
    assert accepted.native_id == f"fal-ai/kling-video|{request_id}"

    sent = submitted(fake)
    assert sent["path"] == f"/{KLING_T2V}"
    assert sent["headers"]["authorization"] == "Key fal_test"
    assert sent["json"] == {
        "prompt": "a fox running through snow",
        "duration": "5",
        "aspect_ratio": "16:9",
        "negative_prompt": "blur",
    }

    seen = await poll_until_done(provider, job, accepted.native_id)
    assert [s.status for s in seen] == ["queued", "processing", "completed"]
    # Status and result go to owner/app only: the model sub-path is dropped.
    paths = [r["path"] for r in fake.requests if r["method"] == "GET"]
    status_path = f"/fal-ai/kling-video/requests/{request_id}/status"
    assert paths == [status_path, status_path, status_path, f"/fal-ai/kling-video/requests/{request_id}"]

    (out,) = seen[-1].outputs
    assert out.mime_type == "video/mp4" and out.url.endswith(f"/files/{request_id}/output.mp4")
    data = await read_all(provider, out)
    assert data == small_mp4()
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    assert "authorization" not in fake.requests[-1]["headers"]  # the key never goes to the CDN


async def test_image_to_video_mapping(provider: FalProvider, fake: FalFake) -> None:
    job = make_job(
        provider_model="fal-ai/kling-video/v2.1/pro/text-to-video",
        width=1080,
        height=1920,
        negative_prompt="blur",
        references=(FIRST, LAST),
        provider_params={"cfg_scale": 0.5},
    )
    accepted = await provider.submit(job)
    sent = submitted(fake)
    assert sent["path"] == "/fal-ai/kling-video/v2.1/pro/image-to-video"
    body = sent["json"]
    assert body["image_url"] == FIRST.data_url() and body["tail_image_url"] == LAST.data_url()
    assert "aspect_ratio" not in body  # the image endpoint follows the image's shape
    assert body["negative_prompt"] == "blur" and body["cfg_scale"] == 0.5
    assert "seed" not in body and "generate_audio" not in body and "resolution" not in body
    assert accepted.native_id.startswith("fal-ai/kling-video|")


async def test_veo_mapping(provider: FalProvider, fake: FalFake) -> None:
    job = make_job(provider_model="fal-ai/veo3/fast", duration=8, resolution="720p", aspect_ratio="9:16")
    accepted = await provider.submit(job)
    body = submitted(fake)["json"]
    assert body["duration"] == "8s"
    assert body["generate_audio"] is False  # Veo's default is on, so "off" is sent explicitly
    assert body["resolution"] == "720p" and body["aspect_ratio"] == "9:16"
    assert accepted.native_id.startswith("fal-ai/veo3|")


VEO31 = {"provider_model": "fal-ai/veo3.1", "duration": 8, "resolution": "720p", "aspect_ratio": "16:9"}


@pytest.mark.parametrize(
    ("model", "references", "endpoint", "fields"),
    [
        ("fal-ai/veo3.1", (), "fal-ai/veo3.1", {}),
        ("fal-ai/veo3.1", (FIRST,), "fal-ai/veo3.1/image-to-video", {"image_url": FIRST}),
        (
            "fal-ai/veo3.1",
            (FIRST, LAST),
            "fal-ai/veo3.1/first-last-frame-to-video",
            {"first_frame_url": FIRST, "last_frame_url": LAST},
        ),
        ("fal-ai/veo3.1/fast", (FIRST,), "fal-ai/veo3.1/fast/image-to-video", {"image_url": FIRST}),
        (
            "fal-ai/veo3.1/fast",
            (FIRST, LAST),
            "fal-ai/veo3.1/fast/first-last-frame-to-video",
            {"first_frame_url": FIRST, "last_frame_url": LAST},
        ),
    ],
)
async def test_veo31_frames_pick_the_endpoint(
    provider: FalProvider, fake: FalFake, model: str, references: tuple, endpoint: str, fields: dict
) -> None:
    job = make_job(**{**VEO31, "provider_model": model}, seed=7, audio=True, references=references)
    accepted = await provider.submit(job)
    sent = submitted(fake)
    assert sent["path"] == f"/{endpoint}"
    body = sent["json"]
    assert {k: body[k] for k in fields} == {k: ref.data_url() for k, ref in fields.items()}
    assert "tail_image_url" not in body and ("image_url" in body) == ("image_url" in fields)
    assert (body["duration"], body["resolution"], body["aspect_ratio"]) == ("8s", "720p", "16:9")
    assert body["seed"] == 7 and body["generate_audio"] is True
    assert accepted.native_id.startswith("fal-ai/veo3.1|")
    final = (await poll_until_done(provider, job, accepted.native_id))[-1]
    assert final.status == "completed"


async def test_resolution_enums_are_fals(provider: FalProvider, fake: FalFake) -> None:
    await provider.submit(make_job(**{**VEO31, "resolution": "4K", "width": 3840, "height": 2160}))
    assert submitted(fake)["json"]["resolution"] == "4k"
    fake.requests.clear()
    await provider.submit(
        make_job(**{**VEO31, "resolution": None, "width": 1080, "height": 1920, "aspect_ratio": None})
    )
    body = submitted(fake)["json"]
    assert (body["resolution"], body["aspect_ratio"]) == ("1080p", "9:16")
    fake.requests.clear()
    wan = make_job(provider_model="fal-ai/wan-25-preview/text-to-video", resolution="480p", enhance_prompt=False)
    await provider.submit(wan)
    body = submitted(fake)["json"]
    assert body["resolution"] == "480p" and body["enable_prompt_expansion"] is False and "generate_audio" not in body


async def test_fake_refuses_what_fal_refuses(fake: FalFake, root: str) -> None:
    """fal's enums are lower case: the upper-case 4K the gateway once sent is a 422 there."""
    async with httpx.AsyncClient(base_url=root, headers={"Authorization": "Key fal_test"}) as client:
        r = await client.post("/fal-ai/veo3.1", json={"prompt": "x", "resolution": "4K"})
        assert r.status_code == 422
        assert r.json()["detail"][0]["msg"] == "unexpected value; permitted: '720p', '1080p', '4k'"
        r = await client.post("/fal-ai/veo3.1/first-last-frame-to-video", json={"prompt": "x", "image_url": "data:,"})
        assert r.status_code == 422 and {e["loc"][1] for e in r.json()["detail"]} == {
            "first_frame_url",
            "last_frame_url",
        }
        r = await client.post("/fal-ai/veo3.1", json={"prompt": "x", "resolution": "4k", "duration": "8s"})
        assert r.status_code == 200


REFERENCE = ReferenceImage(role="reference", url="https://example.test/r.png", data=PNG, mime_type="image/png")


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"seed": 1}, "takes no seed"),
        ({"audio": True}, "makes no audio"),
        ({"resolution": "720p", "width": 1280, "height": 720}, "1080p video only, not 720p"),
        ({"references": (FIRST, LAST)}, "no last frame"),
        ({"references": (LAST,)}, "only together with a first frame"),
        ({"references": (REFERENCE,)}, "not reference"),
        ({"duration": 8}, "5, 10 s video, not 8 s"),
        ({"aspect_ratio": "4:3"}, "not 4:3"),
        ({"sample_count": 2}, "one video"),
        ({"person_generation": "allow_all"}, "no person_generation"),
        ({**VEO31, "resolution": "4K", "width": 3840, "height": 2160, "duration": 6}, "only 8 s long"),
        ({**VEO31, "duration": 5}, "4, 6, 8 s video, not 5 s"),
        ({**VEO31, "enhance_prompt": True}, "no enhance_prompt"),
        (
            {"provider_model": "fal-ai/bytedance/seedance/v1/pro/text-to-video", "negative_prompt": "x"},
            "negative_prompt",
        ),
    ],
)
async def test_what_fal_cannot_take_fails_over_without_a_call(
    provider: FalProvider, fake: FalFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)


def test_app_and_message_helpers() -> None:
    assert app_of("fal-ai/kling-video/v2.1/master/text-to-video") == "fal-ai/kling-video"
    assert app_of("workflows/someone/my-flow/run") == "workflows/someone/my-flow"
    detail = {"detail": [{"loc": ["body", "prompt"], "msg": "field required", "type": "value_error.missing"}]}
    assert fal_message(detail, "x") == "prompt: field required"
    assert fal_message({"detail": "nope"}, "x") == "nope"
    assert fal_message(None, "fallback") == "fallback"


async def test_returned_urls_on_another_host_are_not_trusted(root: str) -> None:
    provider = FalProvider(config(root))
    try:
        other = "https://elsewhere.test/fal-ai/evil/requests/abc"
        assert provider._app_from(other, "fal-ai/kling-video") == "fal-ai/kling-video"
        ours = f"{root}/workflows/me/flow/requests/abc"
        assert provider._app_from(ours, "workflows/me") == "workflows/me/flow"
    finally:
        await provider.aclose()


@pytest.mark.parametrize("mode", ["status", "result", "model-5xx"])
async def test_failed_request(provider: FalProvider, fake: FalFake, mode: str) -> None:
    fake.fail_next, fake.fail_mode = True, mode
    fake.failure_message, fake.failure_type = (
        "Content flagged by the safety checker",
        "content_policy_violation",
    )
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_until_done(provider, job, accepted.native_id))[-1]
    assert final.status == "failed"
    assert final.error is not None
    assert final.error.code == "content_policy_violation"
    assert final.error.message == "Content flagged by the safety checker"


@pytest.mark.parametrize("kind", ["429", "500"])
async def test_create_faults_are_retryable(provider: FalProvider, fake: FalFake, kind: str) -> None:
    fake.faults.add("create", kind)
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert info.value.retryable and info.value.status_code == int(kind)
    assert fake.tasks == {}
    await provider.submit(make_job())
    assert len(fake.tasks) == 1


async def test_create_timeout_is_an_unknown_outcome(root: str, fake: FalFake) -> None:
    fake.faults.hang_seconds = 10.0  # far past the 0.3 s timeout, however slow the machine
    fake.faults.add("create", "timeout")
    provider = FalProvider(config(root, timeout_seconds=0.3))
    try:
        with pytest.raises(UnknownOutcome) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable and info.value.code == "upstream_timeout"
    assert not isinstance(info.value, Rejected)  # sent: the job may exist, no failover


async def test_connection_refused_is_retryable() -> None:
    provider = FalProvider(config(f"http://127.0.0.1:{free_port()}"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable


async def test_invalid_input_is_not_retryable(provider: FalProvider) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_params={"duration": "7"}))
    assert not info.value.retryable and info.value.status_code == 422
    assert info.value.message == "duration: unexpected value; permitted: '5', '10'"
    assert info.value.code == "validation_error"


async def test_wrong_key_is_not_retryable(root: str, fake: FalFake) -> None:
    provider = FalProvider(config(root, api_key="fal_wrong"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert not info.value.retryable and info.value.status_code == 401
    assert "credentials" in info.value.message
    assert fake.tasks == {}


async def test_poll_and_result_faults_are_retryable(provider: FalProvider, fake: FalFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    fake.faults.add("poll", "503")
    fake.faults.add("poll", "malformed")
    for expected_status in (503, 200):
        with pytest.raises(PollFailed) as info:
            await provider.poll(job, accepted.native_id)
        assert info.value.retryable and info.value.status_code == expected_status
    fake.faults.add("result", "502")  # from fal's edge: no x-fal-request-id, so tried again
    assert (await provider.poll(job, accepted.native_id)).status == "queued"
    assert (await provider.poll(job, accepted.native_id)).status == "processing"
    with pytest.raises(PollFailed) as info:
        await provider.poll(job, accepted.native_id)  # COMPLETED, but the result fetch fails
    assert info.value.retryable and info.value.status_code == 502
    final = await provider.poll(job, accepted.native_id)
    assert final.status == "completed" and len(final.outputs) == 1


@pytest.mark.parametrize("polls_before", [0, 1])  # 0: IN_QUEUE, 1: IN_QUEUE seen; 2nd poll would start it
async def test_cancel_queued_request(provider: FalProvider, fake: FalFake, polls_before: int) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    for _ in range(polls_before):
        assert (await provider.poll(job, accepted.native_id)).status == "queued"
    assert await provider.cancel(accepted.native_id) is True
    cancel = fake.requests[-1]
    assert cancel["method"] == "PUT" and cancel["path"].startswith("/fal-ai/kling-video/requests/")
    assert cancel["path"].endswith("/cancel")
    assert (await provider.poll(job, accepted.native_id)).status == "cancelled"


async def test_cancel_in_progress_request(provider: FalProvider, fake: FalFake) -> None:
    fake.polls_to_complete = 4
    job = make_job()
    accepted = await provider.submit(job)
    await provider.poll(job, accepted.native_id)
    assert (await provider.poll(job, accepted.native_id)).status == "processing"
    assert await provider.cancel(accepted.native_id) is True
    assert (await provider.poll(job, accepted.native_id)).status == "cancelled"


async def test_cancel_ignored_by_runner_still_completes(provider: FalProvider, fake: FalFake) -> None:
    fake.honour_cancel = False
    job = make_job()
    accepted = await provider.submit(job)
    await provider.poll(job, accepted.native_id)
    assert (await provider.poll(job, accepted.native_id)).status == "processing"
    assert await provider.cancel(accepted.native_id) is True  # only a signal once running
    assert (await provider.poll(job, accepted.native_id)).status == "completed"
    assert await provider.cancel(accepted.native_id) is False  # ALREADY_COMPLETED


async def test_cancel_unknown_request(provider: FalProvider) -> None:
    assert await provider.cancel("fal-ai/kling-video|00000000-0000-0000-0000-000000000000") is False


async def test_expired_output_url_fails_the_download(provider: FalProvider, fake: FalFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_until_done(provider, job, accepted.native_id))[-1]
    fake.expire_outputs = True
    with pytest.raises(PollFailed) as info:
        await read_all(provider, final.outputs[0])
    assert info.value.status_code == 403 and not info.value.retryable
