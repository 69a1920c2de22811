"""Live job updates over a websocket and server-sent events, pushed from the event bus.

Both streams subscribe to the bus before reading the job, send a snapshot, then one update per
committed event, and end after a terminal status. Every event message carries its event id; a client
resuming with ``Last-Event-ID`` (SSE) or ``since=`` (both) gets every event after that id instead of
the snapshot. The bus can miss events, so streams also re-read the events table (``catchup.py``).
When the process shuts down (``drain.py``) websockets close with 1001 and event streams end, so
clients reconnect to another process and resume there.

Websocket auth, in order: ``Authorization: Bearer KEY``; for browsers, which cannot set headers,
the subprotocol offer ``["vidgate.v1", "bearer.KEY"]`` (the server selects ``vidgate.v1`` and never
echoes the key; offering only ``bearer.KEY`` is accepted with no subprotocol selected, which browsers
refuse, so browsers must offer both); or ``?token=`` from ``POST /v1/videos/{id}/stream_token``, a
short-lived HMAC token bound to the job and its key (``stream_tokens.py``). An API key is never
accepted in a URL. Opening a stream counts against the key's request rate, and its open streams are
capped per process; revoking the key ends them (``stream_slots.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

from vidgate.errors import (
    NotFoundError,
    RateLimitError,
    ServiceUnavailableError,
    UpgradeRequiredError,
    VidgateError,
)
from vidgate.gateway.api.http import int_param
from vidgate.gateway.api.videos import gw, owner
from vidgate.gateway.auth import KEY_PREFIX, Principal
from vidgate.gateway.events import catchup
from vidgate.gateway.events.bus import DRAIN, RESYNC
from vidgate.gateway.events.catchup import Cursor
from vidgate.gateway.events.sockets import BEAT_SLACK as _BEAT_SLACK
from vidgate.gateway.events.sockets import CLIENT as _CLIENT
from vidgate.gateway.events.sockets import HEARTBEAT as _HEARTBEAT
from vidgate.gateway.events.sockets import Socket as _Socket
from vidgate.gateway.events.stream_slots import REVOKED_REASON, Stream, streams_of
from vidgate.gateway.events.stream_tokens import InvalidToken, stream_token, verify_token
from vidgate.gateway.ids import now_s
from vidgate.gateway.jobs.state import TERMINAL
from vidgate.types import JobEvent, Video

log = logging.getLogger("vidgate.stream")

PROTOCOL = "vidgate.v1"
BEARER_PREFIX = "bearer."
HEARTBEAT_MIN_MS, HEARTBEAT_MAX_MS, HEARTBEAT_DEFAULT_MS = 1000, 10000, 10000
CLOSE_INTERNAL, CLOSE_GOING_AWAY = 1011, 1001
DRAINING_REASON = "the server is shutting down; reconnect to resume"
CLOSE_NORMAL, CLOSE_BAD_REQUEST, CLOSE_UNAUTHORIZED, CLOSE_NOT_FOUND, CLOSE_TOO_MANY = 1000, 4400, 4401, 4404, 4429
_encoder = msgspec.json.Encoder()
_ENCODED_KEEP = 1024  # events whose encoding is kept; a few seconds of updates across every watched job


class _Invalid(Exception):
    """A stream cannot start: the websocket close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# ---- shared -----------------------------------------------------------------------------------


def _message(kind: str, video: Video, event: JobEvent | None = None) -> dict[str, Any]:
    if event is None:
        return {"type": kind, "data": video}
    return {"type": kind, "event": event.type, "id": event.id, "data": video}


def _snapshot(video: Video, event_id: str | None) -> dict[str, Any]:
    """The snapshot, with the newest event id it shows: a client resumes after it."""
    message = _message("job.snapshot", video)
    if event_id:
        message["id"] = event_id
    return message


def _deleted(job_id: str) -> dict[str, Any]:
    return {"type": "job.deleted", "data": {"id": job_id, "object": "video.deleted", "deleted": True}}


_encoded: dict[str, tuple[JobEvent, bytes, str]] = {}


