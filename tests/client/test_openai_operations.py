"""The unmodified ``openai`` package's remix, edit and extend against the ``/openai/v1`` mount: each is
an ``edit`` or ``extend`` job on a source video (one of the caller's completed videos by id, read from
the store, or an uploaded file), on models declared in the config file and run by the built-in
provider. The jobs are the native mount's: their stored spec says what they do."""

from __future__ import annotations

import io
import json
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import av
import httpx
import openai
import pytest
from helpers.backends import rows
from helpers.gateway import GatewayProcess, configured_gateway, wait_status
from helpers.media import mp4_bytes
from openai.types import Video

CONFIG = """
[models."acme/ops"]
durations = [1, 2]
extend_durations = [1, 2]
resolutions = ["360p"]
aspect_ratios = ["16:9"]
default_resolution = "360p"
default_aspect_ratio = "16:9"
video_reference_roles = ["source"]
operations = ["extend", "edit"]
input_video_seconds = [0.5, 5]
expected_seconds = 2
providers = [{ name = "vidgate", model = "procedural-v1", media = ["video"] }]

[models."acme/plain"]
durations = [1]
resolutions = ["360p"]
aspect_ratios = ["16:9"]
default_resolution = "360p"
default_aspect_ratio = "16:9"
providers = [{ name = "vidgate", model = "procedural-v1" }]
"""
MODEL = "acme/ops"
TERMINAL = {"completed", "failed", "cancelled", "expired"}

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    proc = configured_gateway(tmp_path_factory.mktemp("openai-operations"), CONFIG)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def key(gw: GatewayProcess) -> str:
    return gw.new_key()


@pytest.fixture(scope="module")
def oai(gw: GatewayProcess, key: str) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=f"{gw.base_url}/openai/v1", api_key=key, max_retries=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield client
    client.close()


@pytest.fixture(scope="module")
def api(gw: GatewayProcess, key: str) -> Iterator[httpx.Client]:
    with gw.client(key) as client:
        yield client


@pytest.fixture(scope="module")
def source(oai: openai.OpenAI, api: httpx.Client) -> str:
    """A completed 1-second 160x90 video of the operations model, made through the OpenAI mount."""
    video = oai.videos.create(model=MODEL, prompt=prompt(), seconds="1", size="160x90")
    assert wait_status(api, video.id, TERMINAL)["status"] == "completed"
    return video.id


def prompt() -> str:
    return f"the tide comes in {uuid.uuid4().hex[:8]}"


def spec_of(gw: GatewayProcess, job_id: str) -> dict[str, Any]:
    (text,) = rows(gw, "SELECT spec FROM jobs WHERE id = ?", job_id)[0]
    spec: dict[str, Any] = json.loads(text)
    return spec


def frame_size(data: bytes) -> tuple[int, int]:
    with av.open(io.BytesIO(data)) as c:
        return c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height


def test_remix_is_an_edit_of_the_video_on_its_model(
    oai: openai.OpenAI, api: httpx.Client, gw: GatewayProcess, source: str
) -> None:
    remix = oai.videos.remix(source, prompt=prompt())
    assert remix.id.startswith("vid_") and remix.id != source and remix.remixed_from_video_id == source
    assert (remix.model, remix.status, remix.seconds, remix.size) == (MODEL, "queued", "1", "160x90")
    spec = spec_of(gw, remix.id)
    assert spec["operation"] == "edit" and spec["duration"] == 1 and (spec["width"], spec["height"]) == (160, 90)
    assert spec["references"] == [{"kind": "video", "asset": source, "role": "source", "url": ""}]
    assert oai.videos.retrieve(remix.id).remixed_from_video_id == source
    assert oai.videos.retrieve(source).remixed_from_video_id is None
    done = wait_status(api, remix.id, TERMINAL)
    assert done["status"] == "completed", done
    assert frame_size(oai.videos.download_content(remix.id).read()) == (160, 90)
    poster = oai.videos.download_content(remix.id, variant="thumbnail").read()
    sheet = oai.videos.download_content(remix.id, variant="spritesheet").read()
    assert poster[:4] == b"RIFF" and poster[8:12] == b"WEBP" and sheet[:3] == b"\xff\xd8\xff"


def by_id(oai: openai.OpenAI, path: str, **body: Any) -> Video:
    """A JSON body naming the video ``{id}``: this openai release's ``edit`` and ``extend`` take only
    a file for ``video`` (its multipart encoder refuses the object), so the client's own ``post``."""
    return oai.post(f"/videos/{path}", cast_to=Video, body=body)


