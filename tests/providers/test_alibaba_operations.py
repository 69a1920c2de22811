"""AlibabaProvider's audio track for Wan 2.5 / 2.6 against the fake DashScope API on loopback: the exact
body sent (``input.audio_url``), the task run to a decodable MP4, and what Wan cannot take refused first."""

from __future__ import annotations

import io

import av
import pytest
from fakes.alibaba_fake import AlibabaFake
from fakes.media import wav

from providers.harness import FIRST, adapter_fixtures, created, job_maker, read_all, refused_before_a_call
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import WIRINGS
from vidgate.gateway.providers.alibaba import AlibabaProvider
from vidgate.gateway.providers.base import JobSpec, ReferenceImage, Rejected

WIRE = WIRINGS["alibaba"]
fake, provider = adapter_fixtures(WIRE)
make_job = job_maker(
    model="alibaba/wan-2.6",
    provider_model="wan2.6-t2v",
    prompt="a street singer sings this song under a lamp",
    duration=10,
    width=1920,
    height=1080,
    resolution="1080p",
    audio=True,
)


def track(url: str = "https://media.example.test/song.mp3") -> ReferenceImage:
    return ReferenceImage("reference", url, wav(4.0), "audio/mpeg", kind="audio")


async def test_audio_track_goes_in_input_audio_url(provider: AlibabaProvider, fake: AlibabaFake) -> None:
    job = make_job(references=(track(),), seed=5)
    accepted = await provider.submit(job)
    rec = created(fake)
    assert rec["headers"]["x-dashscope-async"] == "enable"
    assert rec["json"] == {
        "model": "wan2.6-t2v",
        "input": {
            "prompt": "a street singer sings this song under a lamp",
            "audio_url": "https://media.example.test/song.mp3",
        },
        "parameters": {"size": "1920*1080", "duration": 10, "seed": 5, "audio": True},
    }
    seen = await poll_to_end(provider, job, accepted.native_id)
    assert seen[-1].status == "completed"
    with av.open(io.BytesIO(await read_all(provider, seen[-1].outputs[0]))) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24


async def test_audio_track_with_a_first_frame_goes_to_the_image_model(
    provider: AlibabaProvider, fake: AlibabaFake
) -> None:
    job = make_job(
        provider_model="wan2.5-t2v-preview",
        duration=5,
        references=(FIRST, track()),
        provider_params={"audio_url": "https://elsewhere.example.test/x.mp3"},
    )
    await provider.submit(job)
    body = created(fake)["json"]
    assert body["model"] == "wan2.5-i2v-preview"
    assert body["input"]["audio_url"] == "https://media.example.test/song.mp3"  # the reference wins
    assert body["input"]["img_url"] == FIRST.data_url() and body["parameters"]["resolution"] == "1080P"


@pytest.mark.parametrize(
    ("job", "needle"),
    [
        (make_job(references=(track(url=""),)), "by https URL only"),
        (make_job(references=(track(), track())), "one audio track"),
        (
            make_job(provider_model="wan2.2-t2v-plus", duration=5, audio=False, references=(track(),)),
            "takes no audio track",
        ),
        (make_job(operation="extend", references=()), "no extend operation"),
        (
            make_job(
                references=(ReferenceImage("source", "https://m.example.test/v.mp4", b"", "video/mp4", kind="video"),)
            ),
            "not video source",
        ),
    ],
)
async def test_what_wan_cannot_take_fails_over_without_a_call(
    provider: AlibabaProvider, fake: AlibabaFake, job: JobSpec, needle: str
) -> None:
    await refused_before_a_call(provider, fake, job, needle)


async def test_dashscope_refuses_an_inline_audio_track(provider: AlibabaProvider, fake: AlibabaFake) -> None:
    job = make_job(provider_params={"audio_url": "data:audio/wav;base64,AAAA"})
    with pytest.raises(Rejected) as info:
        await provider.submit(job)
    assert not info.value.retryable and "audio_url must be a public http(s) URL" in info.value.message
    assert fake.tasks == {}