def _update(event: JobEvent) -> tuple[bytes, str]:
    """``event``'s ``job.updated`` message as JSON bytes (SSE) and text (websocket), encoded once:
    the bus hands all of a job's subscribers the same object (checked, not just its id)."""
    hit = _encoded.get(event.id)
    if hit is None or hit[0] is not event:
        raw = _encoder.encode(_message("job.updated", event.data, event))
        hit = _encoded[event.id] = (event, raw, raw.decode())
        if len(_encoded) > _ENCODED_KEEP:
            del _encoded[next(iter(_encoded))]  # the oldest: its streams sent it long ago
    return hit[1], hit[2]


# ---- websocket --------------------------------------------------------------------------------


async def _authenticate(ws: WebSocket, g: Any, job_id: str) -> str:
    """The owner the socket is for; opening it counts against the key's request rate."""
    try:
        principal = await _principal(ws, g, job_id)
        g.keys.throttle(principal)
    except RateLimitError as exc:
        raise _Invalid(CLOSE_TOO_MANY, exc.message) from None
    return principal.owner_id


async def _principal(ws: WebSocket, g: Any, job_id: str) -> Principal:
    header = ws.headers.get("authorization")
    offered = ws.scope.get("subprotocols") or []
    key = next((p[len(BEARER_PREFIX) :] for p in offered if p.startswith(BEARER_PREFIX)), None)
    token = ws.query_params.get("token")
    if any(name in ws.query_params for name in ("api_key", "key", "authorization", "access_token")) or (
        token and token.startswith(KEY_PREFIX)
    ):
        raise _Invalid(CLOSE_UNAUTHORIZED, "API keys are not accepted in the URL; use a stream token")
    try:
        if header:
            return await g.keys.authenticate(header)
        if key:
            return await g.keys.authenticate(f"Bearer {key}")
        if token:
            return await g.keys.by_id(verify_token(g.settings.signing_secret, job_id, token))
    except InvalidToken as exc:
        raise _Invalid(CLOSE_UNAUTHORIZED, str(exc)) from None
    except VidgateError as exc:
        raise _Invalid(CLOSE_UNAUTHORIZED, exc.message) from None
    raise _Invalid(CLOSE_UNAUTHORIZED, "missing credentials: Authorization header, bearer subprotocol or ?token=")


def _options(ws: WebSocket) -> tuple[float, bool]:
    q = ws.query_params
    raw = q.get("interval_ms") or str(HEARTBEAT_DEFAULT_MS)
    if not raw.isdigit() or not HEARTBEAT_MIN_MS <= int(raw) <= HEARTBEAT_MAX_MS:
        raise _Invalid(CLOSE_BAD_REQUEST, f"interval_ms must be between {HEARTBEAT_MIN_MS} and {HEARTBEAT_MAX_MS}")
    close = (q.get("close_on_terminal") or "true").lower()
    if close not in ("true", "false", "1", "0"):
        raise _Invalid(CLOSE_BAD_REQUEST, "close_on_terminal must be true or false")
    return int(raw) / 1000, close in ("true", "1")


async def video_socket(ws: WebSocket) -> None:
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol=PROTOCOL if PROTOCOL in offered else None)
    try:
        await _serve_socket(ws, ws.app.state.gateway, ws.path_params["video_id"])
    except (WebSocketDisconnect, OSError, RuntimeError):  # the peer went away mid-send
        pass
    except Exception:
        log.exception("websocket for %s failed", ws.path_params["video_id"])
        with contextlib.suppress(Exception):
            await ws.close(CLOSE_INTERNAL, "internal error")


async def _serve_socket(ws: WebSocket, g: Any, job_id: str) -> None:
    try:
        if g.bus.draining:
            raise _Invalid(CLOSE_GOING_AWAY, DRAINING_REASON)
        who = await _authenticate(ws, g, job_id)
        heartbeat, close_on_terminal = _options(ws)
    except _Invalid as exc:
        await ws.close(exc.code, exc.reason[:120])
        return
    streams = streams_of(ws.app)
    queue = g.bus.subscribe(job_id)
    stream: Stream | None = None
    try:
        _check_open(None, DRAIN if g.bus.draining else None)
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
        sock = _Socket(ws, heartbeat, queue)
        start = _Start(cursor, None if since else snapshot_id, resumed=bool(since))
        if await _pump(sock, g, who, job_id, queue, g.jobs.view(row), close_on_terminal, stream, start):
            await ws.close(CLOSE_NORMAL)
    except _Invalid as exc:
        await ws.close(exc.code, exc.reason[:120])
    finally:
        g.bus.unsubscribe(job_id, queue)
        if stream is not None:
            streams.release(stream)


