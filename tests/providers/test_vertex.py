"""The Vertex AI (Veo) adapter against its fake on loopback: mapping, lifecycle, bytes, failures.

Service-account credentials are in ``test_vertex_credentials``.
"""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator

import av
import httpx
import pytest
from fakes.server import free_port, small_mp4
from fakes.vertex_fake import FAILURE_MESSAGE, VertexFake

from providers.harness import poll_until_done as poll_to_end
from providers.harness import read_all
from providers.vertex_support import MODEL_PATH, PNG, config, create_request, make_job, ref, vertex_fake
from vidgate.gateway.providers.base import PollFailed, ProviderConfig, Rejected, RemoteProvider, UnknownOutcome
from vidgate.gateway.providers.google_vertex import VertexProvider, default_base_url, storage_download_url


@pytest.fixture
def fake() -> VertexFake:
    return vertex_fake()


@pytest.fixture
async def provider(root: str) -> AsyncIterator[VertexProvider]:
    p = VertexProvider(config(root))
    yield p
    await p.aclose()


async def test_create_poll_inline_bytes(provider: VertexProvider, fake: VertexFake) -> None:
    assert isinstance(provider, RemoteProvider)
    assert provider.name == "google-vertex" and provider.cancellable is False
    job = make_job()
    accepted = await provider.submit(job)
    assert accepted.native_id.startswith(f"{MODEL_PATH}/operations/")

    seen = await poll_to_end(provider, job, accepted.native_id)
    assert [u.status for u in seen] == ["processing", "processing", "completed"]
    polls = [r for r in fake.requests if r.path.endswith(":fetchPredictOperation")]
    assert len(polls) == 3
    assert all(r.method == "POST" and r.path == f"/v1/{MODEL_PATH}:fetchPredictOperation" for r in polls)
    assert all(r.body == {"operationName": accepted.native_id} for r in polls)
    assert all(r.headers["authorization"] == "Bearer ya29.test" for r in polls)

    (out,) = seen[-1].outputs
    assert out.data is not None and out.url == "" and out.mime_type == "video/mp4"
    data = await read_all(provider, out)
    assert data == small_mp4()
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    assert await provider.cancel(accepted.native_id) is False


async def test_request_mapping(provider: VertexProvider, fake: VertexFake) -> None:
    job = make_job(
        width=720,
        height=1280,
        seed=42,
        negative_prompt="blurry",
        enhance_prompt=False,
        audio=True,
        sample_count=2,
        person_generation="allow_adult",
        resize_mode="crop",
        references=(ref("first_frame"),),
        provider_params={"fps": 24, "durationSeconds": 4, "generateAudio": False, "sampleCount": 1},
    )
    await provider.submit(job)
    rec = create_request(fake)
    assert rec.path == f"/v1/{MODEL_PATH}:predictLongRunning"
    assert rec.headers["authorization"] == "Bearer ya29.test"
    (instance,) = rec.body["instances"]
    assert instance == {
        "prompt": "a lighthouse at dusk, slow push-in",
        "image": {"bytesBase64Encoded": base64.b64encode(PNG).decode(), "mimeType": "image/png"},
    }
    assert rec.body["parameters"] == {
        "aspectRatio": "9:16",
        "resolution": "720p",
        "durationSeconds": 8,  # mapped fields win over provider_params
        "sampleCount": 2,
        "generateAudio": True,
        "negativePrompt": "blurry",
        "enhancePrompt": False,
        "personGeneration": "allow_adult",
        "seed": 42,
        "resizeMode": "crop",
        "fps": 24,  # unmapped provider_params pass through
    }
    assert set(rec.body) == {"instances", "parameters"}


async def test_sample_count_gives_one_output_each(provider: VertexProvider, fake: VertexFake) -> None:
    job = make_job(sample_count=2, audio=False)
    accepted = await provider.submit(job)
    assert create_request(fake).body["parameters"]["generateAudio"] is False
    outputs = (await poll_to_end(provider, job, accepted.native_id))[-1].outputs
    assert [o.index for o in outputs] == [0, 1]
    assert all(o.data == small_mp4() for o in outputs)


async def test_veo2_takes_no_audio_parameter(provider: VertexProvider, fake: VertexFake) -> None:
    job = make_job(
        provider_model="veo-2.0-generate-001", duration=5, references=(ref("first_frame"), ref("last_frame"))
    )
    await provider.submit(job)
    params = create_request(fake).body["parameters"]
    assert "generateAudio" not in params and "resolution" not in params and params["durationSeconds"] == 5
    assert "lastFrame" in create_request(fake).body["instances"][0]
    fake.requests.clear()
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_model="veo-2.0-generate-001", duration=5, audio=True))
    assert info.value.retryable and info.value.code == "unsupported_parameter"
    assert fake.requests == []


