"""The job's fan-out over real websockets, on either server: every socket on a job gets the job's
events in the same order, each once, and the close after the terminal one."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers.gateway import GatewayProcess, wait_status
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

BODY = {"model": "vidgate/procedural", "prompt": "a kite", "duration": 3, "size": "960x540"}  # renders for a while
SOCKETS = 6


def _follow(url: str, key: str, opened: threading.Barrier, out: list[Any]) -> None:
    with connect(url, additional_headers={"Authorization": f"Bearer {key}"}, proxy=None) as ws:
        messages = [json.loads(ws.recv(timeout=30))]
        opened.wait(timeout=30)
        try:
            while True:
                messages.append(json.loads(ws.recv(timeout=60)))
        except ConnectionClosed as closed:
            out.append((messages, closed.rcvd.code if closed.rcvd else None))


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_every_socket_on_a_job_gets_its_events_once_in_one_order(server: str, tmp_path: Path) -> None:
    args = () if server == "granian" else ("--server", server)
    gw = GatewayProcess(tmp_path, args=args, log_name=f"fanout-{server}").start()
    try:
        key = gw.new_key("fanout")
        with gw.client(key) as api:
            job = api.post("/v1/videos", json=BODY).json()
            url = gw.base_url.replace("http://", "ws://", 1) + f"/v1/async/video/{job['id']}/ws?interval_ms=10000"
            opened = threading.Barrier(SOCKETS + 1)
            out: list[Any] = []
            threads = [threading.Thread(target=_follow, args=(url, key, opened, out)) for _ in range(SOCKETS)]
            for t in threads:
                t.start()
            opened.wait(timeout=30)
            for t in threads:
                t.join(timeout=120)
            wait_status(api, job["id"], {"completed"})
        assert len(out) == SOCKETS
        longest: list[str] = []
        for messages, code in out:
            assert code == 1000
            assert messages[0]["type"] == "job.snapshot"
            updates = [m for m in messages[1:] if m["type"] != "heartbeat"]
            assert all(m["type"] == "job.updated" for m in updates)
            ids = [m["id"] for m in updates]
            assert len(ids) == len(set(ids))  # each event once
            assert (updates[-1]["data"]["status"] if updates else messages[0]["data"]["status"]) == "completed"
            longest = max(longest, ids, key=len)
        for messages, _ in out:  # a socket that joined later saw a tail of the same sequence
            ids = [m["id"] for m in messages[1:] if m["type"] == "job.updated"]
            assert ids == longest[len(longest) - len(ids) :]
        assert len(longest) >= 2  # progress reached the sockets live, not only the snapshot
    finally:
        gw.stop()
