"""Extending and editing through one running gateway: a source video sent inline to ``POST /v1/videos``
reaches Veo 3.1 on the Gemini API (extend) and Gemini Omni Flash (extend and edit), each against its
fake, and the stored output is the fake's video."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.media import data_uri, mp4, probe
from fakes.server import small_mp4
from helpers.gateway import GatewayProcess, wait_status

from providers.served import fleet_of, fresh_client, gateway_for
from providers.wiring import Fleet, record

CLIP = mp4(2.0)
SOURCE = [{"type": "video_url", "role": "source", "media_url": {"url": data_uri(CLIP, "video/mp4")}}]
TERMINAL = {"completed", "failed", "cancelled", "expired"}


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    yield from fleet_of(
        ["google", "gemini-omni"], {"google": {"polls_to_complete": 2}, "gemini-omni": {"polls_to_complete": 2}}
    )


@pytest.fixture(scope="module")
def gw(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from gateway_for(fleet, tmp_path_factory, "operations")


@pytest.fixture
def client(gw: GatewayProcess, fleet: Fleet) -> Iterator[httpx.Client]:
    yield from fresh_client(gw, fleet, "operations")


def run(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/videos", json={"prompt": "the boat sails on into the harbour", **body})
    assert r.status_code == 202, r.text
    done = wait_status(client, r.json()["id"], TERMINAL, timeout=30)
    assert done["status"] == "completed", done
    assert client.get(done["content_url"]).content == small_mp4()
    return done


def sent(fleet: Fleet, name: str) -> Any:
    (create,) = [r for r in fleet[name].requests if record(r, "method") == "POST" and "cancel" not in record(r, "path")]
    return record(create, "json")


def test_veo_extends_on_the_gemini_api(client: httpx.Client, fleet: Fleet) -> None:
    done = run(client, {"model": "google/veo-3.1", "operation": "extend", "duration": 7, "input_references": SOURCE})
    assert done["provider"] == "google"
    (instance,) = sent(fleet, "google")["instances"]
    assert instance["video"] == {"encodedVideo": base64.b64encode(CLIP).decode(), "encoding": "video/mp4"}
    assert "durationSeconds" not in sent(fleet, "google")["parameters"]


@pytest.mark.parametrize(("operation", "duration"), [("extend", 5), ("edit", None)])
def test_omni_extends_and_edits(client: httpx.Client, fleet: Fleet, operation: str, duration: int | None) -> None:
    body: dict[str, Any] = {"model": "google/gemini-omni-flash", "operation": operation, "input_references": SOURCE}
    if duration is not None:
        body["duration"] = duration
    done = run(client, body)
    assert done["provider"] == "gemini-omni"
    create = sent(fleet, "gemini-omni")
    assert create["generation_config"] == {"video_config": {"task": operation}}
    video = next(b for b in create["input"] if b["type"] == "video")
    found = probe(base64.b64decode(video["data"]))
    assert found is not None and found.kind == "video" and found.frames == 48
    assert create["response_format"].get("duration") == (f"{duration}s" if duration else None)