def test_edit_of_a_video_by_id_and_of_an_uploaded_file(
    oai: openai.OpenAI, api: httpx.Client, gw: GatewayProcess, source: str
) -> None:
    edit = by_id(oai, "edits", prompt=prompt(), video={"id": source})
    assert edit.remixed_from_video_id == source and edit.model == MODEL and edit.size == "160x90"
    assert spec_of(gw, edit.id)["operation"] == "edit"
    form = api.post("/openai/v1/videos/edits", files={"prompt": (None, prompt()), "video[id]": (None, source)})
    assert form.status_code == 200 and form.json()["remixed_from_video_id"] == source, form.text

    clip = mp4_bytes(1.5)
    uploaded = oai.videos.edit(prompt=prompt(), video=("clip.mp4", clip, "video/mp4"), extra_body={"model": MODEL})
    assert uploaded.model == MODEL and uploaded.remixed_from_video_id is None
    spec = spec_of(gw, uploaded.id)
    (ref,) = spec["references"]
    assert spec["operation"] == "edit" and (ref["kind"], ref["role"]) == ("video", "source")
    assert ref["url"].startswith("data:video/mp4;base64,")


def test_extend_adds_the_seconds_asked_for(
    oai: openai.OpenAI, api: httpx.Client, gw: GatewayProcess, source: str
) -> None:
    more = by_id(oai, "extensions", prompt=prompt(), seconds="2", video={"id": source})
    assert more.remixed_from_video_id == source and more.size == "160x90"
    spec = spec_of(gw, more.id)
    assert (spec["operation"], spec["duration"]) == ("extend", 2)
    assert wait_status(api, more.id, TERMINAL)["status"] == "completed"
    with pytest.raises(openai.BadRequestError) as no_seconds:
        by_id(oai, "extensions", prompt=prompt(), video={"id": source})
    assert no_seconds.value.body["param"] == "seconds"
    with pytest.raises(openai.BadRequestError) as too_long:
        oai.videos.extend(
            prompt=prompt(), seconds="12", video=("clip.mp4", mp4_bytes(1), "video/mp4"), extra_body={"model": MODEL}
        )
    assert too_long.value.body["param"] == "duration" and "supported: 1, 2" in too_long.value.body["message"]
    uploaded = oai.videos.extend(
        prompt=prompt(), seconds="1", video=("clip.mp4", mp4_bytes(1), "video/mp4"), extra_body={"model": MODEL}
    )
    assert (spec_of(gw, uploaded.id)["operation"], uploaded.model) == ("extend", MODEL)


def test_refusals_are_openai_errors(oai: openai.OpenAI, gw: GatewayProcess, api: httpx.Client, source: str) -> None:
    with pytest.raises(openai.NotFoundError):
        oai.videos.remix("vid_01JZZZZZZZZZZZZZZZZZZZZZZZ", prompt=prompt())
    stranger = openai.OpenAI(base_url=f"{gw.base_url}/openai/v1", api_key=gw.new_key(), max_retries=0)
    with pytest.raises(openai.NotFoundError):
        stranger.videos.remix(source, prompt=prompt())  # another owner's video is no video at all
    with pytest.raises(openai.NotFoundError):
        by_id(stranger, "edits", prompt=prompt(), video={"id": source})
    stranger.close()

    plain = oai.videos.create(model="acme/plain", prompt=prompt(), seconds="1", size="160x90")
    assert wait_status(api, plain.id, TERMINAL)["status"] == "completed"
    with pytest.raises(openai.BadRequestError) as cannot:
        oai.videos.remix(plain.id, prompt=prompt())
    assert cannot.value.body["code"] == "unsupported_parameter"
    assert "acme/plain does not extend or edit videos" in cannot.value.body["message"]

    running = oai.videos.create(model=MODEL, prompt=prompt(), seconds="2", size="1920x1080")
    with pytest.raises(openai.BadRequestError) as unfinished:
        oai.videos.remix(running.id, prompt=prompt())
    assert "only a completed video" in unfinished.value.body["message"]
    api.post(f"/v1/videos/{running.id}/cancel")

    with pytest.raises(openai.BadRequestError) as stray:
        oai.videos.remix(source, prompt=prompt(), extra_body={"seconds": "4"})
    assert stray.value.body["param"] == "seconds"
    raw = api.post("/openai/v1/videos/edits", json={"prompt": "p"})
    assert raw.status_code == 400 and raw.json()["error"]["param"] == "video"
