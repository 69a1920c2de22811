"""Extending a video an upstream made, through one running gateway: the caller names an earlier job's
output by its id, and the worker hands Luma that job's generation id and Kling the video id of that
job's task, each read from what the gateway stored about the earlier job; a source the upstream did
not make finds no provider."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.media import data_uri, mp4
from fakes.server import small_mp4
from helpers.gateway import GatewayProcess

from providers.served import finish, fleet_of, fresh_client, gateway_for
from providers.wiring import Fleet


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    yield from fleet_of(["luma", "kling"], {"luma": {"polls_to_complete": 2}, "kling": {"polls_to_complete": 2}})


@pytest.fixture(scope="module")
def gw(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from gateway_for(fleet, tmp_path_factory, "own-extend")


@pytest.fixture
def client(gw: GatewayProcess, fleet: Fleet) -> Iterator[httpx.Client]:
    yield from fresh_client(gw, fleet, "own-extend")


def source(**where: str) -> list[dict[str, Any]]:
    return [{"type": "video", "role": "source", **where}]


def test_luma_extends_its_own_generation_named_by_the_earlier_job(client: httpx.Client, fleet: Fleet) -> None:
    first = finish(client, {"model": "luma/ray-2", "duration": 5})
    assert first["provider"] == "luma"
    (generation,) = fleet["luma"].generations

    done = finish(
        client, {"model": "luma/ray-2", "operation": "extend", "input_references": source(asset_id=first["id"])}
    )
    assert done["provider"] == "luma"
    assert client.get(done["content_url"]).content == small_mp4()
    creates = [r["json"] for r in fleet["luma"].requests if r["method"] == "POST"]
    assert creates[-1]["keyframes"] == {"frame0": {"type": "generation", "id": generation}}
    assert len(fleet["luma"].generations) == 2


def test_luma_will_not_extend_a_video_it_did_not_make(client: httpx.Client, fleet: Fleet) -> None:
    inline = source(url=data_uri(mp4(2.0), "video/mp4"))
    failed = finish(client, {"model": "luma/ray-2", "operation": "extend", "input_references": inline}, "failed")
    assert "luma extends only a video Luma made" in failed["error"]["message"], failed
    assert not [r for r in fleet["luma"].requests if r["method"] == "POST"]


def test_kling_extends_the_video_of_the_earlier_jobs_task(client: httpx.Client, fleet: Fleet) -> None:
    first = finish(client, {"model": "kling/kling-1.6", "duration": 5})
    assert first["provider"] == "kling"
    (task,) = fleet["kling"].tasks.values()

    body = {"model": "kling/kling-1.6", "operation": "extend", "input_references": source(asset_id=first["id"])}
    done = finish(client, body)
    assert done["provider"] == "kling" and done["seconds"] == 5
    assert client.get(done["content_url"]).content == small_mp4()
    creates = [r for r in fleet["kling"].requests if r["method"] == "POST"]
    assert creates[-1]["path"] == "/v1/videos/video-extend"
    assert creates[-1]["json"] == {"prompt": "the heron lifts off the water", "video_id": task.video_id}