class _Start:
    """How a socket starts: with a snapshot labelled ``snapshot_id``, or ``resumed`` after the
    client's last event id (``cursor``), with no snapshot."""

    __slots__ = ("cursor", "resumed", "snapshot_id")

    def __init__(self, cursor: Cursor | None, snapshot_id: str | None = None, resumed: bool = False) -> None:
        self.cursor = cursor
        self.snapshot_id = snapshot_id
        self.resumed = resumed


def _check_open(stream: Stream | None, item: Any = None) -> None:
    """Raise the close for a revoked key, or for ``DRAIN``: the process is shutting down."""
    if stream is not None and stream.revoked:
        raise _Invalid(CLOSE_UNAUTHORIZED, REVOKED_REASON)
    if item is DRAIN:
        raise _Invalid(CLOSE_GOING_AWAY, DRAINING_REASON)


async def _pump(
    sock: _Socket,
    g: Any,
    who: str,
    job_id: str,
    queue: asyncio.Queue[Any],
    snapshot: Video,
    close_on_terminal: bool,
    stream: Stream | None = None,
    start: _Start | None = None,
) -> bool:
    """Relay the job's events until it ends; True when the server should close the socket.

    Raises ``_Invalid`` when ``stream``'s key is revoked meanwhile, or the process is draining.
    """
    start = start or _Start(None)
    cursor = start.cursor

    async def relay(item: Any) -> bool:
        _check_open(stream, item)
        for update in await catchup.updates(cursor, item):
            if update is None:
                await sock.send(_deleted(job_id))
                return True
            await sock.send_text(_update(update)[1])
            if close_on_terminal and update.data.status in TERMINAL:
                return True
        return False

    if start.resumed:
        if await relay(RESYNC) or (close_on_terminal and snapshot.status in TERMINAL):
            return True  # the events after the client's id, ending with the terminal one, or none left
        backlog = []
    else:
        await sock.send(_snapshot(snapshot, start.snapshot_id))
        if close_on_terminal and snapshot.status in TERMINAL:
            return True
        _check_open(stream)  # before pending, which drops the revoked marker
        backlog = catchup.pending(queue, snapshot, cursor)
    for item in backlog:
        if await relay(item):
            return True
    sock.start(check=cursor is not None)
    try:
        while True:
            item = await queue.get()
            _check_open(stream, item)
            if item is _HEARTBEAT:
                if sock.idle_for() <= _BEAT_SLACK:  # else an event went out since the timer fired
                    await sock.send({"type": "heartbeat", "at": now_s()})
            elif item is not _CLIENT and await relay(item):
                return True
            if (message := sock.take()) is not None:
                if isinstance(message, Exception):
                    raise message
                if message["type"] == "websocket.disconnect":
                    return False
                if await _answer(sock, g, who, job_id, message, close_on_terminal, cursor):
                    return True
    finally:
        sock.stop()


async def _answer(
    sock: _Socket,
    g: Any,
    who: str,
    job_id: str,
    message: dict[str, Any],
    close_on_terminal: bool,
    cursor: Cursor | None = None,
) -> bool:
    """Answer one client message; True when the socket should close (a refresh found the job over)."""
    text = (message.get("text") or "").strip()
    kind = text.lower()
    if text.startswith("{"):
        try:
            parsed = orjson.loads(text)
            kind = str(parsed.get("type", "")).lower() if isinstance(parsed, dict) else ""
        except orjson.JSONDecodeError:
            kind = ""
    if kind == "ping":
        await sock.send({"type": "pong"})
    elif kind == "refresh":
        try:
            latest = (await catchup.latest(cursor.db, job_id))[0] if cursor is not None else None
            row = await g.jobs.row(who, job_id)
        except NotFoundError:
            await sock.send(_deleted(job_id))
            return True
        video = g.jobs.view(row)
        await sock.send(_snapshot(video, latest))
        return close_on_terminal and video.status in TERMINAL
    else:
        await sock.send(
            {
                "type": "error",
                "error": {
                    "code": "unknown_message",
                    "message": 'send "ping", "refresh" or {"type": "ping" | "refresh"}',
                },
            }
        )
    return False


async def socket_over_http(request: Request) -> Response:
    raise UpgradeRequiredError(
        "this is a websocket endpoint: connect with Upgrade: websocket", headers={"Upgrade": "websocket"}
    )


