"""What the reference SDK's generated types let a team send, the model listing it reads, and the
``/v1/video/generations`` spelling of every video route (the SDK's ``*Alias`` operations)."""

from __future__ import annotations

import base64
import time
import urllib.error
import uuid
from typing import Any

import httpx
import pytest
from gen import operations as ops
from helpers.gateway import GatewayProcess
from helpers.media import mp4_bytes, png_data_url, wav_bytes
from phaseo import Phaseo

from compat.driver import LONG, MODEL, SMALL, TERMINAL, call, envelope, wait_terminal

IMAGE = png_data_url((30, 120, 200))
IMAGE_B64 = IMAGE.split(",", 1)[1]
# Media inline, so no test reaches past loopback; the built-in model uses each for real.
CLIP_B64 = base64.b64encode(mp4_bytes(2)).decode()
CLIP = f"data:video/mp4;base64,{CLIP_B64}"
VOICE_B64 = base64.b64encode(wav_bytes(2)).decode()
VOICE = f"data:audio/wav;base64,{VOICE_B64}"
ASSET = "<the asset of a completed job>"


def body(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "prompt": f"rain on a window {uuid.uuid4().hex[:8]}", **SMALL, **fields}


# Fields of the SDK's VideoGenerationRequest / VideoCreateRequest that the model may ignore but
# the gateway must not refuse as unknown.
REQUEST_FIELDS: dict[str, Any] = {
    "frame_images": [{"type": "image_url", "image_url": {"url": IMAGE}, "frame_type": "first_frame"}],
    "provider_options": {},
    "input_audio_duration": 2.5,
    "input_video_duration": 3.0,
    "debug": {"enabled": False},
    "beta": {},
}


@pytest.mark.parametrize("name", sorted(REQUEST_FIELDS))
def test_request_fields_the_sdk_sends_are_accepted(sdk: Phaseo, name: str) -> None:
    job = call(lambda: sdk.videos.create(body(**{name: REQUEST_FIELDS[name]})))
    assert wait_terminal(sdk, job["id"])["status"] == "completed"


# (reference, whether the built-in model takes it). A reference the model does not take may be
# refused, but only as unsupported_parameter: the shape itself must be understood.
REFERENCES: dict[str, tuple[dict[str, Any], bool]] = {
    "image_url": ({"type": "image_url", "image_url": {"url": IMAGE}, "role": "first_frame"}, True),
    "image-url": ({"type": "image", "url": IMAGE, "role": "first_frame"}, True),
    "image-data": ({"type": "image", "data": IMAGE_B64, "mime_type": "image/png", "role": "first_frame"}, True),
    "image-last_frame": ({"type": "image", "data": IMAGE_B64, "mime_type": "image/png", "role": "last_frame"}, True),
    "image-reference": ({"type": "image", "url": IMAGE, "mime_type": "image/png", "role": "reference"}, True),
    "video_url-source": ({"type": "video_url", "media_url": {"url": CLIP}, "role": "source"}, True),
    "audio_url-reference": ({"type": "audio_url", "media_url": {"url": VOICE}, "role": "reference"}, True),
    "video-asset_id": ({"type": "video", "asset_id": ASSET, "mime_type": "video/mp4", "role": "source"}, True),
    "video-data": ({"type": "video", "data": CLIP_B64, "mime_type": "video/mp4", "role": "source"}, True),
    "audio-url": ({"type": "audio", "url": VOICE, "mime_type": "audio/wav", "role": "reference"}, True),
    "mask-data": ({"type": "mask", "data": IMAGE_B64, "mime_type": "image/png", "role": "mask"}, False),
}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_input_reference_shapes_are_understood(sdk: Phaseo, name: str) -> None:
    reference, taken = REFERENCES[name]
    if reference.get("asset_id") == ASSET:
        source = wait_terminal(sdk, call(lambda: sdk.videos.create(body()))["id"])
        reference = {**reference, "asset_id": source["asset"]["id"]}
    try:
        job = sdk.videos.create(body(input_references=[reference]))
    except urllib.error.HTTPError as exc:
        error = envelope(exc)
        assert not taken, f"HTTP {exc.code}: {error}"
        assert exc.code == 400 and error["code"] == "unsupported_parameter", error
        assert error["param"].startswith("input_references"), error
        return
    final = wait_terminal(sdk, job["id"])
    assert final["status"] == "completed" or not taken, final


def test_video_models_in_the_reference_shape(sdk: Phaseo) -> None:
    listing = sdk.videos.list_models()
    assert listing["object"] == "list" and listing["data"]
    for model in listing["data"]:
        assert isinstance(model["model"], str) and isinstance(model["name"], str), model
        assert isinstance(model["status"], str) and isinstance(model["pricing"], dict), model
        assert isinstance(model["input_types"], list) and isinstance(model["output_types"], list), model
        assert model["supported_parameters"] == model["supported_params"], model
        assert isinstance(model["supported_params_detail"], dict), model
        for provider in model["providers"]:
            assert isinstance(provider["id"], str) and isinstance(provider["supported_params"], list), provider
    built_in = {m["model"]: m for m in listing["data"]}[MODEL]
    assert built_in["status"] == "active"
    assert {"text", "image"} <= set(built_in["input_types"]) and "video" in built_in["output_types"]
    assert {"duration", "size", "seed", "negative_prompt"} <= set(built_in["supported_params"])
    assert [p["id"] for p in built_in["providers"]] == ["vidgate"]
    assert {"duration", "seed"} <= set(built_in["providers"][0]["supported_params"])


def test_video_models_filter_on_params(sdk: Phaseo) -> None:
    every = {m["model"] for m in sdk.videos.list_models()["data"]}
    listing = sdk.request("GET", "/videos/models", query={"params": "seed,negative_prompt"})
    chosen = {m["model"]: m for m in listing["data"]}
    assert MODEL in chosen and set(chosen) < every
    for model in chosen.values():
        assert {"seed", "negative_prompt"} <= set(model["supported_params"]), model


def test_every_video_route_answers_under_video_generations(sdk: Phaseo, gateway: GatewayProcess, key: str) -> None:
    client = sdk.raw_client
    created = call(lambda: ops.createVideoAlias(client, body=body()))
    vid = {"video_id": created["id"]}
    assert call(lambda: ops.getVideoAlias(client, path=vid))["id"] == created["id"]
    assert created["id"] in {v["id"] for v in call(lambda: ops.listVideosAlias(client, query={"limit": 10}))["data"]}
    assert MODEL in {m["model"] for m in call(lambda: ops.listVideoModelsAlias(client))["data"]}
    job = created
    while job["status"] not in TERMINAL:
        time.sleep(0.1)
        job = call(lambda: ops.getVideoAlias(client, path=vid))
    assert job["status"] == "completed"
    assert "download_url" in call(lambda: ops.createVideoDownloadUrlAlias(client, path=vid, body={}))
    content = httpx.get(
        f"{gateway.base_url}/v1/video/generations/{created['id']}/content",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert content.status_code == 200 and content.content[4:8] == b"ftyp"
    assert call(lambda: ops.deleteVideoAlias(client, path=vid))["deleted"] is True
    long = call(lambda: ops.createVideoAlias(client, body=body(**LONG)))
    cancelled = call(lambda: ops.cancelVideoAlias(client, path={"video_id": long["id"]}))
    assert cancelled["status"] == "cancelled"
