"""Server-sent events over real HTTP: the same lifecycle messages as the websocket, ending after terminal."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes.held_image import HeldMissingImage
from helpers.gateway import GatewayProcess, stable, wait_status

pytestmark = pytest.mark.both_backends

MODEL = "vidgate/procedural"
TERMINAL = {"completed", "failed", "cancelled", "expired"}


def create(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    r = api.post("/v1/videos", json={"model": MODEL, "prompt": "a kite over dunes", **fields})
    assert r.status_code == 202, r.text
    return r.json()


def frames(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """Parse an event stream into frames: {event, id, data} for events, {comment} for comments."""
    frame: dict[str, Any] = {}
    for line in response.iter_lines():
        if line == "":
            if frame:
                yield frame
            frame = {}
        elif line.startswith(":"):
            frame["comment"] = line[1:].strip()
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            frame[name] = json.loads(value) if name == "data" else value
    if frame:
        yield frame


def read_all(api: httpx.Client, video_id: str, timeout: float = 60, **params: Any) -> list[dict[str, Any]]:
    with api.stream("GET", f"/v1/videos/{video_id}/events", params=params, timeout=timeout) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["cache-control"] == "no-cache"
        return list(frames(r))


def events_only(all_frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in all_frames if "event" in f]


def test_completed_lifecycle_as_event_stream(api: httpx.Client) -> None:
    job = create(api, duration=2, size="640x360")
    t0 = time.monotonic()
    got = read_all(api, job["id"])
    assert time.monotonic() - t0 < 30  # the stream ended by itself after the terminal event
    assert got[0] == {"retry": "3000"}
    events = events_only(got)
    assert events[0]["event"] == "job.snapshot" and events[0]["data"]["type"] == "job.snapshot"
    assert events[0]["id"].startswith("evt_")  # the latest event id, so a reconnect can say where it was
    assert events[0]["data"]["data"]["id"] == job["id"]
    updates = events[1:]
    assert updates and all(f["event"] == "job.updated" == f["data"]["type"] for f in updates)
    assert all(f["id"] == f["data"]["id"] and f["id"].startswith("evt_") for f in updates)
    assert len({f["id"] for f in updates}) == len(updates)
    progress = [f["data"]["data"]["progress"] for f in updates if f["data"]["event"] == "video.progress"]
    assert progress == sorted(progress) and progress
    last = updates[-1]["data"]
    assert last["event"] == "video.completed" and last["data"]["status"] == "completed"
    assert last["data"]["progress"] == 100 and last["data"]["asset"]["sha256"]


def test_cancelled_while_processing_ends_the_stream(api: httpx.Client) -> None:
    job = create(api, duration=20, size="1920x1080")
    seen: list[dict[str, Any]] = []
    with api.stream("GET", f"/v1/videos/{job['id']}/events", timeout=30) as r:
        cancelled_at = None
        for frame in frames(r):
            seen.append(frame)
            data = frame.get("data", {}).get("data", {})
            if cancelled_at is None and data.get("status") == "processing" and data.get("progress", 0) >= 1:
                assert api.post(f"/v1/videos/{job['id']}/cancel").status_code == 200
                cancelled_at = time.monotonic()
        ended = time.monotonic()
    assert cancelled_at is not None and ended - cancelled_at < 1.0
    last = events_only(seen)[-1]
    assert last["event"] == "job.updated" and last["data"]["event"] == "video.cancelled"
    assert last["data"]["data"]["status"] == "cancelled"


@pytest.fixture
def held_image() -> Iterator[HeldMissingImage]:
    with HeldMissingImage() as held:
        yield held


def test_failed_with_heartbeat_comments_while_idle(api: httpx.Client, held_image: HeldMissingImage) -> None:
    ref = {"type": "image_url", "role": "first_frame", "image_url": {"url": held_image.url}}
    job = create(api, duration=1, size="160x90", input_references=[ref])
    got: list[dict[str, Any]] = []
    with api.stream("GET", f"/v1/videos/{job['id']}/events", params={"interval_ms": 1000}, timeout=60) as r:
        assert r.status_code == 200
        for frame in frames(r):
            got.append(frame)
            if "comment" in frame:
                held_image.release.set()  # a heartbeat came while the job sat queued: now let it fail
    events = events_only(got)
    assert events[0]["data"]["data"]["status"] == "queued"
    beats = [f["comment"] for f in got if "comment" in f]
    assert beats and all(b.startswith("heartbeat ") for b in beats)
    assert events[-1]["data"]["event"] == "video.failed"
    assert events[-1]["data"]["data"]["error"]["code"] == "input_reference_unavailable"


def test_already_terminal_sends_the_snapshot_and_ends(api: httpx.Client) -> None:
    job = create(api, duration=1, size="160x90")
    done = wait_status(api, job["id"], TERMINAL)
    events = events_only(read_all(api, job["id"]))
    assert len(events) == 1 and events[0]["data"]["type"] == "job.snapshot"
    assert stable(events[0]["data"]["data"]) == stable(done)
    # An EventSource reconnecting (it sends Last-Event-ID) to a finished job is told to stop with 204.
    r = api.get(f"/v1/videos/{job['id']}/events", headers={"Last-Event-ID": events[0]["id"]})
    assert r.status_code == 204 and r.content == b""


def test_auth_ownership_and_params(gateway: GatewayProcess, api: httpx.Client) -> None:
    job = create(api, duration=1, size="160x90")
    r = httpx.get(f"{gateway.base_url}/v1/videos/{job['id']}/events")
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    with gateway.client(gateway.new_key()) as stranger:
        r = stranger.get(f"/v1/videos/{job['id']}/events")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = api.get(f"/v1/videos/{job['id']}/events", params={"interval_ms": 50})
    assert r.status_code == 400 and r.json()["error"]["param"] == "interval_ms"
