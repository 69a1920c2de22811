"""A websocket's messages leave when they are sent, on either server the gateway runs on.

Sends go through the server's own ``send`` and the wait for each is deferred to the next send
(``events/sockets.py``). On Granian the write starts when ``send`` is called; on uvicorn ``send`` is
a coroutine that only runs when awaited, so it is awaited at once. Either way a lone message (a
``pong`` with the next heartbeat ten seconds off) must arrive without another one behind it, every
message must arrive in order, and the close must follow the last of them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers.gateway import GatewayProcess, wait_status
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

BODY = {"model": "vidgate/procedural", "prompt": "a kite", "duration": 1, "size": "64x64"}


@pytest.mark.parametrize("server", ["granian", "uvicorn"])
def test_a_lone_message_leaves_at_once_and_the_close_follows_the_last(server: str, tmp_path: Path) -> None:
    args = () if server == "granian" else ("--server", server)
    gw = GatewayProcess(tmp_path, args=args, log_name=f"serve-{server}").start()
    try:
        key = gw.new_key("socket")
        with gw.client(key) as api:
            job = api.post("/v1/videos", json=BODY).json()
            wait_status(api, job["id"], {"completed"})
            url = gw.base_url.replace("http://", "ws://", 1) + f"/v1/async/video/{job['id']}/ws"
            query = "?close_on_terminal=false&interval_ms=10000"
            with connect(url + query, additional_headers={"Authorization": f"Bearer {key}"}, proxy=None) as ws:
                assert json.loads(ws.recv(timeout=10))["type"] == "job.snapshot"
                for _ in range(3):
                    sent = time.monotonic()
                    ws.send("ping")
                    assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}
                    # Held back until the next send, it would have come with the heartbeat, 10 s on.
                    assert time.monotonic() - sent < 5
                for n in range(20):
                    ws.send(json.dumps({"type": "ping" if n % 2 else "refresh"}))
                kinds = [json.loads(ws.recv(timeout=10))["type"] for _ in range(20)]
                assert kinds == ["job.updated", "pong"] * 10
                assert api.delete(f"/v1/videos/{job['id']}").status_code == 200
                assert json.loads(ws.recv(timeout=10))["type"] == "job.deleted"
                with pytest.raises(ConnectionClosed) as closed:
                    ws.recv(timeout=10)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    finally:
        gw.stop()
