"""KlingProvider's video extend against the fake Kling API on loopback: the source's video id read
back from the task that made it, the exact extend body, and the job run to a decodable MP4."""

from __future__ import annotations

import pytest
from fakes.kling_fake import KlingFake
from fakes.media import mp4

from providers.harness import FIRST, adapter_fixtures, created, job_maker, refused_before_a_call, run_to_mp4
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import WIRINGS
from vidgate.gateway.providers.base import JobSpec, Origin, ReferenceImage, Rejected, UnknownOutcome
from vidgate.gateway.providers.kling import KlingProvider

WIRE = WIRINGS["kling"]
_, provider = adapter_fixtures(WIRE)
make_job = job_maker(
    model="kling/kling-1.6",
    provider_model="kling-v1-6",
    prompt="the fox leaps over the fallen log",
    duration=5,
    width=1280,
    height=720,
    resolution="720p",
    aspect_ratio="16:9",
)
CLIP = mp4(seconds=2.0)


@pytest.fixture
def fake() -> KlingFake:
    return KlingFake(access_key="ak-test", secret_key="sk-test", polls_to_complete=3)


def source(origin: Origin | None) -> ReferenceImage:
    """A source video as the worker hands it over: one of the owner's assets, with the job that made it."""
    return ReferenceImage("source", "", CLIP, "video/mp4", kind="video", asset="ast_01FOX", origin=origin)


def extend(origin: Origin | None, **overrides: object) -> JobSpec:
    return make_job(**{"operation": "extend", "references": (source(origin),), **overrides})


async def made_by_kling(provider: KlingProvider, **overrides: object) -> Origin:
    """A video Kling finished, as the job that made it records it (its task's native id)."""
    job = make_job(**overrides)
    accepted = await provider.submit(job)
    await poll_to_end(provider, job, accepted.native_id)
    return Origin("kling", accepted.native_id)


def posts(fake: KlingFake) -> list[dict]:
    return [r for r in fake.requests if r["method"] == "POST"]


async def test_extend_sends_the_video_id_of_the_task_that_made_the_source(
    provider: KlingProvider, fake: KlingFake
) -> None:
    origin = await made_by_kling(provider, references=(FIRST,))
    assert origin.native_id.startswith("image2video/")
    made = fake.tasks[origin.native_id.partition("/")[2]]
    fake.requests.clear()

    job = extend(origin, negative_prompt="blur", provider_params={"cfg_scale": 0.7})
    accepted = await provider.submit(job)
    assert accepted.native_id.startswith("video-extend/")
    lookup = [r for r in fake.requests if r["method"] == "GET"]
    assert [r["path"] for r in lookup] == [f"/v1/videos/{origin.native_id}"]
    rec = created(fake)
    assert rec["path"] == "/v1/videos/video-extend"
    assert rec["json"] == {
        "cfg_scale": 0.7,
        "prompt": "the fox leaps over the fallen log",
        "negative_prompt": "blur",
        "video_id": made.video_id,
    }
    await run_to_mp4(provider, job, accepted.native_id)

    # An extension is itself a video Kling made, and can be extended again.
    again = Origin("kling", accepted.native_id)
    fake.requests.clear()
    second = await provider.submit(extend(again))
    assert created(fake)["json"]["video_id"] == fake.tasks[accepted.native_id.partition("/")[2]].video_id
    await run_to_mp4(provider, extend(again), second.native_id)


@pytest.mark.parametrize(
    ("origin", "needle"),
    [
        (None, "not a video from elsewhere"),
        (Origin("fal", "fal-ai/kling-video/req_1"), "not a video fal made"),
        (Origin("kling", "not-a-task-id"), "cannot name the source's task"),
    ],
)
async def test_extend_of_a_video_kling_did_not_make_fails_over_without_a_call(
    provider: KlingProvider, fake: KlingFake, origin: Origin | None, needle: str
) -> None:
    await refused_before_a_call(provider, fake, extend(origin), needle)


async def test_a_task_kling_no_longer_holds_is_a_final_refusal(provider: KlingProvider, fake: KlingFake) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(extend(Origin("kling", "text2video/860612345678901234")))
    assert not info.value.retryable and info.value.code == "invalid_reference"
    assert "kling holds no task 860612345678901234" in info.value.message
    assert posts(fake) == []


async def test_a_source_task_still_running_is_refused_before_the_extend(
    provider: KlingProvider, fake: KlingFake
) -> None:
    accepted = await provider.submit(make_job())
    with pytest.raises(Rejected) as info:
        await provider.submit(extend(Origin("kling", accepted.native_id)))
    assert info.value.retryable and "holds no finished video" in info.value.message
    assert len(posts(fake)) == 1


async def test_what_kling_cannot_extend_is_its_own_final_refusal(provider: KlingProvider, fake: KlingFake) -> None:
    """A video of a model Kling does not extend: the lookup finds it, Kling refuses the extend."""
    origin = await made_by_kling(
        provider,
        model="kling/kling-2.5-turbo",
        provider_model="kling-v2-5-turbo",
        width=1920,
        height=1080,
        resolution="1080p",
    )
    with pytest.raises(Rejected) as info:
        await provider.submit(extend(origin))
    assert not info.value.retryable and info.value.status_code == 400
    assert "kling-v2-5-turbo cannot be extended" in info.value.message
    assert len(posts(fake)) == 2


async def test_a_lost_extend_answer_cannot_be_looked_up(provider: KlingProvider, fake: KlingFake) -> None:
    origin = await made_by_kling(provider)
    job = extend(origin)
    fake.faults.add("create", "accept-reset")
    with pytest.raises(UnknownOutcome):
        await provider.submit(job)
    with pytest.raises(UnknownOutcome) as info:
        await provider.find(job)
    assert info.value.code == "reconcile_unsupported"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"duration": 10}, "by about 5 s, not 10 s"),
        ({"audio": True}, "without sound"),
        ({"references": (source(Origin("kling", "text2video/1")), FIRST)}, "without first_frame"),
        ({"operation": "edit"}, "kling edits no video"),
        ({"references": ()}, "exactly one source video"),
        ({"seed": 4}, "takes no seed"),
    ],
)
async def test_extends_kling_cannot_run_fail_over_without_a_call(
    provider: KlingProvider, fake: KlingFake, overrides: dict, needle: str
) -> None:
    job = extend(Origin("kling", "text2video/1"), **overrides)
    await refused_before_a_call(provider, fake, job, needle)
