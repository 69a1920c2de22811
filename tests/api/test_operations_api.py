"""Extend and edit jobs through a real ``vidgate serve``, on models declared in the config file and run
by the built-in provider: the listing, the operation resolved and stored, a source named by the id of
one's own earlier video, refusals in the one envelope, routing past a provider that cannot run the
operation, and input lengths checked at create (uploads, stored outputs) and by the worker once it
has fetched the bytes (the job failed as the input's fault, its hold voided)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.server import FakeUpstream
from helpers.backends import rows
from helpers.gateway import GatewayProcess, configured_gateway, wait_status
from helpers.media import mp4_bytes, wav_bytes
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CONFIG = """
[models."acme/ops"]
name = "Operations (test)"
durations = [1, 2]
extend_durations = [1]
default_duration = 1
resolutions = ["360p"]
aspect_ratios = ["16:9"]
default_resolution = "360p"
default_aspect_ratio = "16:9"
input_reference_roles = ["reference"]
video_reference_roles = ["source"]
audio_reference_roles = ["reference"]
operations = ["extend", "edit"]
max_reference_images = 1
input_video_seconds = [0.5, 3]
input_audio_seconds = [0.5, 3]
expected_seconds = 2
providers = [{ name = "vidgate", model = "procedural-v1", media = ["video", "audio"] }]

[models."acme/edit-only-here"]
durations = [1]
resolutions = ["360p"]
aspect_ratios = ["16:9"]
default_resolution = "360p"
default_aspect_ratio = "16:9"
video_reference_roles = ["source"]
operations = ["extend", "edit"]
providers = [{ name = "vidgate", model = "procedural-v1", media = ["video"], unsupported = ["op:extend"] }]

[models."acme/plain"]
durations = [1]
resolutions = ["360p"]
aspect_ratios = ["16:9"]
default_resolution = "360p"
default_aspect_ratio = "16:9"
providers = [{ name = "vidgate", model = "procedural-v1" }]
"""
SMALL = {"duration": 1, "size": "128x72"}
INPUT_FAULTS = ("input_reference_invalid", "input_reference_unavailable")


async def _clip(request: Request) -> Response:
    return Response(mp4_bytes(float(request.path_params["seconds"])), media_type="video/mp4")


async def _voice(request: Request) -> Response:
    return Response(wav_bytes(float(request.path_params["seconds"])), media_type="audio/wav")


@pytest.fixture(scope="module")
def media() -> Iterator[FakeUpstream]:
    """Serves MP4 clips and WAV sounds of any length on loopback: ``/clip/2.mp4``, ``/voice/1.wav``."""
    app = Starlette(routes=[Route("/clip/{seconds}.mp4", _clip), Route("/voice/{seconds}.wav", _voice)])
    with FakeUpstream(app) as server:
        yield server


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    proc = configured_gateway(tmp_path_factory.mktemp("operations"), CONFIG)
    yield proc
    proc.stop()


@pytest.fixture
def api(gw: GatewayProcess) -> Iterator[httpx.Client]:
    with gw.client(gw.new_key()) as client:
        yield client


@pytest.fixture(scope="module")
def made(gw: GatewayProcess) -> Iterator[tuple[httpx.Client, str, str]]:
    """One owner's client with two completed videos of the built-in model: 1 second and 4 seconds."""
    with gw.client(gw.new_key()) as client:
        ids = []
        for seconds in (1, 4):
            r = client.post(
                "/v1/videos", json={"model": "vidgate/procedural", "prompt": "a quay", **SMALL} | {"duration": seconds}
            )
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        for vid in ids:
            assert wait_status(client, vid, {"completed", "failed"})["status"] == "completed"
        yield client, ids[0], ids[1]


def ops(**fields: Any) -> dict[str, Any]:
    return {"model": "acme/ops", "prompt": "the tide comes in", **fields}


def source(**where: str) -> dict[str, Any]:
    return {"type": "video", "role": "source", **where}


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()["error"]
    return body


def stored_spec(gw: GatewayProcess, job_id: str) -> dict[str, Any]:
    (text,) = rows(gw, "SELECT spec FROM jobs WHERE id = ?", job_id)[0]
    spec: dict[str, Any] = json.loads(text)
    return spec


def upload(api: httpx.Client, content: bytes, name: str) -> str:
    r = api.post("/v1/files", files={"file": (name, content, "application/octet-stream")})
    assert r.status_code in (200, 201), r.text
    file_id: str = r.json()["id"]
    return file_id