# ---- server-sent events -----------------------------------------------------------------------


def _frame(message: dict[str, Any], event_id: str | None) -> bytes:
    head = f"id: {event_id}\n".encode() if event_id else b""
    return head + b"event: " + message["type"].encode() + b"\ndata: " + _encoder.encode(message) + b"\n\n"


def _sse_update(job_id: str, item: JobEvent | None) -> bytes:
    if item is None:
        return _frame(_deleted(job_id), None)
    return f"id: {item.id}\nevent: job.updated\ndata: ".encode() + _update(item)[0] + b"\n\n"


async def video_events(request: Request) -> Response:
    g = gw(request)
    if g.bus.draining:
        raise ServiceUnavailableError(DRAINING_REASON, headers={"Retry-After": "1"})
    who = await owner(request)  # authenticates, and counts the open against the key's request rate
    job_id = request.path_params["video_id"]
    heartbeat = int_param(request, "interval_ms", HEARTBEAT_DEFAULT_MS, HEARTBEAT_MIN_MS, HEARTBEAT_MAX_MS) / 1000
    row = await g.jobs.row(who, job_id)
    since, param = catchup.since_of(request.headers, request.query_params)
    cursor = await catchup.resume_at(g.db, job_id, since, param) if since else None
    backlog = await cursor.missed() if cursor is not None else []
    if cursor is not None and not backlog and row["status"] in TERMINAL:
        return Response(status_code=204)  # a client reconnecting to a finished job it has seen end: stop it
    streams = streams_of(request.app)
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
    body = _sse(g, stream, job_id, heartbeat, cursor, backlog)
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


def _revoked_frame() -> bytes:
    return _frame({"type": "error", "error": {"code": "unauthorized", "message": REVOKED_REASON}}, None)


async def _sse(
    g: Any, stream: Stream, job_id: str, heartbeat: float, cursor: Cursor | None, backlog: list[JobEvent]
) -> AsyncIterator[bytes]:
    """The stream's frames: a snapshot (or, resuming, ``backlog``: the events after the client's id),
    then updates until the job ends, the key is revoked or the process drains."""
    who, queue = stream.owner, stream.queue
    loop = asyncio.get_running_loop()
    yield b"retry: 3000\n\n"
    items: list[Any] = []
    if cursor is None:
        try:
            snapshot_id, cursor = await catchup.latest(g.db, job_id)  # before the row: see ``latest``
            row = await g.jobs.row(who, job_id)
        except NotFoundError:
            yield _frame(_deleted(job_id), None)
            return
        video = g.jobs.view(row)
        yield _frame(_snapshot(video, snapshot_id), snapshot_id)
        if video.status in TERMINAL:
            return
        items = catchup.pending(queue, video, cursor)  # the revoked marker is dropped: the flag is checked
    for event in backlog:  # already counted as sent by the cursor
        yield _sse_update(job_id, event)
        if event.data.status in TERMINAL:
            return
    beat_at = loop.time() + heartbeat
    check_at = loop.time() + catchup.check_delay()
    while True:
        if stream.revoked:
            yield _revoked_frame()
            return
        if g.bus.draining:
            return  # the client reconnects elsewhere, with Last-Event-ID
        for item in items:
            for update in await catchup.updates(cursor, item):
                yield _sse_update(job_id, update)
                beat_at = loop.time() + heartbeat
                if update is None or update.data.status in TERMINAL:
                    return
        now = loop.time()
        if now >= check_at:
            items, check_at = [RESYNC], now + catchup.check_delay()
            continue
        try:
            items = [await asyncio.wait_for(queue.get(), timeout=max(0.0, min(beat_at, check_at) - now))]
        except TimeoutError:
            items = []
            if loop.time() >= beat_at - _BEAT_SLACK:
                yield f": heartbeat {now_s()}\n\n".encode()
                beat_at = loop.time() + heartbeat


routes = [
    WebSocketRoute("/v1/async/video/{video_id}/ws", video_socket),
    Route("/v1/async/video/{video_id}/ws", socket_over_http, methods=["GET"]),
    Route("/v1/videos/{video_id}/events", video_events, methods=["GET"]),
    Route("/v1/videos/{video_id}/stream_token", stream_token, methods=["POST"]),
]
