"""LtxProvider against the fake LTX async (v2) API on loopback: what is particular to LTX (the faults
every adapter meets are in ``test_adapter_faults``)."""

from __future__ import annotations

import io

import av
import httpx
import pytest
from fakes.ltx_fake import LtxFake
from fakes.server import small_mp4

from providers.harness import FIRST, LAST, adapter_fixtures, created, job_maker, read_all, refused_before_a_call
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import ADAPTER_CASES, WIRINGS
from vidgate.gateway.providers.base import ReferenceImage, Rejected, RemoteProvider
from vidgate.gateway.providers.ltx import LtxProvider

REFERENCE = ReferenceImage(role="reference", url="https://example.test/r.png", data=b"x", mime_type="image/png")
WIRE = WIRINGS["ltx"]
make_job = job_maker(job_id="vid_01JTESTLTX", **ADAPTER_CASES["ltx"].job)
fake, provider = adapter_fixtures(WIRE)


async def test_text_to_video_runs_to_completion(provider: LtxProvider, fake: LtxFake) -> None:
    assert isinstance(provider, RemoteProvider)
    assert provider.name == "ltx" and provider.cancellable is False and provider.reconcile == "none"
    job = make_job()
    accepted = await provider.submit(job)
    endpoint, _, job_id = accepted.native_id.partition("/")
    assert endpoint == "text-to-video" and job_id in fake.jobs

    rec = created(fake)
    assert rec["path"] == "/v2/text-to-video"
    assert rec["headers"]["authorization"] == "Bearer ltx-test"
    assert rec["json"] == {
        "prompt": "steam rising from a cup on a windowsill",
        "model": "ltx-2-3-fast",
        "duration": 8,
        "resolution": "1920x1080",
        "generate_audio": True,
    }

    seen = await poll_to_end(provider, job, accepted.native_id)
    assert [s.status for s in seen] == ["queued", "processing", "completed"]
    assert [r["path"] for r in fake.requests if r["method"] == "GET"] == [f"/v2/text-to-video/{job_id}"] * 3
    (out,) = seen[-1].outputs
    data = await read_all(provider, out)
    assert data == small_mp4()
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    download = fake.requests[-1]
    assert download["path"].startswith("/cdn/") and "authorization" not in download["headers"]
    assert await provider.cancel(accepted.native_id) is False


async def test_first_and_last_frame_go_to_image_to_video(provider: LtxProvider, fake: LtxFake) -> None:
    job = make_job(
        provider_model="ltx-2-3-pro",
        duration=6,
        resolution="4K",
        width=2160,
        height=3840,
        aspect_ratio="9:16",
        audio=False,
        references=(FIRST, LAST),
        provider_params={"camera_motion": "dolly_in", "fps": 25, "model": "ltx-2-fast"},
    )
    accepted = await provider.submit(job)
    assert accepted.native_id.startswith("image-to-video/")
    rec = created(fake)
    assert rec["path"] == "/v2/image-to-video"
    body = rec["json"]
    assert body["model"] == "ltx-2-3-pro" and body["resolution"] == "2160x3840"
    assert body["generate_audio"] is False and body["camera_motion"] == "dolly_in" and body["fps"] == 25
    assert body["image_uri"].startswith("data:image/png;base64,") and body["last_frame_uri"].startswith("data:")
    assert (await poll_to_end(provider, job, accepted.native_id))[-1].status == "completed"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"seed": 3}, "seed"),
        ({"negative_prompt": "blur"}, "negative prompt"),
        ({"sample_count": 2}, "one video"),
        ({"resolution": "720p", "width": 1280, "height": 720}, "not 720p"),
        ({"duration": 12, "resolution": "4K", "width": 3840, "height": 2160}, "6, 8, 10 s videos at 2160p"),
        ({"provider_model": "ltx-2-3-pro", "duration": 20}, "not 20 s"),
        ({"provider_model": "ltx-9"}, "no model ltx-9"),
        ({"provider_model": "ltx-2-pro", "width": 1080, "height": 1920, "aspect_ratio": "9:16"}, "landscape"),
        ({"references": (LAST,)}, "only after a first_frame"),
        ({"references": (REFERENCE,)}, "not reference"),
    ],
)
async def test_unsupported_inputs_fail_over_without_a_call(
    provider: LtxProvider, fake: LtxFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)


async def test_fast_makes_20_s_at_1080p(provider: LtxProvider, fake: LtxFake) -> None:
    await provider.submit(make_job(duration=20))
    assert created(fake)["json"]["duration"] == 20


async def test_find_knows_an_unsendable_job_is_absent(provider: LtxProvider) -> None:
    assert await provider.find(make_job(seed=1)) is None


async def test_bad_input_is_not_retryable(provider: LtxProvider) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_params={"camera_motion": "orbit"}))
    assert not info.value.retryable and info.value.status_code == 400
    assert info.value.message == "Unsupported camera_motion: orbit"


async def test_fake_speaks_the_documented_shapes(fake: LtxFake, root: str) -> None:
    auth = {"Authorization": "Bearer ltx-test"}
    body = {"prompt": "x", "model": "ltx-2-3-pro", "duration": 6, "resolution": "1920x1080"}
    async with httpx.AsyncClient(base_url=root) as client:
        r = await client.post("/v2/text-to-video", json={**body, "duration": 7}, headers=auth)
        assert r.status_code == 400 and r.json()["type"] == "error" and set(r.json()["error"]) == {"type", "message"}
        r = await client.post("/v2/text-to-video", json=body, headers=auth)
        assert r.status_code == 202 and set(r.json()) == {"id", "created_at"}
        job_id = r.json()["id"]
        assert (await client.get(f"/v2/image-to-video/{job_id}", headers=auth)).status_code == 404
        r = await client.get(f"/v2/text-to-video/{job_id}", headers=auth)
        assert r.json()["status"] == "pending" and r.json()["id"] == job_id