def test_the_listing_shows_operations_inputs_and_bounds(api: httpx.Client) -> None:
    listed = {m["id"]: m for m in api.get("/v1/videos/models").json()["data"]}
    caps = listed["acme/ops"]["capabilities"]
    assert caps["operations"] == ["generate", "extend", "edit"]
    assert caps["input_reference_roles"] == ["reference"]
    assert caps["video_reference_roles"] == ["source"] and caps["audio_reference_roles"] == ["reference"]
    assert caps["max_reference_images"] == 1 and caps["extend_durations"] == [1]
    assert caps["input_video_seconds"] == [0.5, 3] and caps["input_audio_seconds"] == [0.5, 3]
    assert listed["acme/ops"]["input_types"] == ["text", "image", "video", "audio"]
    detail = listed["acme/ops"]["supported_params_detail"]["operation"]
    assert detail["type"] == "enum" and detail["values"] == ["extend", "edit"]
    here = listed["acme/edit-only-here"]
    assert here["providers"][0]["supported_params_detail"]["operation"]["values"] == ["edit"]
    plain = listed["acme/plain"]["capabilities"]
    assert plain["operations"] == ["generate"] and "max_reference_images" not in plain
    assert plain["video_reference_roles"] == [] and "input_video_seconds" not in plain
    assert "operation" not in listed["acme/plain"]["supported_params"]


def test_an_extend_of_ones_own_video_by_its_id(gw: GatewayProcess, made: tuple[httpx.Client, str, str]) -> None:
    api, short, _ = made
    r = api.post("/v1/videos", json=ops(operation="extend", input_references=[source(asset_id=short)]))
    assert r.status_code == 202, r.text
    spec = stored_spec(gw, r.json()["id"])
    assert spec["operation"] == "extend" and spec["duration"] == 1  # the model's extend duration
    assert spec["references"] == [{"kind": "video", "asset": short, "role": "source", "url": ""}]
    done = wait_status(api, r.json()["id"], {"completed", "failed", "cancelled", "expired"}, timeout=90)
    # The stored output was read and measured (1 s, within 0.5-3 s): whatever the renderer made of it,
    # the input itself was usable.
    assert done["status"] == "completed" or done["error"]["code"] not in INPUT_FAULTS, done


def test_a_source_by_video_id_must_be_ones_own_and_completed(
    gw: GatewayProcess, made: tuple[httpx.Client, str, str], api: httpx.Client
) -> None:
    owner, short, long = made
    theirs = error(api.post("/v1/videos", json=ops(operation="edit", input_references=[source(asset_id=short)])), 400)
    unknown_id = "vid_01JZZZZZZZZZZZZZZZZZZZZZZZ"
    unknown = error(
        api.post("/v1/videos", json=ops(operation="edit", input_references=[source(asset_id=unknown_id)])), 400
    )
    assert theirs["code"] == unknown["code"] == "validation_error"
    assert theirs["param"] == unknown["param"] == "input_references[0].asset_id"
    assert theirs["message"].replace(short, "X") == unknown["message"].replace(unknown_id, "X")  # no existence leak

    too_long = error(
        owner.post("/v1/videos", json=ops(operation="edit", input_references=[source(asset_id=long)])), 400
    )
    assert too_long["param"] == "input_references[0]"
    assert "lasts 4 seconds; acme/ops takes video inputs of 0.5 to 3 seconds" in too_long["message"]

    running = owner.post(
        "/v1/videos", json={"model": "vidgate/procedural", "prompt": "slow", "duration": 20, "size": "1920x1080"}
    )
    assert running.status_code == 202, running.text
    busy = running.json()["id"]
    not_done = error(
        owner.post("/v1/videos", json=ops(operation="edit", input_references=[source(asset_id=busy)])), 400
    )
    assert "only a completed video's output can be an input" in not_done["message"], not_done
    owner.post(f"/v1/videos/{busy}/cancel")

    as_image = {"type": "image", "role": "reference", "asset_id": short}
    wrong_kind = error(owner.post("/v1/videos", json=ops(input_references=[as_image])), 400)
    assert wrong_kind["param"] == "input_references[0].asset_id" and "video's id" in wrong_kind["message"]