async def test_storage_uri_outputs_are_fetched_from_storage(fake: VertexFake, root: str) -> None:
    provider = VertexProvider(config(root, extra={"storage_uri": "gs://vidgate-out/veo/"}))
    try:
        job = make_job()
        accepted = await provider.submit(job)
        params = create_request(fake).body["parameters"]
        assert params["storageUri"] == "gs://vidgate-out/veo/vid_01JTESTVERTEX/"
        (out,) = (await poll_to_end(provider, job, accepted.native_id))[-1].outputs
        assert out.data is None
        assert out.url.startswith(f"{root}/storage/v1/b/vidgate-out/o/veo%2Fvid_01JTESTVERTEX%2F")
        assert out.url.endswith("sample_0.mp4?alt=media")
        assert out.headers == {}  # the token is added when the download starts
        assert await read_all(provider, out) == small_mp4()
        (download,) = [r for r in fake.requests if r.path.startswith("/storage/")]
        assert download.headers["authorization"] == "Bearer ya29.test"
        assert download.body == {"alt": "media"}

        fake.expired = True  # the object was deleted (bucket lifecycle): 404, not retryable
        with pytest.raises(PollFailed) as info:
            await read_all(provider, out)
        assert info.value.status_code == 404 and not info.value.retryable
    finally:
        await provider.aclose()


async def test_provider_params_storage_uri(provider: VertexProvider, fake: VertexFake, root: str) -> None:
    job = make_job(provider_params={"storageUri": "gs://caller-bucket/x/"})
    accepted = await provider.submit(job)
    (out,) = (await poll_to_end(provider, job, accepted.native_id))[-1].outputs
    assert out.url.startswith(f"{root}/storage/v1/b/caller-bucket/o/x%2F")
    assert await read_all(provider, out) == small_mp4()


def test_url_helpers() -> None:
    assert default_base_url("us-central1") == "https://us-central1-aiplatform.googleapis.com/v1"
    assert default_base_url("global") == "https://aiplatform.googleapis.com/v1"
    assert (
        storage_download_url("gs://b/dir/a b.mp4")
        == "https://storage.googleapis.com/storage/v1/b/b/o/dir%2Fa%20b.mp4?alt=media"
    )
    with pytest.raises(PollFailed):
        storage_download_url("https://example.test/x.mp4")


async def test_failed_operation(provider: VertexProvider, fake: VertexFake) -> None:
    fake.fail_next = "failed"
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_to_end(provider, job, accepted.native_id))[-1]
    assert final.status == "failed" and final.outputs == ()
    assert final.error is not None
    assert final.error.code == "INTERNAL" and final.error.message == FAILURE_MESSAGE


async def test_moderation_filtered(provider: VertexProvider, fake: VertexFake) -> None:
    fake.fail_next = "moderation"
    job = make_job()
    accepted = await provider.submit(job)
    final = (await poll_to_end(provider, job, accepted.native_id))[-1]
    assert final.status == "failed" and final.error is not None
    assert final.error.code == "moderation_blocked" and "Support codes: 29310472" in final.error.message


@pytest.mark.parametrize("kind", ["429", "500", "503"])
async def test_create_fault_is_retryable(provider: VertexProvider, fake: VertexFake, kind: str) -> None:
    fake.faults.add("create", kind)
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert info.value.retryable is True and info.value.status_code == int(kind)
    assert fake.operations == {}
    assert (await provider.submit(make_job())).native_id in fake.operations


async def test_create_timeout_is_an_unknown_outcome(fake: VertexFake, root: str) -> None:
    fake.faults.hang_seconds = 10.0  # far past the 0.3 s timeout, however slow the machine
    fake.faults.add("create", "timeout")
    provider = VertexProvider(config(root, timeout_seconds=0.3))
    try:
        with pytest.raises(UnknownOutcome) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable is True and info.value.code == "upstream_timeout"
    assert not isinstance(info.value, Rejected)  # sent: the job may exist, no failover


async def test_connection_refused_is_retryable() -> None:
    provider = VertexProvider(config(f"http://127.0.0.1:{free_port()}", timeout_seconds=1))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable is True and "unreachable" in info.value.message


async def test_bad_input_is_not_retryable(provider: VertexProvider, fake: VertexFake) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_params={"fps": 30}))
    assert info.value.retryable is False and info.value.status_code == 400
    assert "parameters.fps" in info.value.message
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_model="veo-9"))
    assert info.value.retryable is False and info.value.status_code == 404
    assert "Publisher Model" in info.value.message
    assert fake.operations == {}


