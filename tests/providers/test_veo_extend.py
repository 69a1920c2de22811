"""Veo 3.1 extending a video it made, on the Gemini API and on Vertex AI, each against its fake on
loopback: the source video goes inline in each API's own field names, with no duration (Veo adds 7 s)
and at 720p, and what Veo cannot extend is refused before any call."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from typing import Any

import av
import pytest
from fakes.server import small_mp4
from msgspec import UNSET

from providers.harness import PNG, job_maker, read_all
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import WIRINGS, Wiring, record
from vidgate.gateway.catalog.catalog import load_catalog
from vidgate.gateway.providers.base import ReferenceImage, Rejected, RemoteProvider
from vidgate.gateway.providers.http import request

SOURCE = ReferenceImage(role="source", url="", data=small_mp4(), mime_type="video/mp4", kind="video")
FIRST = ReferenceImage(role="first_frame", url="https://example.test/f.png", data=PNG, mime_type="image/png")
MODELS = {"google": "veo-3.1-generate-preview", "google-vertex": "veo-3.1-generate-001"}
VIDEO_FIELDS = {
    "google": {"encodedVideo": base64.b64encode(small_mp4()).decode(), "encoding": "video/mp4"},
    "google-vertex": {"bytesBase64Encoded": base64.b64encode(small_mp4()).decode(), "mimeType": "video/mp4"},
}


@pytest.fixture(params=sorted(MODELS))
def wire(request: pytest.FixtureRequest) -> Wiring:
    return WIRINGS[request.param]


@pytest.fixture
def fake(wire: Wiring) -> Any:
    return wire.fake(polls_to_complete=2)


@pytest.fixture
async def provider(wire: Wiring, root: str) -> AsyncIterator[RemoteProvider]:
    adapter = wire.adapter(wire.config(root, timeout_seconds=5))
    yield adapter
    await adapter.aclose()


def extend_job(wire: Wiring, **overrides: Any) -> Any:
    make = job_maker(
        model="google/veo-3.1",
        provider_model=MODELS[wire.name],
        prompt="the lighthouse beam sweeps on as night falls",
        duration=7,
        width=1280,
        height=720,
        resolution="720p",
        aspect_ratio="16:9",
        audio=True,
        operation="extend",
        references=(SOURCE,),
    )
    return make(**overrides)


def creates(fake: Any) -> list[Any]:
    return [
        r for r in fake.requests if record(r, "method") == "POST" and record(r, "path").endswith(":predictLongRunning")
    ]


async def test_an_extend_sends_the_source_video_and_no_duration(wire: Wiring, fake: Any, provider: Any) -> None:
    job = extend_job(wire)
    accepted = await provider.submit(job)
    (sent,) = creates(fake)
    body = record(sent, "json")
    assert body["instances"] == [{"prompt": job.prompt, "video": VIDEO_FIELDS[wire.name]}]
    params = body["parameters"]
    assert params["resolution"] == "720p" and "durationSeconds" not in params
    final = (await poll_to_end(provider, job, accepted.native_id))[-1]
    assert final.status == "completed"
    data = await read_all(provider, final.outputs[0])
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 24


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"provider_model": "veo-3.0-generate-001"}, "Veo 3.1 only"),
        ({"resolution": "1080p", "width": 1920, "height": 1080}, "720p only"),
        ({"references": (SOURCE, FIRST)}, "without first_frame"),
        ({"references": ()}, "needs a source video"),
        ({"operation": "edit"}, "cannot edit"),
        ({"operation": UNSET}, "not source"),  # a source video without an extend is not generated from
    ],
)
async def test_what_veo_cannot_extend_is_refused_before_any_call(
    wire: Wiring, fake: Any, provider: Any, overrides: dict[str, Any], needle: str
) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(extend_job(wire, **overrides))
    assert info.value.retryable and info.value.code == "unsupported_parameter" and needle in info.value.message
    assert fake.requests == []


async def test_the_fakes_refuse_an_extend_veo_cannot_make(wire: Wiring, fake: Any, provider: Any) -> None:
    """The fakes check the extend as the APIs do: an older Veo or another resolution is a 400."""
    job = extend_job(wire)
    body = provider._body(job) if wire.name == "google" else provider.build_request(job)
    body["parameters"]["resolution"] = "1080p"
    body["parameters"]["durationSeconds"] = 8
    path = f"/models/{MODELS[wire.name]}:predictLongRunning"
    if wire.name == "google-vertex":
        path = f"/{provider.model_path(MODELS[wire.name])}:predictLongRunning"
    headers = {"x-goog-api-key": wire.key} if wire.name == "google" else {"Authorization": f"Bearer {wire.key}"}
    with pytest.raises(Rejected) as info:
        await request(provider._client, "POST", path, phase="submit", json=body, headers=headers)
    assert info.value.status_code == 400 and "720p only" in info.value.message


def test_the_catalogue_offers_the_extend_only_through_google() -> None:
    model = next(m for m in load_catalog().models if m.id == "google/veo-3.1")
    assert model.operations == ("extend",) and model.extend_durations == (7,)
    takes = {p.name for p in model.providers if "video:source" not in p.unsupported}
    assert takes == {"google", "google-vertex"}
