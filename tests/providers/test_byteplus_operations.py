"""BytePlusProvider's Seedance 2.0 reference video and audio against the fake Ark API on loopback: the
exact ``content`` items sent, the task run to a decodable MP4, and what Ark refuses refused first."""

from __future__ import annotations

import io

import av
import httpx
import pytest
from fakes.byteplus_fake import BytePlusFake
from fakes.media import mp4, wav

from providers.harness import FIRST, PNG, adapter_fixtures, job_maker, read_all, refused_before_a_call
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import WIRINGS
from vidgate.gateway.providers.base import JobSpec, ReferenceImage
from vidgate.gateway.providers.byteplus import BytePlusProvider

TASKS = "/api/v3/contents/generations/tasks"
WIRE = WIRINGS["byteplus"]
fake, provider = adapter_fixtures(WIRE)
make_job = job_maker(
    model="bytedance/seedance-2.0",
    provider_model="dreamina-seedance-2-0-260128",
    prompt="the dancer from image 1 repeats the moves of video 1 to audio 1",
    duration=8,
    width=1280,
    height=720,
    resolution="720p",
    aspect_ratio="16:9",
    audio=True,
)
LOOK = ReferenceImage("reference", "https://media.example.test/look.png", PNG, "image/png")


def video(url: str = "https://media.example.test/moves.mp4") -> ReferenceImage:
    return ReferenceImage("reference", url, mp4(3.0), "video/mp4", kind="video")


def audio(url: str = "https://media.example.test/beat.wav") -> ReferenceImage:
    return ReferenceImage("reference", url, wav(2.0), "audio/wav", kind="audio")


async def test_reference_image_video_and_audio_become_content_items(
    provider: BytePlusProvider, fake: BytePlusFake
) -> None:
    job = make_job(references=(audio(), video(), LOOK), seed=11)
    accepted = await provider.submit(job)
    (sent,) = [r for r in fake.requests if r["method"] == "POST"]
    assert sent["path"] == TASKS
    assert sent["json"] == {
        "model": "dreamina-seedance-2-0-260128",
        "resolution": "720p",
        "ratio": "16:9",
        "duration": 8,
        "seed": 11,
        "generate_audio": True,
        "content": [
            {"type": "text", "text": "the dancer from image 1 repeats the moves of video 1 to audio 1"},
            {"type": "image_url", "image_url": {"url": LOOK.data_url()}, "role": "reference_image"},
            {
                "type": "video_url",
                "video_url": {"url": "https://media.example.test/moves.mp4"},
                "role": "reference_video",
            },
            {
                "type": "audio_url",
                "audio_url": {"url": "https://media.example.test/beat.wav"},
                "role": "reference_audio",
            },
        ],
    }
    seen = await poll_to_end(provider, job, accepted.native_id)
    assert seen[-1].status == "completed"
    with av.open(io.BytesIO(await read_all(provider, seen[-1].outputs[0]))) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24


async def test_three_videos_alone_are_taken(provider: BytePlusProvider, fake: BytePlusFake) -> None:
    urls = [f"https://media.example.test/{i}.mp4" for i in range(3)]
    await provider.submit(make_job(references=tuple(video(u) for u in urls)))
    (sent,) = [r for r in fake.requests if r["method"] == "POST"]
    assert [c["video_url"]["url"] for c in sent["json"]["content"] if c["type"] == "video_url"] == urls


@pytest.mark.parametrize(
    ("job", "needle"),
    [
        (make_job(references=(video(url=""),)), "by https URL only"),
        (make_job(references=(audio(url=""), LOOK)), "reference audio by https URL only"),
        (make_job(references=(audio(),)), "only beside a reference image or video"),
        (make_job(references=(FIRST, video())), "without first and last frames"),
        (make_job(references=tuple(video() for _ in range(4))), "at most 3 reference videos"),
        (make_job(provider_model="seedance-1-0-pro-250528", references=(video(),)), "not video reference"),
        (make_job(operation="extend", references=(video(),)), "no extend operation"),
    ],
)
async def test_what_ark_cannot_take_fails_over_without_a_call(
    provider: BytePlusProvider, fake: BytePlusFake, job: JobSpec, needle: str
) -> None:
    await refused_before_a_call(provider, fake, job, needle)


async def test_the_fake_refuses_media_shapes_ark_refuses(fake: BytePlusFake, root: str) -> None:
    item = {"type": "audio_url", "audio_url": {"url": "data:audio/wav;base64,AAAA"}, "role": "reference_audio"}
    clip = {"type": "video_url", "video_url": {"url": "https://m.example.test/v.mp4"}, "role": "reference_video"}
    body = {"model": "dreamina-seedance-2-0-260128", "content": [{"type": "text", "text": "x"}, item, clip]}
    auth = {"Authorization": "Bearer ark-test"}
    async with httpx.AsyncClient(base_url=root + WIRE.suffix) as client:
        r = await client.post("/contents/generations/tasks", json=body, headers=auth)
        assert r.status_code == 400 and "audio_url.url" in r.text
        item["audio_url"], item["role"] = {"url": "https://m.example.test/a.wav"}, "voice"
        r = await client.post("/contents/generations/tasks", json=body, headers=auth)
        assert r.status_code == 400 and "role `voice`" in r.text
        item["role"] = "reference_audio"
        r = await client.post(
            "/contents/generations/tasks", json={**body, "model": "seedance-1-0-pro-250528"}, headers=auth
        )
        assert r.status_code == 400 and "does not support video or audio" in r.text
        r = await client.post("/contents/generations/tasks", json=body, headers=auth)
        assert r.status_code == 200 and fake.tasks
