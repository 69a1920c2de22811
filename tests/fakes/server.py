"""Run a fake upstream on loopback and inject faults into it.

A fake is a Starlette app speaking one provider's real wire format. ``FakeUpstream`` runs it with
uvicorn on 127.0.0.1 on a free port in a background thread; ``Faults`` holds queued faults that the
fake's routes apply before answering. The ``accept-*`` kinds are applied by a create route after it
made the job, as a real service fails when its answer is lost on the way back: the job exists but
the caller hears nothing (``accept-hang``), a dropped connection (``accept-reset``) or a 500
(``accept-500``). ``OutputClock`` makes output links expire a while after they were handed out.
``FakeState`` is the state and route checks every fake shares; ``BearerFake`` adds the key check
of APIs keyed with a Bearer token.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ACCEPT_KINDS = ("accept-hang", "accept-reset", "accept-500")
FAULT_KINDS = ("429", "500", "502", "503", "timeout", "malformed", "disconnect", *ACCEPT_KINDS)


@dataclass
class Faults:
    """Queued faults per operation (``create``, ``poll``, ``download``, ``cancel``)."""

    queue: dict[str, deque[str]] = field(default_factory=lambda: defaultdict(deque))
    hang_seconds: float = 3.0
    applied: list[tuple[str, str]] = field(default_factory=list)

    def add(self, op: str, kind: str, times: int = 1) -> None:
        assert kind in FAULT_KINDS, kind
        assert op == "create" or kind not in ACCEPT_KINDS, "only a create route applies accept-* faults"
        self.queue[op].extend([kind] * times)

    def clear(self) -> None:
        self.queue.clear()

    async def apply(self, op: str) -> Response | None:
        """The response a queued fault calls for, or None to answer normally (or to ``accepted``)."""
        if not self.queue.get(op) or self.queue[op][0] in ACCEPT_KINDS:
            return None
        kind = self.queue[op].popleft()
        self.applied.append((op, kind))
        if kind == "timeout":
            await asyncio.sleep(self.hang_seconds)
            return JSONResponse({"error": {"message": "too slow"}}, status_code=504)
        if kind == "malformed":
            return Response(b'{"id": "trunc', media_type="application/json")
        if kind == "disconnect":
            raise ConnectionResetError("fake disconnect")
        headers = {"retry-after": "1"} if kind == "429" else {}
        message = "rate limited" if kind == "429" else "upstream exploded"
        return JSONResponse({"error": {"message": message, "code": kind}}, status_code=int(kind), headers=headers)

    async def accepted(self, op: str, response: Response) -> Response:
        """``response`` (the job is made), unless a queued ``accept-*`` fault loses it on the way back."""
        if not self.queue.get(op) or self.queue[op][0] not in ACCEPT_KINDS:
            return response
        kind = self.queue[op].popleft()
        self.applied.append((op, kind))
        if kind == "accept-hang":
            await asyncio.sleep(self.hang_seconds)  # the caller has given up long before
            return response
        if kind == "accept-reset":
            return Dropped()
        return JSONResponse({"error": {"message": "upstream exploded", "code": "500"}}, status_code=500)


class Dropped(Response):
    """Starts an answer, then drops the connection mid-body, as a reset on the way back does."""

    def __init__(self) -> None:
        super().__init__(b"")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"id": "', "more_body": True})
        raise ConnectionResetError("fake reset after the job was made")


class OutputClock:
    """When each output link was handed out; past ``ttl`` seconds it answers as expired."""

    def __init__(self) -> None:
        self.ttl: float | None = None
        self._issued: dict[str, float] = {}

    def issue(self, key: str) -> None:
        self._issued.setdefault(key, time.monotonic())

    def expired(self, key: str) -> bool:
        issued = self._issued.get(key)
        return self.ttl is not None and issued is not None and time.monotonic() - issued > self.ttl


class Recorder:
    """Keeps every request a fake was sent in ``requests``, its JSON body decoded (raw bytes if not JSON).

    Each is ``{"method", "path", "headers", "json"}``, with ``"query"`` too when ``record_query``.
    """

    record_query = False
    requests: list[dict[str, Any]]

    async def _record(self, request: Request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        entry: dict[str, Any] = {"method": request.method, "path": request.url.path}
        if self.record_query:
            entry["query"] = dict(request.query_params)
        entry.update(headers=dict(request.headers), json=body)
        self.requests.append(entry)
        return body


class FakeState(Recorder):
    """What every fake keeps between tests, and the checks each of its routes runs first.

    ``reset`` starts the shared state afresh (a subclass adds its own jobs after calling it);
    ``_auth`` checks the caller's key in the upstream's own way; ``_gate`` answers a queued fault
    for one operation first, as a proxy in front would, then a refused key.
    """

    def reset(self) -> None:
        self.faults = Faults()
        self.requests = []
        self.fail_next: Any = False
        self.expire_outputs = False
        self.outputs = OutputClock()

    def _auth(self, request: Request) -> Response | None:
        raise NotImplementedError

    async def _gate(self, request: Request, op: str) -> Response | None:
        if fault := await self.faults.apply(op):
            return fault
        return self._auth(request)


class BearerFake(FakeState):
    """A fake behind one ``Authorization: Bearer <key>``: any other key gets ``unauthorized()``,
    in the upstream's own error shape."""

    api_key: str

    def unauthorized(self) -> Response:
        raise NotImplementedError

    def _auth(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self.unauthorized()
        return None


async def serve_output(faults: Faults, signed: bool, refusal: Response) -> Response:
    """One output download: a queued ``download`` fault first, then the video if the link is still
    ``signed`` (valid and unexpired), else the upstream's ``refusal``."""
    if fault := await faults.apply("download"):
        return fault
    return Response(small_mp4(), media_type="video/mp4") if signed else refusal


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeUpstream:
    """A Starlette app served on 127.0.0.1 from a daemon thread."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> FakeUpstream:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake upstream did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@cache
def small_mp4() -> bytes:
    """A real one-second 64x64 H.264 MP4 that fakes serve as their output."""
    import io

    import av
    import numpy as np

    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(24):
            img = np.full((64, 64, 3), (i * 10) % 255, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def write_small_mp4(path: Path) -> Path:
    path.write_bytes(small_mp4())
    return path
