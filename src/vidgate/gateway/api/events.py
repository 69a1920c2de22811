"""The job's live updates over HTTP: its websocket, server-sent events, and stream tokens.

Both streams subscribe to the bus before reading the job (a websocket through its job's fan-out,
``events/fanout.py``), then hand over to the pump (``events/stream.py``): a snapshot, then one
update per committed event until a terminal status. A client resuming with ``Last-Event-ID`` (SSE)
or ``since=`` (both) gets every event after that id instead of the snapshot. Opening a stream counts
against the key's request rate, and its open streams are capped per process; revoking the key ends
them (``events/stream_slots.py``).

Websocket auth, in order: ``Authorization: Bearer KEY``; for browsers, which cannot set headers,
the subprotocol offer ``["vidgate.v1", "bearer.KEY"]`` (the server selects ``vidgate.v1`` and never
echoes the key; offering only ``bearer.KEY`` is accepted with no subprotocol selected, which browsers
refuse, so browsers must offer both); or ``?token=`` from ``POST /v1/videos/{id}/stream_token``, a
short-lived HMAC token bound to the job and its key (``events/stream_tokens.py``). An API key is never
accepted in a URL.

Websocket options, as the reference's clients send them: ``interval_ms`` (the heartbeat) outside
1000–10000 is brought into that range, and ``close_on_terminal`` takes true/1/yes/on or
false/0/no/off. The URLs in the jobs a stream sends are on the base of the request that opened it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from vidgate.errors import (
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
    UpgradeRequiredError,
    ValidationError,
    VidgateError,
)
from vidgate.gateway.api.http import caller, decode, int_param, json_response, owner, read_body
from vidgate.gateway.auth import KEY_PREFIX, Principal
from vidgate.gateway.base_url import websocket_base
from vidgate.gateway.events import catchup
from vidgate.gateway.events.bus import DRAIN, QUEUE_LIMIT
from vidgate.gateway.events.fanout import fanout_of
from vidgate.gateway.events.sockets import Socket
from vidgate.gateway.events.stream import (
    CLOSE_BAD_REQUEST,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_NOT_FOUND,
    CLOSE_TOO_MANY,
    CLOSE_UNAUTHORIZED,
    DRAINING_REASON,
    Refused,
    Start,
    check_open,
    pump,
    sse_frames,
)
from vidgate.gateway.events.stream_slots import Stream
from vidgate.gateway.events.stream_tokens import (
    TOKEN_TTL_MAX,
    InvalidToken,
    StreamTokenRequest,
    issue_token,
    verify_token,
)
from vidgate.gateway.jobs.state import TERMINAL
from vidgate.gateway.services import Gateway, services

log = logging.getLogger("vidgate.stream")

PROTOCOL = "vidgate.v1"
BEARER_PREFIX = "bearer."
HEARTBEAT_MIN_MS, HEARTBEAT_MAX_MS, HEARTBEAT_DEFAULT_MS = 1000, 10000, 10000
_INTERVAL = re.compile(r"-?[0-9]{1,12}\Z")
_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})


# ---- websocket --------------------------------------------------------------------------------


async def _authenticate(ws: WebSocket, g: Gateway, job_id: str) -> str:
    """The owner the socket is for; opening it counts against the key's request rate."""
    try:
        principal = await _principal(ws, g, job_id)
        await g.keys.throttle(principal)
    except RateLimitError as exc:
        raise Refused(CLOSE_TOO_MANY, exc.message) from None
    return principal.owner_id


async def _principal(ws: WebSocket, g: Gateway, job_id: str) -> Principal:
    header = ws.headers.get("authorization")
    offered = ws.scope.get("subprotocols") or []
    key = next((p[len(BEARER_PREFIX) :] for p in offered if p.startswith(BEARER_PREFIX)), None)
    token = ws.query_params.get("token")
    if any(name in ws.query_params for name in ("api_key", "key", "authorization", "access_token")) or (
        token and token.startswith(KEY_PREFIX)
    ):
        raise Refused(CLOSE_UNAUTHORIZED, "API keys are not accepted in the URL; use a stream token")
    try:
        if header:
            return await g.keys.authenticate(header)
        if key:
            return await g.keys.authenticate(f"Bearer {key}")
        if token:
            return await g.keys.by_id(verify_token(g.settings.signing_secret, job_id, token))
    except InvalidToken as exc:
        raise Refused(CLOSE_UNAUTHORIZED, str(exc)) from None
    except VidgateError as exc:
        raise Refused(CLOSE_UNAUTHORIZED, exc.message) from None
    raise Refused(CLOSE_UNAUTHORIZED, "missing credentials: Authorization header, bearer subprotocol or ?token=")


def _options(ws: WebSocket) -> tuple[float, bool]:
    """The heartbeat in seconds and ``close_on_terminal``; refuses what is not a number or a boolean."""
    q = ws.query_params
    raw = q.get("interval_ms") or str(HEARTBEAT_DEFAULT_MS)
    if not _INTERVAL.match(raw):
        raise Refused(CLOSE_BAD_REQUEST, "interval_ms must be a whole number of milliseconds")
    interval = min(HEARTBEAT_MAX_MS, max(HEARTBEAT_MIN_MS, int(raw)))
    close = (q.get("close_on_terminal") or "true").strip().lower()
    if close not in _TRUE and close not in _FALSE:
        raise Refused(CLOSE_BAD_REQUEST, "close_on_terminal must be true or false (1/0, yes/no, on/off)")
    return interval / 1000, close in _TRUE


