"""KlingProvider against the fake Kling API on loopback (JWT auth checked by the fake)."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import AsyncIterator
from functools import partial

import av
import httpx
import pytest
from fakes.kling_fake import FAILURE_MESSAGE, KlingFake
from fakes.server import free_port, small_mp4

from providers.harness import job_maker, read_all, refused_before_a_call
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import WIRINGS
from vidgate.gateway.providers.base import (
    PollFailed,
    ReferenceImage,
    Rejected,
    RemoteProvider,
    UnknownOutcome,
)
from vidgate.gateway.providers.kling import KlingProvider, make_jwt

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x02" * 24
FIRST = ReferenceImage(role="first_frame", url="https://example.test/first.png", data=PNG, mime_type="image/png")
LAST = ReferenceImage(role="last_frame", url="https://example.test/last.jpg", data=JPEG, mime_type="image/jpeg")


WIRE = WIRINGS["kling"]
config = partial(WIRE.config, timeout_seconds=5)
make_job = job_maker(
    model="kling/kling-2.5-turbo",
    provider_model="kling-v2-5-turbo",
    prompt="a fox running through snow",
    duration=5,
    width=1920,
    height=1080,
    resolution="1080p",
    aspect_ratio="16:9",
)


@pytest.fixture
def fake() -> KlingFake:
    return KlingFake(access_key="ak-test", secret_key="sk-test", polls_to_complete=3)


@pytest.fixture
async def provider(root: str) -> AsyncIterator[KlingProvider]:
    p = KlingProvider(config(root))
    yield p
    await p.aclose()


def created(fake: KlingFake) -> dict:  # type: ignore[type-arg]
    (rec,) = [r for r in fake.requests if r["method"] == "POST"]
    return rec


def decode(part: str) -> dict:  # type: ignore[type-arg]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_jwt_shape() -> None:
    token = make_jwt("ak-test", "sk-test", now=1_767_000_000)
    head, payload, _ = token.split(".")
    assert decode(head) == {"alg": "HS256", "typ": "JWT"}
    assert decode(payload) == {"iss": "ak-test", "exp": 1_767_001_800, "nbf": 1_766_999_995}
    assert "=" not in token


async def test_text_to_video_runs_to_completion(provider: KlingProvider, fake: KlingFake) -> None:
    assert isinstance(provider, RemoteProvider)
    assert provider.name == "kling" and provider.cancellable is False
    job = make_job(negative_prompt="blurry", provider_params={"cfg_scale": 0.5, "duration": "10"})
    accepted = await provider.submit(job)
    endpoint, task_id = accepted.native_id.split("/")
    assert endpoint == "text2video" and task_id in fake.tasks

    rec = created(fake)
    assert rec["path"] == "/v1/videos/text2video"
    assert rec["json"] == {
        "model_name": "kling-v2-5-turbo",
        "prompt": "a fox running through snow",
        "negative_prompt": "blurry",
        "mode": "pro",
        "aspect_ratio": "16:9",
        "duration": "5",  # a string, and mapped wins over provider_params
        "external_task_id": job.job_id,
        "cfg_scale": 0.5,  # unmapped provider_params pass through
    }
    (payload,) = fake.jwt_payloads
    assert payload["iss"] == "ak-test" and payload["exp"] - payload["nbf"] == 1805
    assert abs(payload["exp"] - (time.time() + 1800)) < 5

    seen = await poll_to_end(provider, job, accepted.native_id)
    assert [s.status for s in seen] == ["queued", "processing", "completed"]
    assert seen[-1].seconds == 1.0
    polls = [r for r in fake.requests if r["method"] == "GET" and r["path"].startswith("/v1/")]
    assert [r["path"] for r in polls] == [f"/v1/videos/text2video/{task_id}"] * 3
    (out,) = seen[-1].outputs
    assert "/kcdn/" in out.url
    data = await read_all(provider, out)
    assert data == small_mp4()
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    download = fake.requests[-1]
    assert download["path"].startswith("/kcdn/") and "authorization" not in download["headers"]
    assert await provider.cancel(accepted.native_id) is False


async def test_image_to_video_mapping(provider: KlingProvider, fake: KlingFake) -> None:
    job = make_job(provider_model="kling-v2-1", duration=10, references=(FIRST, LAST))
    accepted = await provider.submit(job)
    assert accepted.native_id.startswith("image2video/")
    rec = created(fake)
    assert rec["path"] == "/v1/videos/image2video"
    body = rec["json"]
    assert body["mode"] == "pro" and body["duration"] == "10"  # a last frame needs pro mode (1080p)
    assert base64.b64decode(body["image"]) == PNG and base64.b64decode(body["image_tail"]) == JPEG
    assert "aspect_ratio" not in body and "sound" not in body
    final = (await poll_to_end(provider, job, accepted.native_id))[-1]
    assert final.status == "completed"
    fake.requests.clear()
    await provider.submit(
        make_job(provider_model="kling-v2-1", resolution="720p", width=1280, height=720, references=(FIRST,))
    )
    assert created(fake)["json"]["mode"] == "std"  # a first frame alone is made at 720p too


@pytest.mark.parametrize(
    ("overrides", "mode"),
    [
        ({"provider_model": "kling-v2-1-master"}, "pro"),
        ({"provider_model": "kling-v2-1-master", "references": (FIRST,)}, "pro"),
        ({"provider_model": "kling-v2-5-turbo", "references": (FIRST, LAST)}, "pro"),
        ({"provider_model": "kling-v2-6", "resolution": "720p", "width": 1280, "height": 720}, "std"),
    ],
)
async def test_the_mode_is_the_one_the_combination_needs(
    provider: KlingProvider, fake: KlingFake, overrides: dict, mode: str
) -> None:
    await provider.submit(make_job(**overrides))
    assert created(fake)["json"]["mode"] == mode


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"provider_model": "kling-v2-1-master", "resolution": "720p"}, "at 1080p (pro) only, not 720p"),
        (
            {"provider_model": "kling-v2-1", "resolution": "720p", "references": (FIRST, LAST)},
            "with a last frame at 1080p (pro) only, not 720p",
        ),
        ({"provider_model": "kling-v2-1"}, "makes no video from text"),
        ({"provider_model": "kling-v2-5-turbo", "resolution": "720p"}, "from text at 1080p (pro) only"),
        ({"provider_model": "kling-v2-1-master", "references": (FIRST, LAST)}, "no video with a last frame"),
        ({"provider_model": "kling-v2-6", "audio": True, "references": (FIRST, LAST)}, "no audio with a last frame"),
        ({"enhance_prompt": True}, "kling takes no enhance_prompt"),
    ],
)
async def test_combinations_no_mode_allows_fail_over_without_a_call(
    provider: KlingProvider, fake: KlingFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)


async def test_fake_refuses_what_the_capability_map_lacks(fake: KlingFake, root: str) -> None:
    token = make_jwt("ak-test", "sk-test")
    image = base64.b64encode(PNG).decode()
    async with httpx.AsyncClient(base_url=root, headers={"Authorization": f"Bearer {token}"}) as client:
        for endpoint, body in (
            ("text2video", {"model_name": "kling-v2-1-master", "prompt": "x", "mode": "std"}),
            (
                "image2video",
                {"model_name": "kling-v2-1", "prompt": "x", "mode": "std", "image": image, "image_tail": image},
            ),
        ):
            r = await client.post(f"/v1/videos/{endpoint}", json=body)
            assert r.status_code == 400 and r.json()["code"] == 1201, r.text
    assert fake.tasks == {}


async def test_sound_models(provider: KlingProvider, fake: KlingFake) -> None:
    await provider.submit(make_job(provider_model="kling-v2-6", audio=True))
    assert created(fake)["json"]["sound"] == "on"
    fake.requests.clear()
    await provider.submit(make_job(provider_model="kling-v2-6", resolution="720p", width=1280, height=720))
    assert created(fake)["json"]["sound"] == "off"
    fake.requests.clear()
    for overrides, needle in (
        ({"provider_model": "kling-v2-6", "audio": True, "resolution": "720p"}, "only in pro mode"),
        ({"audio": True}, "makes no audio"),
    ):
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job(**overrides))
        assert info.value.retryable and info.value.code == "unsupported_parameter" and needle in info.value.message
    assert fake.requests == []


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"seed": 1}, "no seed"),
        ({"sample_count": 2}, "one video"),
        ({"duration": 8}, "not 8 s"),
        ({"resolution": "4K", "width": 3840, "height": 2160}, "not 4K"),
        ({"aspect_ratio": "4:3"}, "not 4:3"),
        ({"references": (LAST,)}, "together with a first frame"),
        ({"references": (ReferenceImage("reference", "https://x.test/r.png", PNG, "image/png"),)}, "not reference"),
    ],
)
async def test_unsupported_inputs_fail_over_without_a_call(
    provider: KlingProvider, fake: KlingFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)


async def test_failed_task_keeps_the_message(provider: KlingProvider, fake: KlingFake) -> None:
    fake.fail_next = True
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_to_end(provider, job, accepted.native_id))[-1]
    assert final.status == "failed" and final.outputs == ()
    assert final.error is not None and final.error.message == FAILURE_MESSAGE


@pytest.mark.parametrize("kind", ["429", "500", "503"])
async def test_create_faults_are_retryable(provider: KlingProvider, fake: KlingFake, kind: str) -> None:
    fake.faults.add("create", kind)
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert info.value.retryable and info.value.status_code == int(kind)
    assert fake.tasks == {}
    await provider.submit(make_job())
    assert len(fake.tasks) == 1


async def test_create_timeout_is_an_unknown_outcome(fake: KlingFake, root: str) -> None:
    fake.faults.hang_seconds = 10.0  # far past the 0.3 s timeout, however slow the machine
    fake.faults.add("create", "timeout")
    provider = KlingProvider(config(root, timeout_seconds=0.3))
    try:
        with pytest.raises(UnknownOutcome) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable and info.value.code == "upstream_timeout"
    assert not isinstance(info.value, Rejected)  # sent: the job may exist, no failover


async def test_connection_refused_is_retryable() -> None:
    provider = KlingProvider(config(f"http://127.0.0.1:{free_port()}", timeout_seconds=1))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable and "unreachable" in info.value.message


async def test_bad_input_is_not_retryable(provider: KlingProvider, fake: KlingFake) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_params={"cfg_scale": 3}))
    assert not info.value.retryable and info.value.status_code == 400
    assert info.value.message == "cfg_scale must be between 0 and 1"
    job = make_job()
    await provider.submit(job)
    with pytest.raises(Rejected) as info:  # Kling keeps external_task_id unique per account
        await provider.submit(job)
    assert not info.value.retryable and "already exists" in info.value.message


@pytest.mark.parametrize(
    ("access", "secret", "needle"),
    [("ak-wrong", "sk-test", "Authentication failed"), ("ak-test", "sk-wrong", "Authentication failed")],
)
async def test_wrong_credentials_are_not_retryable(
    fake: KlingFake, root: str, access: str, secret: str, needle: str
) -> None:
    provider = KlingProvider(config(root, api_key=access, extra={"secret_key": secret}))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert not info.value.retryable and info.value.status_code == 401 and info.value.message == needle
    assert fake.tasks == {}


async def test_missing_secret_fails_over_without_a_call(fake: KlingFake, root: str) -> None:
    provider = KlingProvider(config(root, extra={"secret_key": None}))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable and info.value.code == "provider_misconfigured"
    assert fake.requests == []


async def test_fake_checks_jwt_times(fake: KlingFake, root: str) -> None:
    async with httpx.AsyncClient(base_url=root) as client:
        for token, code in (
            (make_jwt("ak-test", "sk-test", now=time.time() - 3600), 1004),  # expired
            (make_jwt("ak-test", "sk-test", now=time.time() + 600), 1003),  # not yet valid
            ("not-a-jwt", 1002),
        ):
            r = await client.get("/v1/videos/text2video/1", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401 and r.json()["code"] == code
        r = await client.get("/v1/videos/text2video/1")
        assert r.status_code == 401 and r.json()["code"] == 1001


async def test_poll_faults_are_retryable_and_polling_recovers(provider: KlingProvider, fake: KlingFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    fake.faults.add("poll", "503")
    fake.faults.add("poll", "malformed")
    for status in (503, 200):
        with pytest.raises(PollFailed) as info:
            await provider.poll(job, accepted.native_id)
        assert info.value.retryable and info.value.status_code == status
    assert (await poll_to_end(provider, job, accepted.native_id))[-1].status == "completed"
    assert len(fake.tasks) == 1


async def test_unknown_task_is_not_retryable(provider: KlingProvider) -> None:
    with pytest.raises(PollFailed) as info:
        await provider.poll(make_job(), "text2video/123")
    assert not info.value.retryable and info.value.status_code == 404
    with pytest.raises(PollFailed):
        await provider.poll(make_job(), "lipsync/123")


async def test_expired_output_url_fails_the_download(provider: KlingProvider, fake: KlingFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_to_end(provider, job, accepted.native_id))[-1]
    fake.expire_outputs = True
    with pytest.raises(PollFailed) as info:
        await read_all(provider, final.outputs[0])
    assert info.value.status_code == 403 and not info.value.retryable
