"""The Gemini API (Veo) adapter against its fake on loopback: mapping, lifecycle, bytes, failures."""

from __future__ import annotations

import base64
import io
import time
from collections.abc import AsyncIterator
from functools import partial

import av
import httpx
import pytest
from fakes.google_fake import GoogleFake
from fakes.server import free_port, small_mp4

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
from vidgate.gateway.providers.google import GoogleProvider

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 24
JPEG = b"\xff\xd8\xff\xe0" + b"\x02" * 24
MODEL = "veo-3.1-generate-preview"


WIRE = WIRINGS["google"]
config = partial(WIRE.config, timeout_seconds=5)
make_job = job_maker(
    job_id="vid_01JTESTGOOGLE",
    model="google/veo-3.1",
    provider_model=MODEL,
    prompt="a lighthouse at dusk, slow push-in",
    duration=8,
    width=1280,
    height=720,
    audio=True,
)


def ref(role: str, data: bytes = PNG, mime: str = "image/png") -> ReferenceImage:
    return ReferenceImage(role=role, url=f"https://example.test/{role}", data=data, mime_type=mime)


@pytest.fixture
def fake() -> GoogleFake:
    return GoogleFake(api_key="g-test", polls_to_complete=3)


@pytest.fixture
async def provider(root: str) -> AsyncIterator[GoogleProvider]:
    p = GoogleProvider(config(root))
    yield p
    await p.aclose()


def create_body(fake: GoogleFake) -> dict:  # type: ignore[type-arg]
    (rec,) = [r for r in fake.requests if r.method == "POST"]
    return rec.body


async def test_create_poll_download(provider: GoogleProvider, fake: GoogleFake) -> None:
    assert isinstance(provider, RemoteProvider)
    assert provider.name == "google" and provider.cancellable is False
    job = make_job(sample_count=2)
    accepted = await provider.submit(job)
    assert accepted.native_id.startswith(f"models/{MODEL}/operations/")

    seen = await poll_to_end(provider, job, accepted.native_id)
    assert [u.status for u in seen] == ["processing", "processing", "completed"]
    assert all(u.progress is None for u in seen)
    polls = [r for r in fake.requests if r.method == "GET" and "/operations/" in r.path]
    assert [r.path for r in polls] == [f"/v1beta/{accepted.native_id}"] * 3
    outputs = seen[-1].outputs
    assert [o.index for o in outputs] == [0, 1]
    assert len({o.url for o in outputs}) == 2
    for out in outputs:
        assert ":download?alt=media" in out.url and "/v1beta/files/" in out.url
        assert out.headers == {"x-goog-api-key": "g-test"}
        data = await read_all(provider, out)
        assert data == small_mp4()
        with av.open(io.BytesIO(data)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 24
    downloads = [r for r in fake.requests if ":download" in r.path]
    assert len(downloads) == 2 and all(r.headers["x-goog-api-key"] == "g-test" for r in downloads)
    assert len(fake.storage_requests) == 2  # the 302 was followed
    assert await provider.cancel(accepted.native_id) is False


async def test_request_mapping(provider: GoogleProvider, fake: GoogleFake) -> None:
    job = make_job(
        width=720,
        height=1280,
        negative_prompt="blurry",
        enhance_prompt=False,
        references=(ref("first_frame"), ref("last_frame", JPEG, "image/jpeg")),
        provider_params={"personGeneration": "allow_adult", "durationSeconds": 4},
    )
    await provider.submit(job)
    (rec,) = [r for r in fake.requests if r.method == "POST"]
    assert rec.path == f"/v1beta/models/{MODEL}:predictLongRunning"
    assert rec.headers["x-goog-api-key"] == "g-test"
    (instance,) = rec.body["instances"]
    assert instance["prompt"] == "a lighthouse at dusk, slow push-in"
    png_b64 = base64.b64encode(PNG).decode()
    assert instance["image"] == {"bytesBase64Encoded": png_b64, "mimeType": "image/png"}
    assert base64.b64decode(instance["lastFrame"]["bytesBase64Encoded"]) == JPEG
    assert instance["lastFrame"]["mimeType"] == "image/jpeg"
    assert "referenceImages" not in instance
    assert rec.body["parameters"] == {
        "aspectRatio": "9:16",
        "resolution": "720p",
        "durationSeconds": 8,  # mapped wins over provider_params
        "sampleCount": 1,
        "negativePrompt": "blurry",
        "enhancePrompt": False,
        "personGeneration": "allow_adult",  # unmapped provider_params pass through
    }
    # Veo 3 on the Gemini API always has audio; generateAudio is Vertex-only and never sent.
    assert "generateAudio" not in rec.body["parameters"]


async def test_reference_images_and_explicit_resolution(provider: GoogleProvider, fake: GoogleFake) -> None:
    job = make_job(
        resolution="4K",
        aspect_ratio="16:9",
        person_generation="allow_all",
        references=(ref("reference"), ref("reference", JPEG, "image/jpeg")),
    )
    await provider.submit(job)
    body = create_body(fake)
    refs = body["instances"][0]["referenceImages"]
    assert [r["referenceType"] for r in refs] == ["asset", "asset"]
    assert [base64.b64decode(r["image"]["bytesBase64Encoded"]) for r in refs] == [PNG, JPEG]
    assert "image" not in body["instances"][0]
    params = body["parameters"]
    assert params["resolution"] == "4k" and params["aspectRatio"] == "16:9"
    assert params["personGeneration"] == "allow_all"
    assert "seed" not in params and "negativePrompt" not in params and "enhancePrompt" not in params


async def test_failed_operation(provider: GoogleProvider, fake: GoogleFake) -> None:
    fake.fail_next = "failed"
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_to_end(provider, job, accepted.native_id))[-1]
    assert final.status == "failed" and final.outputs == ()
    assert final.error is not None
    assert final.error.code == "INTERNAL"
    assert "internal error" in final.error.message


