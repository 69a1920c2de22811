"""Per-client limits at the edge of the app, for what the HTTP server does not bound itself.

The server (launched by ``cli/serving.py``) bounds how long a request head may take and how many
connections one process holds. Once a request reaches the app, this middleware bounds, per client
address and server process, how many requests and streams are in flight at once (a client holding
hundreds of half-sent bodies or streams cannot take every slot), and how long a request body may take
to arrive (a body dripped a byte at a time, or never finished, is cut off). Behind a reverse proxy
every client has the proxy's address: raise the cap there, or set it to 0 and let the proxy limit.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidgate.errors import InvalidRequestError, RateLimitError
from vidgate.gateway.api.http import error_response
from vidgate.gateway.ids import request_id as new_request_id
from vidgate.gateway.metrics import HTTP_LATENCY

CLOSE_TOO_MANY = 4429
_NO_BODY = frozenset({"GET", "HEAD"})  # the routes for these never read a body: nothing to wait for


class ClientLimits:
    """Caps in-flight requests and streams per client address; gives request bodies a deadline.

    Outermost in the app, so it costs the poll fast path one dict read and write and nothing else.
    """

    def __init__(self, app: ASGIApp, *, max_in_flight: int, body_seconds: float) -> None:
        self.app = app
        self.cap = max_in_flight
        self.body_seconds = body_seconds
        self.in_flight: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        host = client[0] if client and self.cap > 0 else None
        if host is not None:
            n = self.in_flight.get(host, 0)
            if n >= self.cap:
                await _refuse(scope, receive, send)
                return
            self.in_flight[host] = n + 1
        try:
            if kind == "http" and self.body_seconds > 0 and scope["method"] not in _NO_BODY:
                receive = _by_deadline(receive, self.body_seconds)
            await self.app(scope, receive, send)
        finally:
            if host is not None:
                left = self.in_flight[host] - 1
                if left:
                    self.in_flight[host] = left
                else:
                    del self.in_flight[host]


def _by_deadline(receive: Receive, seconds: float) -> Receive:
    """``receive`` that fails with a 408 once the body has taken ``seconds`` since the request began."""
    deadline = asyncio.get_running_loop().time() + seconds
    done = False

    async def receive_body() -> Message:
        nonlocal done
        if done:  # the body is in: what is left to receive is the disconnect, whenever it comes
            return await receive()
        try:
            async with asyncio.timeout_at(deadline):
                message = await receive()
        except TimeoutError:
            done = True
            raise InvalidRequestError(
                f"the request body did not arrive within {seconds:g} s",
                status=408,
                code="request_timeout",
                headers={"Connection": "close"},
            ) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            done = True
        return message

    return receive_body


async def _refuse(scope: Scope, receive: Receive, send: Send) -> None:
    """429 in the envelope (a websocket: accepted, then closed with 4429), before the app sees it."""
    reason = "too many requests in flight from this address; retry shortly"
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": CLOSE_TOO_MANY, "reason": reason})
        return
    rid = new_request_id()
    err = RateLimitError(reason, headers={"Retry-After": "1", "X-Request-Id": rid}, details={"limit": "client"})
    await error_response(err, rid)(scope, receive, send)
    HTTP_LATENCY.observe(scope["method"], 429, 0.0)
