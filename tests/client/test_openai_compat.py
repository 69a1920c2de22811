"""The unmodified ``openai`` package against the gateway's ``/openai/v1`` mount."""

from __future__ import annotations

import base64
import io
import time
import uuid
import warnings
from collections.abc import Iterator

import av
import httpx
import numpy as np
import openai
import pytest
from helpers.gateway import GatewayProcess, wait_status
from helpers.media import png_bytes

MODEL = "vidgate/procedural"

# The openai package marks its video methods deprecated (the hosted Sora API is scheduled to close).
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def prompt() -> str:
    return f"a kite over the dunes {uuid.uuid4().hex[:8]}"


@pytest.fixture
def oai(gateway: GatewayProcess, key: str) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=f"{gateway.base_url}/openai/v1", api_key=key, max_retries=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield client
    client.close()


def decode(data: bytes) -> tuple[int, int, float]:
    with av.open(io.BytesIO(data)) as c:
        v = c.streams.video[0]
        return v.codec_context.width, v.codec_context.height, float(c.duration / 1_000_000)


def test_create_retrieve_download_delete(oai: openai.OpenAI, api: httpx.Client) -> None:
    video = oai.videos.create(model=MODEL, prompt=prompt(), seconds="1", size="160x90")
    assert video.id.startswith("vid_") and video.object == "video" and video.model == MODEL
    assert video.status == "queued" and video.progress == 0 and video.seconds == "1" and video.size == "160x90"
    assert video.error is None and video.remixed_from_video_id is None and video.completed_at is None

    ours = api.get(f"/v1/videos/{video.id}")  # the same job through the native mount, same key
    assert ours.status_code == 200 and ours.json()["model"] == MODEL
    wait_status(api, video.id, {"completed"})

    got = oai.videos.retrieve(video.id)
    assert got.status == "completed" and got.progress == 100 and got.completed_at >= got.created_at
    assert got.expires_at > time.time() + 86_400  # the retention horizon, not a signed-link expiry

    data = oai.videos.download_content(video.id).read()
    assert data == oai.videos.download_content(video.id, variant="video").content
    assert data[4:8] == b"ftyp" and decode(data) == (160, 90, pytest.approx(1.0, abs=0.05))
    with pytest.raises(openai.BadRequestError) as bad_variant:
        oai.videos.download_content(video.id, variant="poster")  # type: ignore[arg-type]
    assert bad_variant.value.body["param"] == "variant"

    deleted = oai.videos.delete(video.id)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    with pytest.raises(openai.NotFoundError):
        oai.videos.retrieve(video.id)
    assert api.get(f"/v1/videos/{video.id}").status_code == 404


def test_create_and_poll_follows_the_poll_after_header(oai: openai.OpenAI) -> None:
    running = oai.videos.create(model=MODEL, prompt=prompt(), seconds="8", size="640x360")  # about 1.5 s of render
    raw = oai.videos.with_raw_response.retrieve(running.id)
    assert raw.parse().status in ("queued", "in_progress")
    assert int(raw.headers["openai-poll-after-ms"]) >= 1000  # from our poll_after_seconds
    assert oai.videos.poll(running.id).status == "completed"
    assert "openai-poll-after-ms" not in oai.videos.with_raw_response.retrieve(running.id).headers

    t0 = time.monotonic()
    done = oai.videos.create_and_poll(model=MODEL, prompt=prompt(), seconds="1", size="160x90")
    assert done.status == "completed" and done.progress == 100 and time.monotonic() - t0 < 30
    assert decode(oai.videos.download_content(done.id).read())[:2] == (160, 90)


def test_list_pages_with_cursors(oai: openai.OpenAI, gateway: GatewayProcess) -> None:
    key = gateway.new_key()
    client = openai.OpenAI(base_url=f"{gateway.base_url}/openai/v1", api_key=key, max_retries=0)
    ids = [client.videos.create(model=MODEL, prompt=prompt(), seconds="1", size="160x90").id for _ in range(3)]
    page = client.videos.list(limit=2)
    assert [v.id for v in page.data] == ids[::-1][:2] and page.has_more and page.last_id == ids[1]
    assert [v.id for v in client.videos.list(limit=2)] == ids[::-1]  # auto-pagination follows `after`
    assert [v.id for v in client.videos.list(limit=10, order="asc").data] == ids
    assert [v.id for v in client.videos.list(after=ids[2], limit=10).data] == ids[1::-1]
    with httpx.Client(base_url=gateway.base_url, headers={"Authorization": f"Bearer {key}"}) as api:
        for vid in ids:
            wait_status(api, vid, {"completed"})
        raw = api.get("/openai/v1/videos", params={"limit": 2}).json()
        assert raw["object"] == "list" and raw["first_id"] == ids[2] and raw["last_id"] == ids[1] and raw["has_more"]
    client.close()