async def test_moderation_filtered(provider: GoogleProvider, fake: GoogleFake) -> None:
    fake.fail_next = "moderation"
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_to_end(provider, job, accepted.native_id))[-1]
    assert final.status == "failed" and final.outputs == ()
    assert final.error is not None
    assert final.error.code == "moderation_blocked"
    assert "Support code: 58061214" in final.error.message


@pytest.mark.parametrize("kind", ["429", "500"])
async def test_create_fault_is_retryable(provider: GoogleProvider, fake: GoogleFake, kind: str) -> None:
    fake.faults.add("create", kind)
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert info.value.retryable is True
    assert info.value.status_code == int(kind)
    assert fake.jobs == {}


async def test_create_timeout_is_an_unknown_outcome(fake: GoogleFake, root: str) -> None:
    fake.faults.hang_seconds = 10.0  # far past the 0.3 s timeout, however slow the machine
    fake.faults.add("create", "timeout")
    provider = GoogleProvider(config(root, timeout_seconds=0.3))
    started = time.monotonic()
    try:
        with pytest.raises(UnknownOutcome) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert time.monotonic() - started < 8  # gave up at its timeout, not when the answer came
    assert info.value.retryable is True and info.value.code == "upstream_timeout"
    assert not isinstance(info.value, Rejected)  # sent: the job may exist, no failover


async def test_connection_refused_is_retryable() -> None:
    provider = GoogleProvider(config(f"http://127.0.0.1:{free_port()}", timeout_seconds=1))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable is True and "unreachable" in info.value.message


async def test_bad_input_is_not_retryable(provider: GoogleProvider, fake: GoogleFake) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(duration=5))
    assert info.value.retryable is False and info.value.status_code == 400
    assert "durationSeconds" in info.value.message
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_model="veo-9"))
    assert info.value.retryable is False and info.value.status_code == 404
    assert "models/veo-9 is not found" in info.value.message
    assert fake.jobs == {}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"seed": 42}, "takes no seed; google-vertex takes it"),
        ({"resize_mode": "crop"}, "takes no resize_mode"),
        ({"compression_quality": 80}, "takes no compression_quality"),
        ({"provider_params": {"generateAudio": True, "fps": 24}}, "takes no fps, generateAudio"),
        ({"audio": False}, "always makes audio"),
        ({"resolution": "1080p", "width": 1920, "height": 1080, "duration": 6}, "1080p video only 8 s long"),
        ({"resolution": "4K", "width": 3840, "height": 2160, "duration": 4}, "4k video only 8 s long"),
        ({"duration": 6, "references": (ref("reference"),)}, "reference images only for 8 s"),
        ({"provider_model": "veo-2.0-generate-001", "audio": True}, "makes no audio"),
        ({"provider_model": "veo-2.0-generate-001", "audio": False, "resolution": "1080p"}, "720p only"),
    ],
)
async def test_what_the_gemini_api_cannot_take_fails_over_without_a_call(
    provider: GoogleProvider, fake: GoogleFake, overrides: dict, needle: str
) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(**overrides))
    assert info.value.retryable is True and info.value.code == "unsupported_parameter"
    assert needle in info.value.message
    assert fake.requests == []


