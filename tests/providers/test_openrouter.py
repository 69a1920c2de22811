"""OpenRouterProvider against the fake OpenRouter video API on loopback: what is particular to
OpenRouter (the faults every adapter meets are in ``test_adapter_faults``)."""

from __future__ import annotations

import httpx
import pytest
from fakes.openrouter_fake import OpenRouterFake
from fakes.server import small_mp4

from providers.harness import FIRST, LAST, PNG, adapter_fixtures, created, job_maker, read_all, refused_before_a_call
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import ADAPTER_CASES, WIRINGS
from vidgate.gateway.providers.base import PollFailed, ReferenceImage, Rejected, RemoteProvider, UpstreamOutput
from vidgate.gateway.providers.openrouter import OpenRouterProvider

REFERENCE = ReferenceImage(role="reference", url="https://example.test/r.png", data=PNG, mime_type="image/png")
WIRE = WIRINGS["openrouter"]
make_job = job_maker(job_id="vid_01JTESTOPENROUTER", **ADAPTER_CASES["openrouter"].job)
fake, provider = adapter_fixtures(WIRE)


async def test_text_to_video_runs_to_completion(provider: OpenRouterProvider, fake: OpenRouterFake) -> None:
    assert isinstance(provider, RemoteProvider)
    assert provider.name == "openrouter" and provider.cancellable is False and provider.reconcile == "none"
    job = make_job(seed=7)
    accepted = await provider.submit(job)
    assert accepted.native_id in fake.jobs

    rec = created(fake)
    assert rec["path"] == "/api/v1/videos"
    assert rec["headers"]["authorization"] == "Bearer sk-or-test"
    assert rec["json"] == {
        "model": "google/veo-3.1",
        "prompt": "a hummingbird hovering at a red flower",
        "duration": 8,
        "generate_audio": True,
        "resolution": "720p",
        "aspect_ratio": "16:9",
        "seed": 7,
    }
    assert "callback_url" not in rec["json"]

    seen = await poll_to_end(provider, job, accepted.native_id)
    assert [s.status for s in seen] == ["queued", "processing", "completed"]
    assert [r["path"] for r in fake.requests if r["method"] == "GET"] == [f"/api/v1/videos/{accepted.native_id}"] * 3
    (out,) = seen[-1].outputs
    assert out.url.endswith(f"/api/v1/videos/{accepted.native_id}/content?index=0")
    assert await read_all(provider, out) == small_mp4()
    download = fake.requests[-1]
    assert download["path"].endswith("/content") and download["headers"]["authorization"] == "Bearer sk-or-test"
    assert await provider.cancel(accepted.native_id) is False


async def test_frames_and_references_map_to_their_fields(provider: OpenRouterProvider, fake: OpenRouterFake) -> None:
    await provider.submit(make_job(references=(FIRST, LAST)))
    body = created(fake)["json"]
    assert [(f["type"], f["frame_type"]) for f in body["frame_images"]] == [
        ("image_url", "first_frame"),
        ("image_url", "last_frame"),
    ]
    assert body["frame_images"][0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "input_references" not in body

    fake.requests.clear()
    await provider.submit(make_job(references=(REFERENCE,)))
    body = created(fake)["json"]
    assert body["input_references"] == [
        {"type": "image_url", "image_url": {"url": body["input_references"][0]["image_url"]["url"]}}
    ]
    assert "frame_images" not in body


def test_the_key_goes_only_to_the_api_host() -> None:
    provider = OpenRouterProvider(WIRE.config("https://openrouter.test/api/v1"))
    own = provider._output(0, "https://openrouter.test/api/v1/videos/j/content?index=0")
    relative = provider._output(1, "/api/v1/videos/j/content?index=1")
    signed = provider._output(2, "https://storage.example.test/v.mp4?sig=x")
    assert own.headers == relative.headers == {"Authorization": "Bearer sk-or-test"}
    assert relative.url == "https://openrouter.test/api/v1/videos/j/content?index=1"
    assert signed.headers == {}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"negative_prompt": "blur"}, "negative prompt"),
        ({"sample_count": 2}, "one video"),
        (
            {"references": (ReferenceImage(role="mask", url="https://x.test/m.png", data=PNG, mime_type="image/png"),)},
            "not mask",
        ),
    ],
)
async def test_unsupported_inputs_fail_over_without_a_call(
    provider: OpenRouterProvider, fake: OpenRouterFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)
    assert await provider.find(make_job(**overrides)) is None


async def test_out_of_set_values_are_the_upstreams_400(provider: OpenRouterProvider) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(duration=5))
    assert not info.value.retryable and info.value.status_code == 400
    assert info.value.message.startswith("duration 5 is not supported by google/veo-3.1")


async def test_the_proxy_needs_the_key(provider: OpenRouterProvider, fake: OpenRouterFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    out = (await poll_to_end(provider, job, accepted.native_id))[-1].outputs[0]
    with pytest.raises(PollFailed) as info:
        await read_all(provider, UpstreamOutput(index=0, url=out.url))
    assert info.value.status_code == 401


async def test_fake_speaks_the_documented_shapes(fake: OpenRouterFake, root: str) -> None:
    auth = {"Authorization": "Bearer sk-or-test"}
    async with httpx.AsyncClient(base_url=f"{root}/api/v1") as client:
        r = await client.post("/videos", json={"model": "nope/video", "prompt": "x"}, headers=auth)
        assert r.status_code == 400 and set(r.json()["error"]) == {"code", "message"}
        r = await client.post("/videos", json={"model": "alibaba/wan-2.6", "prompt": "x"}, headers=auth)
        assert r.status_code == 202 and r.json()["status"] == "pending"
        assert r.json()["polling_url"] == f"/api/v1/videos/{r.json()['id']}"
