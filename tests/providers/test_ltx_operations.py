"""LtxProvider's operations on an input against the fake LTX API on loopback: extend, retake (our
edit) and audio-to-video, each with the exact body sent and the job run to a decodable MP4."""

from __future__ import annotations

import pytest
from fakes.ltx_fake import LtxFake
from fakes.media import data_uri, mp4, wav

from providers.harness import FIRST, adapter_fixtures, created, job_maker, refused_before_a_call, run_to_mp4
from providers.wiring import WIRINGS
from vidgate.gateway.providers import ltx
from vidgate.gateway.providers.base import JobSpec, ReferenceImage, Rejected
from vidgate.gateway.providers.ltx import LtxProvider

WIRE = WIRINGS["ltx"]
fake, provider = adapter_fixtures(WIRE)
make_job = job_maker(
    model="lightricks/ltx-2.3-pro",
    provider_model="ltx-2-3-pro",
    prompt="the lantern flickers and the fox turns its head",
    duration=5,
    width=1920,
    height=1080,
)
CLIP = mp4(seconds=4.0, fps=24, width=64, height=36)  # 96 frames, 16:9


def source(data: bytes = CLIP, url: str = "") -> ReferenceImage:
    """A source video as the worker hands it over: one of the owner's assets (no URL) unless ``url``."""
    return ReferenceImage("source", url, data, "video/mp4", kind="video", asset=None if url else "ast_01SRC")


def voice(seconds: float = 3.0) -> ReferenceImage:
    return ReferenceImage("reference", "", wav(seconds), "audio/wav", kind="audio", file="file_01VOICE")


async def test_extend_sends_the_source_inline_to_v2_extend(provider: LtxProvider, fake: LtxFake) -> None:
    job = make_job(operation="extend", references=(source(),), provider_params={"context": 4})
    accepted = await provider.submit(job)
    assert accepted.native_id.startswith("extend/")
    rec = created(fake)
    assert rec["path"] == "/v2/extend"
    assert rec["json"] == {
        "context": 4,
        "model": "ltx-2-3-pro",
        "mode": "end",
        "video_uri": data_uri(CLIP, "video/mp4"),
        "duration": 5,
        "prompt": "the lantern flickers and the fox turns its head",
    }
    await run_to_mp4(provider, job, accepted.native_id)
    polls = [r["path"] for r in fake.requests if r["method"] == "GET" and r["path"].startswith("/v2/")]
    assert set(polls) == {f"/v2/{accepted.native_id}"}


async def test_extend_at_the_start_with_a_source_url(
    provider: LtxProvider, fake: LtxFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ltx, "MAX_MEDIA_INLINE", 1000)  # this clip is now "too large" to go inline
    job = make_job(
        operation="extend",
        references=(source(url="https://media.example.test/clip.mp4"),),
        provider_params={"mode": "start"},
    )
    await provider.submit(job)
    body = created(fake)["json"]
    assert body["video_uri"] == "https://media.example.test/clip.mp4" and body["mode"] == "start"


async def test_a_large_asset_without_a_url_fails_over_without_a_call(
    provider: LtxProvider, fake: LtxFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ltx, "MAX_MEDIA_INLINE", 1000)
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(operation="extend", references=(source(),)))
    assert info.value.retryable and info.value.code == "unsupported_parameter"
    assert "needs an https URL" in info.value.message
    assert fake.requests == []


async def test_edit_is_a_retake_keeping_the_sound_unless_audio_is_asked(provider: LtxProvider, fake: LtxFake) -> None:
    job = make_job(operation="edit", duration=3, references=(source(),), provider_params={"start_time": 0.5})
    accepted = await provider.submit(job)
    assert accepted.native_id.startswith("retake/")
    rec = created(fake)
    assert rec["path"] == "/v2/retake"
    assert rec["json"] == {
        "start_time": 0.5,
        "mode": "replace_video",
        "model": "ltx-2-3-pro",
        "video_uri": data_uri(CLIP, "video/mp4"),
        "duration": 3,
        "prompt": "the lantern flickers and the fox turns its head",
    }
    await run_to_mp4(provider, job, accepted.native_id)

    fake.requests.clear()
    await provider.submit(make_job(operation="edit", audio=True, references=(source(),)))
    body = created(fake)["json"]
    assert body["mode"] == "replace_audio_and_video" and body["start_time"] == 0


async def test_audio_reference_goes_to_audio_to_video(provider: LtxProvider, fake: LtxFake) -> None:
    audio = voice(3.0)
    job = make_job(width=1080, height=1920, references=(audio, FIRST), provider_params={"guidance_scale": 7})
    accepted = await provider.submit(job)
    assert accepted.native_id.startswith("audio-to-video/")
    rec = created(fake)
    assert rec["path"] == "/v2/audio-to-video"
    assert rec["json"] == {
        "guidance_scale": 7,
        "model": "ltx-2-3-pro",
        "resolution": "1080x1920",
        "audio_uri": data_uri(audio.data, "audio/wav"),
        "image_uri": FIRST.data_url(),
        "prompt": "the lantern flickers and the fox turns its head",
    }
    await run_to_mp4(provider, job, accepted.native_id)


@pytest.mark.parametrize(
    ("job", "needle"),
    [
        (make_job(operation="extend", references=(source(mp4(seconds=2.0)),)), "at least 73 frames, got 48"),
        (make_job(operation="extend", references=(source(mp4(width=64, height=64)),)), "16:9 or 9:16"),
        (make_job(operation="extend", references=(source(),), provider_params={"context": 19}, duration=5), "505"),
        (make_job(references=(voice(1.0),)), "between 2 and 20 seconds, got 1.00"),
        (make_job(operation="edit", references=(source(),), provider_params={"mode": "swap"}), "mode: swap"),
    ],
)
async def test_what_ltx_refuses_is_a_final_refusal(
    provider: LtxProvider, fake: LtxFake, job: JobSpec, needle: str
) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(job)
    assert not info.value.retryable and info.value.status_code == 400
    assert needle in info.value.message
    assert fake.jobs == {}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"operation": "extend", "provider_model": "ltx-2-3-fast", "references": (source(),)}, "runs on ltx-2-3-pro"),
        ({"operation": "extend", "duration": 25, "references": (source(),)}, "2 to 20 s"),
        ({"operation": "extend", "references": (source(), FIRST)}, "takes no first_frame"),
        ({"operation": "edit", "references": (source(), voice())}, "takes no audio reference"),
        ({"operation": "edit", "references": ()}, "exactly one source video"),
        ({"references": (source(),)}, "not video source"),
        ({"references": (voice(), voice())}, "one audio reference"),
        ({"references": (voice(),), "resolution": "4K", "width": 3840, "height": 2160}, "1080p video only"),
    ],
)
async def test_operations_ltx_cannot_run_fail_over_without_a_call(
    provider: LtxProvider, fake: LtxFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)