async def test_veo2_takes_no_resolution(provider: GoogleProvider, fake: GoogleFake) -> None:
    await provider.submit(make_job(provider_model="veo-2.0-generate-001", audio=False, duration=5))
    params = create_body(fake)["parameters"]
    assert "resolution" not in params and params["durationSeconds"] == 5


async def test_unsupported_role_fails_over_without_a_call(provider: GoogleProvider, fake: GoogleFake) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(references=(ref("mask"),)))
    assert info.value.retryable is True and info.value.code == "unsupported_parameter"
    assert fake.requests == []


async def test_wrong_api_key_is_not_retryable(fake: GoogleFake, root: str) -> None:
    provider = GoogleProvider(config(root, api_key="g-wrong"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable is False
    assert info.value.status_code == 400  # Google answers a bad key with 400 INVALID_ARGUMENT
    assert "API key not valid" in info.value.message
    assert fake.jobs == {}


async def test_poll_faults_keep_the_job(provider: GoogleProvider, fake: GoogleFake) -> None:
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
    seen = await poll_to_end(provider, job, accepted.native_id)
    assert [u.status for u in seen] == ["processing", "processing", "completed"]
    assert len(seen[-1].outputs) == 1


async def test_unknown_operation_is_not_retryable(provider: GoogleProvider) -> None:
    with pytest.raises(PollFailed) as info:
        await provider.poll(make_job(), f"models/{MODEL}/operations/doesnotexist")
    assert info.value.retryable is False and info.value.status_code == 404


async def test_expired_file_is_a_download_error(provider: GoogleProvider, fake: GoogleFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    done = (await poll_to_end(provider, job, accepted.native_id))[-1]
    fake.expired = True
    with pytest.raises(PollFailed) as info:
        await read_all(provider, done.outputs[0])
    assert info.value.status_code == 403 and info.value.retryable is False
    assert fake.storage_requests == []


async def test_download_fault_then_success(provider: GoogleProvider, fake: GoogleFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    done = (await poll_to_end(provider, job, accepted.native_id))[-1]
    fake.faults.add("download", "503")
    with pytest.raises(PollFailed) as info:
        await read_all(provider, done.outputs[0])
    assert info.value.retryable is True
    assert await read_all(provider, done.outputs[0]) == small_mp4()


async def test_fake_validates_like_the_upstream(fake: GoogleFake, root: str) -> None:
    """The fake's own checks: auth shapes, instances, image shape, combinations, parameter types."""
    key = {"x-goog-api-key": "g-test"}
    path = f"/models/{MODEL}:predictLongRunning"
    img = {"bytesBase64Encoded": base64.b64encode(PNG).decode(), "mimeType": "image/png"}
    async with httpx.AsyncClient(base_url=root + WIRE.suffix) as client:
        r = await client.post(path, json={"instances": [{"prompt": "x"}]})
        assert r.status_code == 403 and r.json()["error"]["status"] == "PERMISSION_DENIED"
        bad = [
            {"instances": {"prompt": "x"}},
            {"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": 7}},
            {"instances": [{"prompt": "x"}], "parameters": {"aspectRatio": "1:1"}},
            {"instances": [{"prompt": "x"}], "parameters": {"resolution": "1080p", "durationSeconds": 4}},
            {"instances": [{"prompt": "x"}], "parameters": {"sampleCount": "2"}},
            {"instances": [{"prompt": "x", "image": {"gcsUri": "gs://b/o.png", "mimeType": "image/png"}}]},
            {"instances": [{"prompt": "x", "lastFrame": img}]},
            {
                "instances": [
                    {"prompt": "x", "image": img, "referenceImages": [{"image": img, "referenceType": "asset"}]}
                ]
            },
            {"instances": [{"prompt": "x"}], "config": {}},
            {"instances": [{"prompt": "x"}], "parameters": {"seed": 1}},  # the SDK refuses it on this API
        ]
        for body in bad:
            r = await client.post(path, json=body, headers=key)
            assert r.status_code == 400, body
            assert r.json()["error"]["status"] == "INVALID_ARGUMENT", body
        r = await client.post(
            path, json={"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": "6"}}, headers=key
        )
        assert r.status_code == 200 and r.json()["name"].startswith(f"models/{MODEL}/operations/")
        r = await client.get(f"/{r.json()['name']}", params={"key": "g-test"})
        assert r.status_code == 200 and "done" not in r.json()