async def video_socket(ws: WebSocket) -> None:
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol=PROTOCOL if PROTOCOL in offered else None)
    try:
        await _serve_socket(ws, services(ws), ws.path_params["video_id"])
    except (WebSocketDisconnect, OSError, RuntimeError):  # the peer went away mid-send
        pass
    except Exception:
        log.exception("websocket for %s failed", ws.path_params["video_id"])
        with contextlib.suppress(Exception):
            await ws.close(CLOSE_INTERNAL, "internal error")


async def _serve_socket(ws: WebSocket, g: Gateway, job_id: str) -> None:
    try:
        if g.bus.draining:
            raise Refused(CLOSE_GOING_AWAY, DRAINING_REASON)
        who = await _authenticate(ws, g, job_id)
        heartbeat, close_on_terminal = _options(ws)
    except Refused as exc:
        await ws.close(exc.code, exc.reason[:120])
        return
    streams = g.streams
    queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_LIMIT)
    sock = Socket(ws, heartbeat, queue)
    fanout = fanout_of(g.bus)
    fanout.join(job_id, sock)  # the job's events reach the socket's queue from now on
    stream: Stream | None = None
    try:
        check_open(None, DRAIN if g.bus.draining else None)
        since, param = catchup.since_of({}, ws.query_params)
        try:
            # The newest event id before the snapshot's row: the snapshot shows at least that event.
            snapshot_id, cursor = await catchup.latest(g.db, job_id)
            row = await g.jobs.row(who, job_id)
            if since:
                cursor = await catchup.resume_at(g.db, job_id, since, param)
        except NotFoundError:
            await ws.close(CLOSE_NOT_FOUND, "video not found")
            return
        except VidgateError as exc:
            await ws.close(CLOSE_BAD_REQUEST, exc.message[:120])
            return
        try:
            stream = streams.take(who, queue)
        except VidgateError as exc:
            await ws.close(CLOSE_TOO_MANY if exc.status == 429 else CLOSE_UNAUTHORIZED, exc.message[:120])
            return
        start = Start(cursor, None if since else snapshot_id, resumed=bool(since))
        base = g.settings.base_url.of(ws.scope)
        snapshot = g.jobs.view(row, base)
        if await pump(sock, g, who, job_id, queue, snapshot, close_on_terminal, stream, start, base=base):
            await ws.close(CLOSE_NORMAL)
    except Refused as exc:
        await ws.close(exc.code, exc.reason[:120])
    finally:
        fanout.leave(job_id, sock)
        if stream is not None:
            streams.release(stream)


async def socket_over_http(request: Request) -> Response:
    raise UpgradeRequiredError(
        "this is a websocket endpoint: connect with Upgrade: websocket", headers={"Upgrade": "websocket"}
    )


# ---- server-sent events -----------------------------------------------------------------------


async def video_events(request: Request) -> Response:
    g = services(request)
    if g.bus.draining:
        raise ServiceUnavailableError(DRAINING_REASON, headers={"Retry-After": "1"})
    who = await owner(request)  # authenticates, and counts the open against the key's request rate
    job_id = request.path_params["video_id"]
    heartbeat = int_param(request, "interval_ms", HEARTBEAT_DEFAULT_MS, HEARTBEAT_MIN_MS, HEARTBEAT_MAX_MS) / 1000
    row = await g.jobs.row(who, job_id)
    since, param = catchup.since_of(request.headers, request.query_params)
    cursor = await catchup.resume_at(g.db, job_id, since, param) if since else None
    backlog = await cursor.missed() if cursor is not None else []
    if cursor is not None and not backlog and row.status in TERMINAL:
        return Response(status_code=204)  # a client reconnecting to a finished job it has seen end: stop it
    streams = g.streams
    queue = g.bus.subscribe(job_id)
    try:
        stream = streams.take(who, queue)
    except VidgateError:
        g.bus.unsubscribe(job_id, queue)
        raise

    def release() -> None:
        g.bus.unsubscribe(job_id, queue)
        streams.release(stream)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    body = sse_frames(g, stream, job_id, heartbeat, cursor, backlog, base=g.settings.base_url.of(request.scope))
    return _EventStream(body, release, media_type="text/event-stream; charset=utf-8", headers=headers)


class _EventStream(StreamingResponse):
    """Gives the stream's slot back however the response ends, even before its first byte is sent."""

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


# ---- stream tokens ----------------------------------------------------------------------------


async def stream_token(request: Request) -> Response:
    g = services(request)
    principal = await caller(request)
    job_id = request.path_params["video_id"]
    await g.jobs.row(principal.owner_id, job_id)
    opts: StreamTokenRequest = decode(await read_body(request, 4096, json=False), StreamTokenRequest)
    if not 1 <= opts.ttl_seconds <= TOKEN_TTL_MAX:
        raise ValidationError(f"ttl_seconds must be between 1 and {TOKEN_TTL_MAX}", param="ttl_seconds")
    token, expires = issue_token(g.settings.signing_secret, job_id, principal.key_id, opts.ttl_seconds)
    url = f"{websocket_base(g.settings.base_url.of(request.scope))}/v1/async/video/{job_id}/ws?token={token}"
    return json_response({"token": token, "expires_at": expires, "url": url})
