"""GeminiOmniProvider against the fake Interactions endpoint on loopback: what is particular to Gemini
Omni Flash (the faults every adapter meets are in ``test_adapter_faults``)."""

from __future__ import annotations

import base64
import io

import av
import httpx
import pytest
from fakes.gemini_omni_fake import GeminiOmniFake
from fakes.server import small_mp4

from providers.harness import PNG, adapter_fixtures, created, job_maker, read_all, refused_before_a_call
from providers.harness import poll_until_done as poll_to_end
from providers.wiring import ADAPTER_CASES, WIRINGS
from vidgate.gateway.providers.base import PollFailed, ReferenceImage, Rejected, RemoteProvider
from vidgate.gateway.providers.gemini_omni import MAX_INLINE_VIDEO, GeminiOmniProvider

WIRE = WIRINGS["gemini-omni"]
make_job = job_maker(**ADAPTER_CASES["gemini-omni"].job)
fake, provider = adapter_fixtures(WIRE)
AUTH = {"x-goog-api-key": "g-test"}


def image(role: str) -> ReferenceImage:
    return ReferenceImage(role=role, url=f"https://example.test/{role}.png", data=PNG, mime_type="image/png")


def source(data: bytes | None = None) -> ReferenceImage:
    clip = small_mp4() if data is None else data
    return ReferenceImage(role="source", url="", data=clip, mime_type="video/mp4", kind="video")


def frames(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


async def test_text_to_video_runs_in_the_background_to_a_downloaded_video(
    provider: GeminiOmniProvider, fake: GeminiOmniFake
) -> None:
    assert isinstance(provider, RemoteProvider)
    assert (provider.name, provider.cancellable, provider.reconcile) == ("gemini-omni", True, "none")
    job = make_job()
    accepted = await provider.submit(job)
    assert fake.interactions[accepted.native_id].status == "in_progress"

    rec = created(fake)
    assert rec["path"] == "/v1beta/interactions" and rec["headers"]["x-goog-api-key"] == "g-test"
    assert rec["json"] == {
        "model": "gemini-omni-1.1-flash",
        "input": "a marble rolling down a wooden chain-reaction track",
        "background": True,
        "response_format": {
            "type": "video",
            "delivery": "uri",
            "aspect_ratio": "16:9",
            "resolution": "720p",
            "duration": "8s",
        },
        "generation_config": {"video_config": {"task": "text_to_video"}},
    }

    seen = await poll_to_end(provider, job, accepted.native_id)
    assert [s.status for s in seen] == ["processing", "processing", "completed"]
    (out,) = seen[-1].outputs
    assert out.url.endswith(":download?alt=media") and out.headers == AUTH
    data = await read_all(provider, out)
    assert data == small_mp4() and frames(data) == 24
    assert fake.requests[-1]["headers"]["x-goog-api-key"] == "g-test"
    assert await provider.cancel(accepted.native_id) is False  # finished: nothing left to stop


async def test_a_first_frame_or_reference_images_go_before_the_prompt(
    provider: GeminiOmniProvider, fake: GeminiOmniFake
) -> None:
    inline = {"type": "image", "data": base64.b64encode(PNG).decode(), "mime_type": "image/png"}
    text = {"type": "text", "text": "a marble rolling down a wooden chain-reaction track"}
    await provider.submit(make_job(references=(image("first_frame"),), resolution="4K", width=3840, height=2160))
    body = created(fake)["json"]
    assert body["input"] == [inline, text]
    assert body["generation_config"]["video_config"]["task"] == "image_to_video"
    assert body["response_format"]["resolution"] == "4k"

    fake.requests.clear()
    await provider.submit(make_job(references=(image("reference"), image("reference")), aspect_ratio="9:16"))
    body = created(fake)["json"]
    assert body["input"] == [inline, inline, text] and body["response_format"]["aspect_ratio"] == "9:16"
    assert body["generation_config"]["video_config"]["task"] == "reference_to_video"


async def test_an_edit_sends_the_source_video_inline_and_keeps_its_length(
    provider: GeminiOmniProvider, fake: GeminiOmniFake
) -> None:
    job = make_job(operation="edit", references=(source(), image("reference")))
    accepted = await provider.submit(job)
    body = created(fake)["json"]
    video = {"type": "video", "data": base64.b64encode(small_mp4()).decode(), "mime_type": "video/mp4"}
    assert body["input"][1] == video and body["input"][-1]["type"] == "text"
    assert body["generation_config"]["video_config"]["task"] == "edit"
    assert "duration" not in body["response_format"]
    final = (await poll_to_end(provider, job, accepted.native_id))[-1]
    assert frames(await read_all(provider, final.outputs[0])) == 24


async def test_an_extend_asks_for_the_seconds_it_adds(provider: GeminiOmniProvider, fake: GeminiOmniFake) -> None:
    job = make_job(operation="extend", duration=6, references=(source(),))
    accepted = await provider.submit(job)
    body = created(fake)["json"]
    assert body["generation_config"]["video_config"]["task"] == "extend"
    assert body["response_format"]["duration"] == "6s" and [b["type"] for b in body["input"]] == ["video", "text"]
    assert (await poll_to_end(provider, job, accepted.native_id))[-1].status == "completed"


async def test_cancel_stops_a_running_interaction(provider: GeminiOmniProvider, fake: GeminiOmniFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    assert await provider.poll(job, accepted.native_id) == await provider.poll(job, accepted.native_id)
    assert await provider.cancel(accepted.native_id) is True
    assert fake.requests[-1]["path"] == f"/v1beta/interactions/{accepted.native_id}/cancel"
    assert fake.interactions[accepted.native_id].status == "cancelled"
    assert (await provider.poll(job, accepted.native_id)).status == "cancelled"
    assert await provider.cancel(accepted.native_id) is False  # the upstream refuses a second one


async def test_a_cancel_that_may_pass_is_raised(provider: GeminiOmniProvider, fake: GeminiOmniFake) -> None:
    accepted = await provider.submit(make_job())
    fake.faults.add("cancel", "503")
    with pytest.raises(PollFailed) as info:
        await provider.cancel(accepted.native_id)
    assert info.value.retryable and info.value.status_code == 503
    assert fake.interactions[accepted.native_id].status == "in_progress"


async def test_an_inline_video_is_read_from_the_interaction(
    provider: GeminiOmniProvider, fake: GeminiOmniFake, root: str
) -> None:
    """Without ``delivery: uri`` the API answers the bytes inline (up to 4 MB); the adapter reads those too."""
    body = {"model": "gemini-omni-1.1-flash", "input": "a kite", "background": True}
    async with httpx.AsyncClient(base_url=f"{root}/v1beta", headers=AUTH) as client:
        native = (await client.post("/interactions", json=body)).json()["id"]
    final = (await poll_to_end(provider, make_job(), native))[-1]
    (out,) = final.outputs
    assert out.url == "" and out.data == small_mp4() and await read_all(provider, out) == small_mp4()


def test_the_key_goes_only_to_the_api_host() -> None:
    adapter = GeminiOmniProvider(WIRE.config("https://generativelanguage.googleapis.com"))
    steps = [
        {"type": "user_input", "content": [{"type": "text", "text": "x"}]},
        {
            "type": "model_output",
            "content": [
                {"type": "text", "text": "here it is"},
                {"type": "video", "uri": "https://generativelanguage.googleapis.com/v1beta/files/a1:download"},
                {"type": "video", "uri": "https://cdn.example.test/v.mp4", "mime_type": "video/webm"},
            ],
        },
    ]
    first, second = adapter._outputs(steps)
    assert first.url.endswith("/files/a1:download?alt=media") and first.headers == {"x-goog-api-key": "g-test"}
    assert (second.url, second.headers, second.mime_type) == ("https://cdn.example.test/v.mp4", {}, "video/webm")


async def test_an_unknown_status_is_polled_again(provider: GeminiOmniProvider, fake: GeminiOmniFake) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    fake.interactions[accepted.native_id].status = "paused"
    with pytest.raises(PollFailed) as info:
        await provider.poll(job, accepted.native_id)
    assert info.value.retryable and "paused" in info.value.message


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"seed": 3}, "takes no seed"),
        ({"negative_prompt": "blur"}, "negative prompt"),
        ({"audio": False}, "always has audio"),
        ({"sample_count": 2}, "one video"),
        ({"duration": 12}, "3 to 10 s"),
        ({"resolution": "480p", "width": 854, "height": 480}, "not 480p"),
        ({"references": (image("last_frame"),)}, "not last_frame"),
        ({"references": (image("first_frame"), image("reference"))}, "not both"),
        ({"references": tuple(image("reference") for _ in range(11))}, "at most 10 images"),
        ({"references": (source(),)}, "only to edit or extend"),
        ({"operation": "extend", "references": (source(), image("reference"))}, "no images"),
        ({"operation": "edit"}, "needs a source video"),
        ({"operation": "edit", "references": (source(b"\0" * (MAX_INLINE_VIDEO + 1)),)}, "at most"),
    ],
)
async def test_unsupported_inputs_fail_over_without_a_call(
    provider: GeminiOmniProvider, fake: GeminiOmniFake, overrides: dict, needle: str
) -> None:
    await refused_before_a_call(provider, fake, make_job(**overrides), needle)
    assert await provider.find(make_job(**overrides)) is None  # never sent, so surely absent


