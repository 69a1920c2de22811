"""The job websocket at the URL the reference SDK builds (``videos.websocket_url``), spoken as the
SDK's ``AsyncJobWebSocketClientEvent`` / ``AsyncJobWebSocketServerEvent`` types describe it."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from typing import Any

import pytest
from phaseo import Phaseo
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from compat.driver import MODEL, SMALL, call, wait_terminal


def finished(sdk: Phaseo) -> dict[str, Any]:
    job = call(lambda: sdk.videos.create({"model": MODEL, "prompt": f"waves {uuid.uuid4().hex[:8]}", **SMALL}))
    return wait_terminal(sdk, job["id"])


def open_socket(url: str, key: str) -> ClientConnection:
    return connect(url, additional_headers={"Authorization": f"Bearer {key}"}, proxy=None, open_timeout=10)


def receive(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    return json.loads(ws.recv(timeout=timeout))


def snapshot(ws: ClientConnection, video_id: str) -> dict[str, Any]:
    first = receive(ws)
    assert first["type"] == "job.snapshot" and first["data"]["id"] == video_id, first
    return first


def test_sdk_url_streams_a_snapshot_then_closes_on_terminal(sdk: Phaseo, key: str) -> None:
    job = finished(sdk)
    url = sdk.videos.websocket_url(job["id"])
    assert url == sdk.async_jobs.websocket_url("video", job["id"])
    with open_socket(url, key) as ws:
        first = snapshot(ws, job["id"])
        assert first["data"]["status"] == "completed"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


def test_sdk_url_is_the_jobs_websocket_url(sdk: Phaseo) -> None:
    job = finished(sdk)
    assert sdk.videos.websocket_url(job["id"]) == job["websocket_url"]
    with_options = sdk.videos.websocket_url(job["id"], interval_ms=1500, close_on_terminal=False)
    assert with_options == f"{job['websocket_url']}?interval_ms=1500&close_on_terminal=false"


@pytest.mark.parametrize("spelling", ["false", "0", "no", "off"])
def test_close_on_terminal_off_keeps_the_socket_open(sdk: Phaseo, key: str, spelling: str) -> None:
    job = finished(sdk)
    with open_socket(f"{sdk.videos.websocket_url(job['id'])}?close_on_terminal={spelling}", key) as ws:
        snapshot(ws, job["id"])
        ws.send(json.dumps({"type": "ping"}))
        assert receive(ws)["type"] == "pong"


def test_refresh_is_answered_with_job_updated(sdk: Phaseo, key: str) -> None:
    job = finished(sdk)
    with open_socket(sdk.videos.websocket_url(job["id"], close_on_terminal=False), key) as ws:
        snapshot(ws, job["id"])
        ws.send(json.dumps({"type": "refresh"}))
        updated = receive(ws)
    assert updated["type"] == "job.updated", updated
    assert updated["data"]["id"] == job["id"] and updated["data"]["status"] == "completed"


def quiet_for(ws: ClientConnection) -> float:
    """Seconds until the server's next message (a heartbeat, on a job that is over)."""
    start = time.monotonic()
    receive(ws, timeout=30)
    return time.monotonic() - start


def heartbeats_within(ws: ClientConnection, seconds: float) -> int:
    """How many messages (heartbeats, on a job that is over) the server sends in ``seconds``."""
    count, end = 0, time.monotonic() + seconds
    with contextlib.suppress(TimeoutError):
        while (left := end - time.monotonic()) > 0:
            receive(ws, timeout=left)
            count += 1
    return count


def test_interval_ms_below_the_range_is_raised_to_one_second(sdk: Phaseo, key: str) -> None:
    job = finished(sdk)
    with open_socket(sdk.videos.websocket_url(job["id"], interval_ms=10, close_on_terminal=False), key) as ws:
        snapshot(ws, job["id"])
        # One a second, about four in four seconds: not hundreds (10 ms), not none (the 10 s default).
        # Counted over a window, so a late read of the snapshot cannot make an interval look short.
        assert 1 <= heartbeats_within(ws, 4.0) <= 12


def test_interval_ms_above_the_range_is_lowered_to_ten_seconds(sdk: Phaseo, key: str) -> None:
    job = finished(sdk)
    with open_socket(sdk.videos.websocket_url(job["id"], interval_ms=600_000, close_on_terminal=False), key) as ws:
        snapshot(ws, job["id"])
        assert 5.0 <= quiet_for(ws) <= 20.0  # ten seconds: not one (the floor), not 600


def test_deleted_job_is_announced_with_id_and_kind(sdk: Phaseo, key: str) -> None:
    """Pushed when the job is deleted, or the answer to the next ``refresh``; either way ``{id, kind}``."""
    job = finished(sdk)
    messages: list[dict[str, Any]] = []
    with open_socket(sdk.videos.websocket_url(job["id"], close_on_terminal=False), key) as ws:
        snapshot(ws, job["id"])
        assert call(lambda: sdk.videos.delete(job["id"]))["deleted"] is True
        deadline = time.monotonic() + 30
        with contextlib.suppress(ConnectionClosed):
            while not any(m["type"] == "job.deleted" for m in messages) and time.monotonic() < deadline:
                try:
                    messages.append(receive(ws, timeout=1))
                except TimeoutError:
                    ws.send(json.dumps({"type": "refresh"}))
    deleted = [m for m in messages if m["type"] == "job.deleted"]
    assert deleted, messages
    assert deleted[0]["data"]["id"] == job["id"] and deleted[0]["data"]["kind"] == "video", deleted
