"""XaiProvider against the fake xAI video API on loopback: what is particular to xAI (the faults every
adapter meets are in ``test_adapter_faults``)."""

from __future__ import annotations

import base64
import io

import av
import httpx
import pytest
from fakes.server import small_mp4
from fakes.xai_fake import XaiFake

from providers.harness import PNG, adapter_fixtures, created, job_maker, read_all, refused_before_a_call
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import ADAPTER_CASES, WIRINGS
from vidgate.gateway.providers.base import ReferenceImage, Rejected, RemoteProvider
from vidgate.gateway.providers.xai import MAX_INLINE, XaiProvider, pick_aspect


def ref(role: str, url: str | None = None, data: bytes = PNG) -> ReferenceImage:
    return ReferenceImage(role=role, url=url or f"https://example.test/{role}.png", data=data, mime_type="image/png")


WIRE = WIRINGS["xai"]
make_job = job_maker(job_id="vid_01JTESTXAI", **ADAPTER_CASES["xai"].job)
fake, provider = adapter_fixtures(WIRE)


async def test_text_to_video_runs_to_completion(provider: XaiProvider, fake: XaiFake) -> None:
    assert isinstance(provider, RemoteProvider)
    assert provider.name == "xai" and provider.cancellable is False and provider.reconcile == "none"
    job = make_job()
    accepted = await provider.submit(job)
    assert accepted.native_id in fake.videos

    rec = created(fake)
    assert rec["path"] == "/v1/videos/generations"
    assert rec["headers"]["authorization"] == "Bearer xai-test"
    assert rec["json"] == {
        "model": "grok-imagine-video",
        "prompt": "a lantern drifting over a dark lake",
        "duration": 6,
        "aspect_ratio": "16:9",
        "resolution": "720p",
    }

    seen = await poll_to_end(provider, job, accepted.native_id)
    assert [(s.status, s.progress) for s in seen] == [("queued", 0), ("processing", 50), ("completed", 100)]
    assert seen[-1].seconds == 6.0
    (out,) = seen[-1].outputs
    data = await read_all(provider, out)
    assert data == small_mp4()
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24
    download = fake.requests[-1]
    assert download["path"].startswith("/cdn/") and "authorization" not in download["headers"]
    assert await provider.cancel(accepted.native_id) is False


async def test_first_frame_goes_inline_and_references_as_a_list(provider: XaiProvider, fake: XaiFake) -> None:
    await provider.submit(make_job(references=(ref("first_frame"),), resolution="480p", width=854, height=480))
    body = created(fake)["json"]
    assert body["image"] == {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}
    assert body["resolution"] == "480p" and "reference_images" not in body

    fake.requests.clear()
    await provider.submit(make_job(references=(ref("reference"), ref("reference", "https://example.test/b.png"))))
    body = created(fake)["json"]
    assert len(body["reference_images"]) == 2 and "image" not in body


async def test_a_large_image_goes_by_url(provider: XaiProvider, fake: XaiFake) -> None:
    big = ref("first_frame", "https://example.test/big.png", data=PNG + b"\x00" * MAX_INLINE)
    await provider.submit(make_job(references=(big,)))
    assert created(fake)["json"]["image"] == {"url": "https://example.test/big.png"}


def test_aspect_snaps_to_an_xai_ratio() -> None:
    assert pick_aspect(make_job(aspect_ratio="21:9", width=1680, height=720)) == "16:9"
    assert pick_aspect(make_job(aspect_ratio=None, width=720, height=1080)) == "2:3"
    assert pick_aspect(make_job(aspect_ratio="3:2")) == "3:2"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"seed": 3}, "seed"),
        ({"negative_prompt": "blur"}, "negative prompt"),
        ({"audio": False}, "always has audio"),
        ({"sample_count": 2}, "one video"),
        ({"duration": 16}, "1 to 15 s"),
        ({"resolution": "1080p", "width": 1920, "height": 1080}, "not 1080p"),
        ({"references": (ref("last_frame"),)}, "not last_frame"),
        ({"references": (ref("first_frame"), ref("reference"))}, "not both"),
        ({"references": tuple(ref("reference") for _ in range(8))}, "at most 7"),
    ],
)
async def test_unsupported_inputs_fail_over_without_a_call(
    provider: XaiProvider, fake: XaiFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)
    assert await provider.find(make_job(**overrides)) is None  # never sent, so surely absent


async def test_bad_input_is_not_retryable(provider: XaiProvider) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_params={"loop": True}))
    assert not info.value.retryable and info.value.status_code == 400
    assert info.value.message == "Unknown field `loop`"


async def test_fake_speaks_the_documented_shapes(fake: XaiFake, root: str) -> None:
    auth = {"Authorization": "Bearer xai-test"}
    async with httpx.AsyncClient(base_url=f"{root}/v1") as client:
        r = await client.post("/videos/generations", json={"prompt": "x", "duration": 20}, headers=auth)
        assert r.status_code == 400 and set(r.json()) == {"code", "error"}
        r = await client.post("/videos/generations", json={"prompt": "x", "model": "grok-imagine-video"}, headers=auth)
        assert r.status_code == 200 and set(r.json()) == {"request_id"}
        r = await client.get(f"/videos/{r.json()['request_id']}", headers=auth)
        assert r.json() == {"status": "pending", "progress": 0}