def test_operation_rules_over_http(
    gw: GatewayProcess, made: tuple[httpx.Client, str, str], media: FakeUpstream
) -> None:
    api, short, _ = made
    clip = source(url=f"{media.base_url}/clip/2.mp4")
    alone = error(api.post("/v1/videos", json=ops(operation="extend")), 400)
    assert (alone["code"], alone["param"]) == ("validation_error", "operation")
    unsaid = api.post("/v1/videos", json=ops(input_references=[clip]))  # a source alone is edited
    assert unsaid.status_code == 202, unsaid.text
    assert stored_spec(gw, unsaid.json()["id"])["operation"] == "edit"
    api.post(f"/v1/videos/{unsaid.json()['id']}/cancel")
    bad = error(api.post("/v1/videos", json=ops(operation="dub", input_references=[clip])), 400)
    assert bad["param"] == "operation"
    extend_long = error(api.post("/v1/videos", json=ops(operation="extend", duration=2, input_references=[clip])), 400)
    assert extend_long["param"] == "duration" and "supported: 1" in extend_long["message"]
    image = {"type": "image_url", "role": "reference", "image_url": {"url": f"{media.base_url}/a.png"}}
    many = error(api.post("/v1/videos", json=ops(input_references=[image, image])), 400)
    assert many["param"] == "input_references" and "at most 1 reference image (2 given)" in many["message"]
    by_id = source(asset_id=short)
    elsewhere = {"model": "acme/edit-only-here", "prompt": "p", "input_references": [by_id]}
    nobody = error(api.post("/v1/videos", json={**elsewhere, "operation": "extend"}), 503)
    assert nobody["code"] == "no_provider_available" and "does not support op:extend" in nobody["message"]
    edit = api.post("/v1/videos", json={**elsewhere, "operation": "edit"})
    assert edit.status_code == 202, edit.text
    assert stored_spec(gw, edit.json()["id"])["operation"] == "edit"
    api.post(f"/v1/videos/{edit.json()['id']}/cancel")


def test_uploads_are_held_to_the_bounds_at_create(api: httpx.Client) -> None:
    long = upload(api, mp4_bytes(4), "long.mp4")
    r = error(api.post("/v1/videos", json=ops(operation="edit", input_references=[source(file_id=long)])), 400)
    assert r["param"] == "input_references[0]" and "lasts 4 seconds" in r["message"]
    fits = upload(api, mp4_bytes(2), "fits.mp4")
    said = ops(operation="edit", input_references=[source(file_id=fits)], input_video_duration=1)
    off = error(api.post("/v1/videos", json=said), 400)
    assert "lasts 2 seconds, but input_video_duration says 1" in off["message"], off
    near = api.post("/v1/videos", json={**said, "input_video_duration": 2.3})
    assert near.status_code == 202, near.text
    loud = upload(api, wav_bytes(5), "loud.wav")
    sound = {"type": "audio", "role": "reference", "file_id": loud}
    r = error(api.post("/v1/videos", json=ops(input_references=[sound])), 400)
    assert "(reference audio) lasts 5 seconds" in r["message"] and "audio inputs of 0.5 to 3 seconds" in r["message"]
    api.post(f"/v1/videos/{near.json()['id']}/cancel")


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"clip": 4}, "input_references[0] (source video) lasts 4 seconds; acme/ops takes video inputs of 0.5 to 3"),
        ({"clip": 2, "input_video_duration": 1}, "lasts 2 seconds, but input_video_duration says 1"),
        ({"clip": 2, "voice": 5}, "input_references[1] (reference audio) lasts 5 seconds"),
    ],
)
def test_the_worker_measures_what_it_fetched(
    api: httpx.Client, media: FakeUpstream, fields: dict[str, Any], words: str
) -> None:
    refs: list[dict[str, Any]] = [source(url=f"{media.base_url}/clip/{fields['clip']}.mp4")]
    if "voice" in fields:
        refs.append({"type": "audio", "role": "reference", "url": f"{media.base_url}/voice/{fields['voice']}.wav"})
    extra = {"input_video_duration": fields["input_video_duration"]} if "input_video_duration" in fields else {}
    r = api.post("/v1/videos", json=ops(operation="edit", input_references=refs, **extra))
    assert r.status_code == 202, r.text  # a URL's length is known only once fetched
    done = wait_status(api, r.json()["id"], {"completed", "failed", "cancelled", "expired"}, timeout=90)
    assert done["status"] == "failed" and done["error"]["code"] == "input_reference_invalid", done
    assert words in done["error"]["message"], done["error"]
    assert done["billing"]["state"] == "void" and done["billing"]["charged"] is False


def test_inputs_within_bounds_pass_the_worker(api: httpx.Client, media: FakeUpstream) -> None:
    refs = [
        source(url=f"{media.base_url}/clip/2.mp4"),
        {"type": "audio", "role": "reference", "url": f"{media.base_url}/voice/1.wav"},
    ]
    r = api.post("/v1/videos", json=ops(operation="edit", input_references=refs, input_video_duration=2))
    assert r.status_code == 202, r.text
    done = wait_status(api, r.json()["id"], {"completed", "failed", "cancelled", "expired"}, timeout=90)
    assert done["status"] == "completed" or done["error"]["code"] not in INPUT_FAULTS, done


def test_a_config_mistake_in_the_new_keys_stops_the_start(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.replace('video_reference_roles = ["source"]\naudio', "video_reference_roles = []\naudio"))
    run = subprocess.run(
        [sys.executable, "-m", "vidgate.cli.main", "serve", "--data-dir", str(tmp_path / "d"), "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert run.stderr.strip().splitlines() == [
        f'error: {config}: [models."acme/ops"].operations: a model with operations takes a source video: '
        'list "source" in video_reference_roles'
    ], run.stderr
