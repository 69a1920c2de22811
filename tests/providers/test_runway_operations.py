"""RunwayProvider's edit against the fake Runway API on loopback: ``/v1/video_to_video`` with the
source inline, by URL, or uploaded first through ``/v1/uploads``; the exact body sent and the task
run to a decodable MP4."""

from __future__ import annotations

import io
from typing import Any

import av
import pytest
from fakes.media import data_uri, mp4
from fakes.runway_fake import RunwayFake

from providers.harness import PNG, adapter_fixtures, job_maker, read_all
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import WIRINGS
from vidgate.gateway.providers import runway
from vidgate.gateway.providers.base import JobSpec, ReferenceImage, Rejected
from vidgate.gateway.providers.runway import RunwayProvider

WIRE = WIRINGS["runway"]
fake, provider = adapter_fixtures(WIRE)
GENERATION = {
    "model": "runway/aleph-2",
    "provider_model": "aleph2",
    "prompt": "make it snow, keep the camera move",
    "duration": 4,
    "width": 1280,
    "height": 720,
}
make_generation = job_maker(**GENERATION)
make_job = job_maker(**GENERATION, operation="edit")
CLIP = mp4(seconds=4.0)
STYLE = ReferenceImage("reference", "https://example.test/style.png", PNG, "image/png")


def source(data: bytes = CLIP, url: str = "") -> ReferenceImage:
    return ReferenceImage("source", url, data, "video/mp4", kind="video", asset=None if url else "ast_01SRC")


def posts(fake: RunwayFake, path: str) -> list[dict[str, Any]]:
    return [r for r in fake.requests if r["method"] == "POST" and r["path"] == path]


async def test_edit_sends_the_source_inline_and_runs_to_an_mp4(provider: RunwayProvider, fake: RunwayFake) -> None:
    job = make_job(references=(source(),), seed=7)
    accepted = await provider.submit(job)
    (rec,) = posts(fake, "/v1/video_to_video")
    assert rec["headers"]["authorization"] == "Bearer key_test"
    assert rec["json"] == {
        "model": "aleph2",
        "videoUri": data_uri(CLIP, "video/mp4"),
        "promptText": "make it snow, keep the camera move",
        "seed": 7,
    }
    assert posts(fake, "/v1/uploads") == []
    seen = await poll_to_end(provider, job, accepted.native_id)
    assert seen[-1].status == "completed"
    with av.open(io.BytesIO(await read_all(provider, seen[-1].outputs[0]))) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24


async def test_first_aleph_takes_a_ratio_and_one_reference_image(provider: RunwayProvider, fake: RunwayFake) -> None:
    job = make_job(provider_model="gen4_aleph", width=720, height=1280, references=(source(), STYLE))
    await provider.submit(job)
    (rec,) = posts(fake, "/v1/video_to_video")
    assert rec["json"] == {
        "model": "gen4_aleph",
        "videoUri": data_uri(CLIP, "video/mp4"),
        "promptText": "make it snow, keep the camera move",
        "ratio": "720:1280",
        "references": [{"type": "image", "uri": STYLE.data_url()}],
    }


async def test_a_large_source_with_a_url_goes_by_url(
    provider: RunwayProvider, fake: RunwayFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runway, "MAX_VIDEO_DATA_URI", 1000)
    await provider.submit(make_job(references=(source(url="https://media.example.test/in.mp4"),)))
    (rec,) = posts(fake, "/v1/video_to_video")
    assert rec["json"]["videoUri"] == "https://media.example.test/in.mp4"
    assert posts(fake, "/v1/uploads") == []


async def test_a_large_asset_is_uploaded_first(
    provider: RunwayProvider, fake: RunwayFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runway, "MAX_VIDEO_DATA_URI", 1000)
    job = make_job(references=(source(),))
    accepted = await provider.submit(job)
    (start,) = posts(fake, "/v1/uploads")
    assert start["json"] == {"filename": f"{job.job_id}.mp4", "type": "ephemeral"}
    (stored,) = [r for r in fake.requests if r["path"].startswith("/upload-bucket/")]
    assert "authorization" not in stored["headers"] and "x-runway-version" not in stored["headers"]
    (uri,) = fake.uploads
    assert fake.uploads[uri] == CLIP
    (rec,) = posts(fake, "/v1/video_to_video")
    assert rec["json"]["videoUri"] == uri and uri.startswith("runway://")
    assert (await poll_to_end(provider, job, accepted.native_id))[-1].status == "completed"


async def test_a_failed_upload_creates_no_task_and_may_fail_over(
    provider: RunwayProvider, fake: RunwayFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runway, "MAX_VIDEO_DATA_URI", 1000)
    fake.faults.add("upload", "503")
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(references=(source(),)))
    assert info.value.retryable
    assert fake.tasks == {} and posts(fake, "/v1/video_to_video") == []


async def test_a_source_over_30_s_is_refused_by_runway(provider: RunwayProvider, fake: RunwayFake) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(references=(source(mp4(seconds=31.0, fps=4)),)))
    assert not info.value.retryable and info.value.status_code == 400
    assert "at most 30 seconds" in info.value.message
    assert fake.tasks == {}


@pytest.mark.parametrize(
    ("job", "needle"),
    [
        (make_job(operation="extend", references=(source(),)), "no extend"),
        (make_job(provider_model="gen4.5", references=(source(),)), "does not edit"),
        (make_job(references=(source(), STYLE)), "takes no reference"),
        (make_job(provider_model="gen4_aleph", references=(source(), STYLE, STYLE)), "one reference image"),
        (make_job(references=()), "exactly one source video"),
        (make_generation(references=(source(),)), "only edits"),
        (make_generation(provider_model="gen4.5", references=(source(),)), "not video source"),
    ],
)
async def test_what_runway_cannot_edit_fails_over_without_a_call(
    provider: RunwayProvider, fake: RunwayFake, job: JobSpec, needle: str
) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(job)
    assert info.value.retryable and needle in info.value.message
    assert fake.requests == []