async def test_a_refused_body_is_not_retryable(provider: GeminiOmniProvider) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(provider_params={"temperature": 1.0}))
    assert not info.value.retryable and info.value.status_code == 400
    assert info.value.message == "Unknown field: temperature"


async def test_fake_speaks_the_documented_shapes(fake: GeminiOmniFake, root: str) -> None:
    video = {"type": "video", "delivery": "uri"}
    async with httpx.AsyncClient(base_url=f"{root}/v1beta", headers=AUTH) as client:
        r = await client.post(
            "/interactions",
            json={"model": "gemini-omni-1.1-flash", "input": "x", "response_format": {**video, "duration": 8}},
        )
        assert r.status_code == 400 and set(r.json()["error"]) == {"code", "message"}
        assert r.json()["error"]["code"] == "invalid_request"  # a bare number is not a Duration
        edit = {"video_config": {"task": "edit"}}
        r = await client.post(
            "/interactions",
            json={"model": "gemini-omni-1.1-flash", "input": "x", "generation_config": edit},
        )
        assert r.status_code == 400 and "needs an input video" in r.json()["error"]["message"]
        r = await client.post("/interactions", json={"model": "veo-3.1-generate-preview", "input": "x"})
        assert r.status_code == 404
        r = await client.get("/interactions/not%20an%20id")
        assert r.status_code == 400 and r.json()["error"]["message"].startswith("Invalid interaction name")
        r = await client.post("/interactions", json={"model": "gemini-omni-1.1-flash", "input": "x"})
        assert r.status_code == 200 and r.json()["status"] == "completed"  # not in the background: it waited
        assert r.json()["steps"][-1]["content"][0]["data"] == base64.b64encode(small_mp4()).decode()


async def test_a_source_that_is_not_a_video_is_refused_upstream(
    provider: GeminiOmniProvider, fake: GeminiOmniFake
) -> None:
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job(operation="edit", references=(source(PNG),)))
    assert not info.value.retryable and info.value.status_code == 400
    assert "could not be processed" in info.value.message and fake.interactions == {}
