"""LumaProvider's operations on a source video against the fake Luma API on loopback: extend (a new
generation continuing one of Luma's own, by its id) and edit (modify-video on the source's URL),
each with the exact body sent and the job run to a decodable MP4."""

from __future__ import annotations

import pytest
from fakes.luma_fake import LumaFake
from fakes.media import mp4

from providers.harness import (
    FIRST,
    LAST,
    adapter_fixtures,
    created,
    job_maker,
    refused_before_a_call,
    run_to_mp4,
)
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import WIRINGS
from vidgate.gateway.providers.base import Origin, ReferenceImage, Rejected
from vidgate.gateway.providers.luma import LumaProvider

WIRE = WIRINGS["luma"]
fake, provider = adapter_fixtures(WIRE)
make_job = job_maker(
    model="luma/ray-2",
    provider_model="ray-2",
    prompt="the koi turn and swim towards the bridge",
    duration=5,
    width=1280,
    height=720,
    resolution="720p",
    aspect_ratio="16:9",
)
CLIP = mp4(seconds=2.0)
SOURCE_URL = "https://media.example.test/pond.mp4"


def source(origin: Origin | None = None, url: str = "") -> ReferenceImage:
    """A source video as the worker hands it over: one of the owner's assets (with the job that made
    it, when known), or a URL."""
    return ReferenceImage(
        "source", url, CLIP, "video/mp4", kind="video", asset=None if url else "ast_01POND", origin=origin
    )


async def made_by_luma(provider: LumaProvider) -> Origin:
    """A generation Luma completed, as the job that made it records it."""
    job = make_job()
    accepted = await provider.submit(job)
    await poll_to_end(provider, job, accepted.native_id)
    return Origin("luma", accepted.native_id)


async def test_extend_continues_lumas_own_generation_by_its_id(provider: LumaProvider, fake: LumaFake) -> None:
    origin = await made_by_luma(provider)
    fake.requests.clear()
    job = make_job(operation="extend", duration=9, references=(source(origin), LAST), provider_params={"loop": False})
    accepted = await provider.submit(job)
    assert accepted.native_id != origin.native_id
    rec = created(fake)
    assert rec["path"] == "/dream-machine/v1/generations/video"
    assert rec["json"] == {
        "loop": False,
        "generation_type": "video",
        "model": "ray-2",
        "prompt": "the koi turn and swim towards the bridge",
        "aspect_ratio": "16:9",
        "duration": "9s",
        "resolution": "720p",
        "keyframes": {
            "frame1": {"type": "image", "url": "https://example.test/last.png"},
            "frame0": {"type": "generation", "id": origin.native_id},
        },
    }
    await run_to_mp4(provider, job, accepted.native_id)


@pytest.mark.parametrize(
    ("origin", "needle"),
    [
        (None, "not a video from elsewhere"),
        (Origin("replicate", "p7k2x"), "not a video replicate made"),
        (Origin("runway", "task_1"), "not a video runway made"),
    ],
)
async def test_extend_of_a_video_luma_did_not_make_fails_over_without_a_call(
    provider: LumaProvider, fake: LumaFake, origin: Origin | None, needle: str
) -> None:
    for ref in (source(origin), source(origin, url=SOURCE_URL)):
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job(operation="extend", references=(ref,)))
        assert info.value.retryable and info.value.code == "unsupported_parameter"
        assert "luma extends only a video Luma made" in info.value.message and needle in info.value.message
    assert fake.requests == []


async def test_extend_of_a_generation_luma_does_not_hold_is_a_final_refusal(
    provider: LumaProvider, fake: LumaFake
) -> None:
    """A generation made under another Luma account, or deleted since: Luma's 400, not a failover."""
    gone = Origin("luma", "0f0e0d0c-1111-2222-3333-444455556666")
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(operation="extend", references=(source(gone),)))
    assert not info.value.retryable and info.value.status_code == 400
    assert "no completed generation" in info.value.message
    assert fake.generations == {}


async def test_edit_modifies_the_source_by_its_url(provider: LumaProvider, fake: LumaFake) -> None:
    job = make_job(
        operation="edit",
        provider_model="ray-flash-2",
        references=(source(url=SOURCE_URL), FIRST),
        provider_params={"mode": "reimagine_2"},
    )
    accepted = await provider.submit(job)
    rec = created(fake)
    assert rec["path"] == "/dream-machine/v1/generations/video/modify"
    assert rec["json"] == {
        "mode": "reimagine_2",
        "generation_type": "modify_video",
        "model": "ray-flash-2",
        "media": {"url": SOURCE_URL},
        "prompt": "the koi turn and swim towards the bridge",
        "first_frame": {"url": "https://example.test/first.png"},
    }
    await run_to_mp4(provider, job, accepted.native_id)

    fake.requests.clear()
    await provider.submit(make_job(operation="edit", references=(source(url=SOURCE_URL),)))
    assert created(fake)["json"]["mode"] == "adhere_1"


async def test_a_lost_modify_answer_is_found_by_its_echo(provider: LumaProvider, fake: LumaFake) -> None:
    job = make_job(operation="edit", references=(source(url=SOURCE_URL),))
    other = make_job(operation="edit", references=(source(url="https://media.example.test/other.mp4"),))
    await provider.submit(other)
    fake.faults.add("create", "accept-reset")
    with pytest.raises(Exception):  # noqa: B017 - the answer is lost on the way back, however it surfaces
        await provider.submit(job)
    found = await provider.find(job)
    assert found is not None
    made = fake.generations[found.native_id]
    assert made.body["media"] == {"url": SOURCE_URL} and made.body["generation_type"] == "modify_video"


async def test_what_luma_refuses_in_a_modify_is_a_final_refusal(provider: LumaProvider, fake: LumaFake) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(
            make_job(operation="edit", references=(source(url=SOURCE_URL),), provider_params={"mode": "swap"})
        )
    assert not info.value.retryable and info.value.status_code == 400
    assert "mode: Input should be one of" in info.value.message
    assert fake.generations == {}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"operation": "edit", "references": (source(),)}, "by its https URL"),
        ({"operation": "edit", "provider_model": "ray-1-6", "references": (source(url=SOURCE_URL),)}, "not ray-1-6"),
        ({"operation": "edit", "references": (source(url=SOURCE_URL), LAST)}, "not last_frame"),
        ({"operation": "extend", "references": (source(Origin("luma", "g")), FIRST)}, "not first_frame"),
        ({"operation": "extend", "references": ()}, "exactly one source video"),
        ({"references": (source(url=SOURCE_URL),)}, "not source"),
    ],
)
async def test_operations_luma_cannot_run_fail_over_without_a_call(
    provider: LumaProvider, fake: LumaFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)