async def test_wrong_token_and_wrong_project_are_not_retryable(fake: VertexFake, root: str) -> None:
    for cfg, status, needle in (
        (config(root, api_key="ya29.wrong"), 401, "invalid authentication credentials"),
        (config(root, extra={"project": "someone-else"}), 403, "aiplatform.endpoints.predict"),
    ):
        provider = VertexProvider(cfg)
        try:
            with pytest.raises(Rejected) as info:
                await provider.submit(make_job())
        finally:
            await provider.aclose()
        assert info.value.retryable is False and info.value.status_code == status
        assert needle in info.value.message
    assert fake.operations == {}


async def test_missing_project_fails_over_without_a_call(fake: VertexFake, root: str) -> None:
    provider = VertexProvider(
        ProviderConfig(name="google-vertex", api_key="ya29.test", base_url=f"{root}/v1", extra={})
    )
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable and info.value.code == "provider_misconfigured"
    assert fake.requests == []


async def test_unsupported_role_fails_over_without_a_call(provider: VertexProvider, fake: VertexFake) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(references=(ref("mask"),)))
    assert info.value.retryable is True and info.value.code == "unsupported_parameter"
    for overrides in (
        {"resize_mode": "stretch"},
        {"compression_quality": 80},  # Vertex's is an OPTIMIZED/LOSSLESS enum, not a number
        {"resolution": "1080p", "width": 1920, "height": 1080, "duration": 4},  # 1080p needs 8 s
        {"provider_model": "veo-2.0-generate-001", "duration": 5, "resolution": "1080p"},  # Veo 2 is 720p
    ):
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job(**overrides))
        assert info.value.retryable is True and info.value.code == "unsupported_parameter", overrides
    assert fake.requests == []


async def test_poll_faults_keep_the_job(provider: VertexProvider, fake: VertexFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    fake.faults.add("poll", "503")
    fake.faults.add("poll", "malformed")
    fake.faults.add("poll", "429")
    for status in (503, 200, 429):
        with pytest.raises(PollFailed) as info:
            await provider.poll(job, accepted.native_id)
        assert info.value.retryable is True and info.value.status_code == status
    seen = await poll_to_end(provider, job, accepted.native_id)
    assert [u.status for u in seen] == ["processing", "processing", "completed"]
    assert len([r for r in fake.requests if r.path.endswith(":predictLongRunning")]) == 1


async def test_unknown_operation_is_not_retryable(provider: VertexProvider) -> None:
    with pytest.raises(PollFailed) as info:
        await provider.poll(make_job(), f"{MODEL_PATH}/operations/123")
    assert info.value.retryable is False and info.value.status_code == 404
    with pytest.raises(PollFailed) as info:
        await provider.poll(make_job(), "no-operation-here")
    assert info.value.retryable is False


async def test_fake_validates_like_the_upstream(fake: VertexFake, root: str) -> None:
    auth = {"Authorization": "Bearer ya29.test"}
    path = f"/v1/{MODEL_PATH}:predictLongRunning"
    async with httpx.AsyncClient(base_url=root) as client:
        r = await client.post(path, json={"instances": [{"prompt": "x"}]})
        assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
        bad = [
            {"instances": [{"prompt": "x"}], "webhookConfig": {"uris": []}},  # Gemini-only
            {"instances": [{"prompt": "x"}], "parameters": {"durationSeconds": 5}},
            {"instances": [{"prompt": "x"}], "parameters": {"generateAudio": "yes"}},
            {"instances": [{"prompt": "x"}], "parameters": {"seed": -1}},
            {"instances": [{"prompt": "x"}], "parameters": {"storageUri": "s3://b/"}},
            {"instances": [{"prompt": "x", "image": {"gcsUri": "https://x", "mimeType": "image/png"}}]},
        ]
        for body in bad:
            r = await client.post(path, json=body, headers=auth)
            assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT", body
        image = {"gcsUri": "gs://b/first.png", "mimeType": "image/png"}
        r = await client.post(path, json={"instances": [{"prompt": "x", "image": image}]}, headers=auth)
        assert r.status_code == 200
        name = r.json()["name"]
        other = "/v1/projects/proj-test/locations/us-central1/publishers/google/models/veo-2.0-generate-001"
        r = await client.post(f"{other}:fetchPredictOperation", json={"operationName": name}, headers=auth)
        assert r.status_code == 400  # the operation belongs to another model path
        r = await client.get("/storage/v1/b/none/o/x.mp4", params={"alt": "media"})
        assert r.status_code == 401
