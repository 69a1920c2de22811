"""LumaProvider against the fake Luma Dream Machine API on loopback: what is particular to Luma (the
faults every adapter meets are in ``test_adapter_faults``)."""

from __future__ import annotations

import io

import av
import httpx
import pytest
from fakes.luma_fake import LumaFake
from fakes.server import small_mp4

from providers.harness import PNG, adapter_fixtures, created, job_maker, read_all, refused_before_a_call
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import ADAPTER_CASES, WIRINGS
from vidgate.gateway.providers.base import ReferenceImage, Rejected, RemoteProvider
from vidgate.gateway.providers.luma import LumaProvider, pick_aspect


def ref(role: str, url: str | None = None) -> ReferenceImage:
    return ReferenceImage(role=role, url=url or f"https://example.test/{role}.png", data=PNG, mime_type="image/png")


WIRE = WIRINGS["luma"]
make_job = job_maker(job_id="vid_01JTESTLUMA", **ADAPTER_CASES["luma"].job)
fake, provider = adapter_fixtures(WIRE)


async def test_text_to_video_runs_to_completion(provider: LumaProvider, fake: LumaFake) -> None:
    assert isinstance(provider, RemoteProvider)
    assert provider.name == "luma" and provider.cancellable is False
    job = make_job()
    accepted = await provider.submit(job)
    assert accepted.native_id in fake.generations

    rec = created(fake)
    assert rec["path"] == "/dream-machine/v1/generations/video"
    assert rec["headers"]["authorization"] == "Bearer luma-test"
    assert rec["json"] == {
        "generation_type": "video",
        "model": "ray-2",
        "prompt": "a koi pond in morning mist",
        "aspect_ratio": "16:9",
        "duration": "5s",
        "resolution": "720p",
    }
    assert "idempotency-key" not in rec["headers"]

    seen = await poll_to_end(provider, job, accepted.native_id)
    assert [s.status for s in seen] == ["queued", "processing", "completed"]
    (out,) = seen[-1].outputs
    assert "/cdn/" in out.url
    data = await read_all(provider, out)
    assert data == small_mp4()
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    download = fake.requests[-1]
    assert download["path"].startswith("/cdn/") and "authorization" not in download["headers"]
    assert await provider.cancel(accepted.native_id) is False
    assert not any(r["method"] == "DELETE" for r in fake.requests)


async def test_keyframes_4k_9s_and_passthrough(provider: LumaProvider, fake: LumaFake) -> None:
    job = make_job(
        provider_model="ray-flash-2",
        duration=9,
        resolution="4K",
        aspect_ratio="21:9",
        width=5040,
        height=2160,
        references=(ref("first_frame"), ref("last_frame")),
        provider_params={"loop": True, "concepts": [{"key": "dolly_zoom"}], "duration": "5s"},
    )
    await provider.submit(job)
    body = created(fake)["json"]
    assert body["model"] == "ray-flash-2"
    assert body["duration"] == "9s" and body["resolution"] == "4k" and body["aspect_ratio"] == "21:9"
    assert body["keyframes"] == {
        "frame0": {"type": "image", "url": "https://example.test/first_frame.png"},
        "frame1": {"type": "image", "url": "https://example.test/last_frame.png"},
    }
    assert body["loop"] is True and body["concepts"] == [{"key": "dolly_zoom"}]


def test_aspect_snaps_to_a_luma_ratio() -> None:
    assert pick_aspect(make_job(aspect_ratio="5:4", width=1000, height=800)) == "4:3"
    assert pick_aspect(make_job(aspect_ratio=None, width=640, height=1138)) == "9:16"
    assert pick_aspect(make_job(aspect_ratio="9:21")) == "9:21"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"seed": 3}, "seed"),
        ({"negative_prompt": "blur"}, "negative prompt"),
        ({"audio": True}, "audio"),
        ({"sample_count": 2}, "one video"),
        ({"duration": 7}, "5 s or 9 s"),
        ({"resolution": "360p"}, "not 360p"),
        ({"references": (ref("reference"),)}, "not reference"),
        ({"references": (ref("first_frame", "data:image/png;base64,AAAA"),)}, "https:// URL"),
    ],
)
async def test_unsupported_inputs_fail_over_without_a_call(
    provider: LumaProvider, fake: LumaFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)


@pytest.mark.parametrize(
    ("params", "needle"),
    [({"loop": "yes"}, "loop: Input should be a valid boolean"), ({"watermark": False}, "Extra inputs")],
)
async def test_bad_input_is_not_retryable(provider: LumaProvider, fake: LumaFake, params: dict, needle: str) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_params=params))
    assert not info.value.retryable and info.value.status_code == 400
    assert needle in info.value.message


async def test_fake_deletes_with_204(fake: LumaFake, root: str) -> None:
    auth = {"Authorization": "Bearer luma-test"}
    async with httpx.AsyncClient(base_url=f"{root}/dream-machine/v1") as client:
        r = await client.post("/generations/video", json={"prompt": "x", "duration": 5}, headers=auth)
        assert r.status_code == 400 and r.json() == {"detail": "duration: Input should be a valid string"}
        r = await client.post("/generations/video", json={"prompt": "x", "model": "ray-2"}, headers=auth)
        assert r.status_code == 201 and r.json()["state"] == "queued"
        gen_id = r.json()["id"]
        r = await client.delete(f"/generations/{gen_id}", headers=auth)
        assert r.status_code == 204 and r.content == b""
        r = await client.get(f"/generations/{gen_id}", headers=auth)
        assert r.status_code == 404