def test_jobs_are_shared_across_mounts(oai: openai.OpenAI, api: httpx.Client) -> None:
    r = api.post("/v1/videos", json={"model": MODEL, "prompt": prompt(), "duration": 1, "size": "160x90"})
    assert r.status_code == 202
    native = r.json()["id"]
    seen = oai.videos.retrieve(native)
    assert seen.id == native and seen.size == "160x90" and seen.seconds == "1"
    assert native in {v.id for v in oai.videos.list(limit=100).data}

    long = api.post("/v1/videos", json={"model": MODEL, "prompt": prompt(), "duration": 20, "size": "1920x1080"})
    long_id = long.json()["id"]
    wait_status(api, long_id, {"processing"}, timeout=30)
    assert oai.videos.retrieve(long_id).status == "in_progress"
    with pytest.raises(openai.ConflictError):
        oai.videos.download_content(long_id)
    assert api.post(f"/v1/videos/{long_id}/cancel").status_code == 200
    cancelled = oai.videos.retrieve(long_id)
    assert cancelled.status == "failed" and cancelled.error.code == "cancelled"


def first_frame_colour(data: bytes) -> np.ndarray:
    with av.open(io.BytesIO(data)) as c:
        frame = next(c.decode(video=0)).to_ndarray(format="rgb24")
    return frame[8:-8, 8:-8].reshape(-1, 3).mean(axis=0)


def test_first_frame_upload_and_idempotency(oai: openai.OpenAI, api: httpx.Client) -> None:
    text = prompt()
    colour = (200, 40, 120)
    image = ("first.png", png_bytes(colour, 160, 90), "image/png")
    idem = {"Idempotency-Key": f"oai-{text}"}
    first = oai.videos.create(
        model=MODEL, prompt=text, seconds="1", size="160x90", input_reference=image, extra_headers=idem
    )
    again = oai.videos.with_raw_response.create(
        model=MODEL, prompt=text, seconds="1", size="160x90", input_reference=image, extra_headers=idem
    )
    assert again.parse().id == first.id and again.headers["idempotent-replayed"] == "true"
    with pytest.raises(openai.ConflictError):  # same key, different request
        oai.videos.create(model=MODEL, prompt=text, seconds="2", size="160x90", extra_headers=idem)
    wait_status(api, first.id, {"completed"})
    assert np.abs(first_frame_colour(oai.videos.download_content(first.id).read()) - colour).max() < 6

    # The reference-object form: the openai package cannot send it yet, so send OpenAI's wire format by hand.
    url = "data:image/png;base64," + base64.b64encode(image[1]).decode()
    as_json = api.post(
        "/openai/v1/videos",
        json={
            "model": MODEL,
            "prompt": prompt(),
            "seconds": "1",
            "size": "160x90",
            "input_reference": {"image_url": url},
        },
    )
    as_form = api.post(
        "/openai/v1/videos",
        files={"input_reference[image_url]": (None, url)},
        data={"model": MODEL, "prompt": prompt(), "seconds": "1", "size": "160x90"},
    )
    by_id = api.post(
        "/openai/v1/videos",
        data={"model": MODEL, "prompt": prompt()},
        files={"input_reference[file_id]": (None, "file_123")},
    )
    assert as_json.status_code == as_form.status_code == 200, (as_json.text, as_form.text)
    assert by_id.status_code == 400 and by_id.json()["error"]["param"] == "input_reference"
    for r in (as_json, as_form):
        done = wait_status(api, r.json()["id"], {"completed"})
        assert np.abs(first_frame_colour(api.get(done["content_url"]).content) - colour).max() < 6


def test_models_and_errors_in_openai_shape(oai: openai.OpenAI, gateway: GatewayProcess) -> None:
    catalogue = httpx.get(f"{gateway.base_url}/v1/videos/models", headers={"Authorization": f"Bearer {oai.api_key}"})
    if "openai/sora-2" in {m["id"] for m in catalogue.json()["data"]}:
        # The bare OpenAI name reaches our catalogue entry (whether a provider is configured for it or not).
        try:
            assert oai.videos.create(prompt=prompt(), model="sora-2", seconds="4").model == "openai/sora-2"
        except openai.APIStatusError as exc:
            assert exc.status_code == 503 and "openai/sora-2" in exc.message, exc.message
    with pytest.raises(openai.BadRequestError) as info:
        oai.videos.create(prompt=prompt(), model="sora-9")
    body = info.value.body
    assert body["param"] == "model" and "sora-9" in body["message"] and body["type"] == "invalid_request_error"
    assert info.value.code == body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as unknown:
        oai.videos.create(prompt=prompt(), model="nobody/nothing")
    assert unknown.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as seconds:
        oai.videos.create(model=MODEL, prompt=prompt(), seconds="four")  # type: ignore[arg-type]
    assert seconds.value.body["param"] == "seconds"
    with pytest.raises(openai.BadRequestError) as size:
        oai.videos.create(model=MODEL, prompt=prompt(), seconds="1", size="7x7")  # type: ignore[arg-type]
    assert size.value.body["param"] == "size"
    bad = openai.OpenAI(base_url=f"{gateway.base_url}/openai/v1", api_key="vg_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.videos.list()
    broke = openai.OpenAI(base_url=f"{gateway.base_url}/openai/v1", api_key=gateway.new_key(balance=0.0), max_retries=0)
    with pytest.raises(openai.APIStatusError) as funds:
        broke.videos.create(model=MODEL, prompt=prompt(), seconds="1", size="160x90")
    assert funds.value.status_code == 402 and funds.value.body["code"] == "insufficient_funds"
