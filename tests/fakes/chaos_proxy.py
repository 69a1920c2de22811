"""A loopback HTTP proxy in front of the gateway that injects faults on demand and records requests.

Faults are queued per ``(method, path pattern)`` and used up one per matching request:

- ``"429"``, ``"500"``, ``"502"``, ``"503"``: answer with that status and an error envelope
  (429 carries ``Retry-After: 0``) without forwarding;
- ``"drop"``: hang up before forwarding (the client sees a dropped connection, no response);
- ``"drop_after"``: forward, let the gateway act, then hang up before answering;
- ``"cut:N"``: forward and relay the response, but hang up after N body bytes.

Hanging up needs the socket, which ASGI does not expose, so the proxy runs uvicorn's h11 protocol
with a subclass that files each connection's transport under its peer address (the scope's client).
Websocket upgrades are not proxied: they reach the gateway as plain GETs and fail, as they would
behind a proxy without websocket support.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import threading
import time
from collections import defaultdict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fakes.server import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

STATUS_FAULTS = {
    "429": ("rate_limit_error", "rate_limited"),
    "500": ("api_error", "internal_error"),
    "502": ("upstream_error", "upstream_error"),
    "503": ("api_error", "service_unavailable"),
}
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass
class Recorded:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    fault: str | None


class _Nothing:
    """The 'response' after a hang-up: there is no one left to answer."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        return None


class _Relay:
    """Relays the gateway's response byte for byte, optionally hanging up after ``cut`` body bytes."""

    def __init__(self, proxy: ChaosProxy, upstream: httpx.Response, cut: int | None) -> None:
        self.proxy = proxy
        self.upstream = upstream
        self.cut = cut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in self.upstream.headers.raw if k.lower() not in (b"connection", b"keep-alive")]
        try:
            await send({"type": "http.response.start", "status": self.upstream.status_code, "headers": headers})
            sent = 0
            async for chunk in self.upstream.aiter_raw():
                if self.cut is not None and sent + len(chunk) >= self.cut:
                    await send({"type": "http.response.body", "body": chunk[: self.cut - sent], "more_body": True})
                    await self.proxy.hang_up(scope, graceful=True)
                    return
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                sent += len(chunk)
            if self.cut is not None:
                await self.proxy.hang_up(scope, graceful=True)
                return
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self.upstream.aclose()


class ChaosProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.requests: list[Recorded] = []
        self._faults: dict[tuple[str, str], deque[str]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._transports: dict[Any, asyncio.Transport] = {}
        self._client: httpx.AsyncClient | None = None
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=METHODS)], lifespan=self._lifespan)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", http=self._protocol(), ws="none"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    # Control, from the test's thread.
    def inject(self, method: str, path: str, *kinds: str) -> None:
        """Queue faults for requests whose method and path (an fnmatch pattern) match."""
        for kind in kinds:
            assert kind in STATUS_FAULTS or kind in ("drop", "drop_after") or kind.startswith("cut:"), kind
        with self._lock:
            self._faults[(method.upper(), path)].extend(kinds)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    def seen(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method) and (path is None or fnmatch.fnmatchcase(r.path, path))
            ]

    def pending(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._faults.values())

    def start(self) -> ChaosProxy:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("chaos proxy did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def __enter__(self) -> ChaosProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Inside the proxy's event loop.
    def _protocol(self) -> type[H11Protocol]:
        transports = self._transports

        class Tracking(H11Protocol):
            def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
                super().connection_made(transport)
                transports[self.client] = transport

            def connection_lost(self, exc: Exception | None) -> None:
                transports.pop(self.client, None)
                super().connection_lost(exc)

        return Tracking

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=60, trust_env=False) as client:
            self._client = client
            yield

    async def hang_up(self, scope: Scope, *, graceful: bool) -> None:
        """Close this request's connection (flushing what was sent when ``graceful``) and wait till it is gone."""
        key = tuple(scope["client"])
        transport = self._transports.get(key)
        if transport is None:
            return
        if graceful:
            transport.close()
        else:
            transport.abort()
        for _ in range(200):
            if key not in self._transports:
                return
            await asyncio.sleep(0.005)

    def _next_fault(self, method: str, path: str) -> str | None:
        with self._lock:
            for (m, pattern), queue in self._faults.items():
                if queue and m == method and fnmatch.fnmatchcase(path, pattern):
                    return queue.popleft()
        return None

    async def _handle(self, request: Request) -> Any:
        method, path = request.method, request.url.path
        fault = self._next_fault(method, path)
        with self._lock:
            self.requests.append(Recorded(method, path, request.url.query, dict(request.headers), fault))
        if fault in STATUS_FAULTS:
            kind, code = STATUS_FAULTS[fault]
            headers = {"Retry-After": "0"} if fault == "429" else {}
            body = {
                "error": {
                    "type": kind,
                    "code": code,
                    "message": f"chaos proxy injected {fault}",
                    "param": None,
                    "request_id": "req_chaos",
                }
            }
            return JSONResponse(body, status_code=int(fault), headers={**headers, "X-Request-Id": "req_chaos"})
        if fault == "drop":
            await self.hang_up(request.scope, graceful=False)
            return _Nothing()
        assert self._client is not None
        body_bytes = await request.body()
        headers = [(k, v) for k, v in request.headers.raw if k.decode().lower() not in HOP_BY_HOP]
        url = self.upstream + path + (f"?{request.url.query}" if request.url.query else "")
        upstream = await self._client.send(
            self._client.build_request(method, url, headers=headers, content=body_bytes), stream=True
        )
        if fault == "drop_after":
            await upstream.aread()
            await upstream.aclose()
            await self.hang_up(request.scope, graceful=False)
            return _Nothing()
        cut = int(fault.split(":", 1)[1]) if fault and fault.startswith("cut:") else None
        return _Relay(self, upstream, cut)
