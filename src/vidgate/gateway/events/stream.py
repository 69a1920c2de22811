"""Live job updates over a websocket and server-sent events, pushed from the event bus.

Both streams subscribe to the bus before reading the job, send a snapshot, then one update per
committed event, and end after a terminal status. Nothing here polls the database.

Websocket auth, in order: ``Authorization: Bearer KEY``; for browsers, which cannot set headers,
the subprotocol offer ``["vidgate.v1", "bearer.KEY"]`` (the server selects ``vidgate.v1`` and never
echoes the key; offering only ``bearer.KEY`` is accepted with no subprotocol selected, which browsers
refuse, so browsers must offer both); or ``?token=`` from ``POST /v1/videos/{id}/stream_token``, a
short-lived HMAC token bound to the job and its owner (``stream_tokens.py``). An API key is never
accepted in a URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from vidgate.errors import (
    NotFoundError,
    RateLimitError,
    UpgradeRequiredError,
    VidgateError,
)
from vidgate.gateway.api.http import int_param
from vidgate.gateway.api.videos import gw, owner
from vidgate.gateway.auth import KEY_PREFIX
from vidgate.gateway.events.stream_tokens import InvalidToken, stream_token, verify_token
from vidgate.gateway.ids import now_s
from vidgate.gateway.jobs.state import TERMINAL
from vidgate.gateway.storage.db import Q
from vidgate.types import JobEvent, Video

log = logging.getLogger("vidgate.stream")

PROTOCOL = "vidgate.v1"
BEARER_PREFIX = "bearer."
HEARTBEAT_MIN_MS, HEARTBEAT_MAX_MS, HEARTBEAT_DEFAULT_MS = 1000, 10000, 10000
CLOSE_INTERNAL = 1011
CLOSE_NORMAL, CLOSE_BAD_REQUEST, CLOSE_UNAUTHORIZED, CLOSE_NOT_FOUND, CLOSE_TOO_MANY = 1000, 4400, 4401, 4404, 4429
_LAST_EVENT = Q("SELECT id FROM events WHERE job_id = :id ORDER BY seq DESC LIMIT 1")
_encoder = msgspec.json.Encoder()
_ENCODED_KEEP = 1024  # events whose encoding is kept; a few seconds of updates across every watched job
_BEAT_SLACK = 0.01  # a heartbeat this close to due is sent rather than re-armed for a few ms


class _Invalid(Exception):
    """A stream cannot start: the websocket close code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# ---- shared -----------------------------------------------------------------------------------


class _Slots:
    """Open streams per owner, capped at ``settings.max_websockets_per_key`` (per process)."""

    def __init__(self) -> None:
        self.open: dict[str, int] = {}

    def full(self, owner_id: str, cap: int) -> bool:
        return self.open.get(owner_id, 0) >= cap

    def take(self, owner_id: str) -> None:
        self.open[owner_id] = self.open.get(owner_id, 0) + 1

    def release(self, owner_id: str) -> None:
        left = self.open.get(owner_id, 0) - 1
        if left > 0:
            self.open[owner_id] = left
        else:
            self.open.pop(owner_id, None)


def _slots(app: Any) -> _Slots:
    slots = getattr(app.state, "stream_slots", None)
    if slots is None:
        slots = app.state.stream_slots = _Slots()
    return slots


def _message(kind: str, video: Video, event: JobEvent | None = None) -> dict[str, Any]:
    if event is None:
        return {"type": kind, "data": video}
    return {"type": kind, "event": event.type, "id": event.id, "data": video}


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


_RANK = {"queued": 0, "processing": 1, "completed": 2, "failed": 2, "cancelled": 2, "expired": 3}


def _pending(queue: asyncio.Queue[JobEvent | None], snapshot: Video) -> list[JobEvent | None]:
    """Events queued while the snapshot was read, minus those it already shows (``None``: deleted)."""
    kept: list[JobEvent | None] = []
    while not queue.empty():
        item = queue.get_nowait()
        if item is not None:
            e, s = item.data, snapshot
            if _RANK[e.status] < _RANK[s.status] or (e.status == s.status and (e.progress or 0) <= (s.progress or 0)):
                continue
        kept.append(item)
    return kept


# ---- websocket --------------------------------------------------------------------------------


async def _authenticate(ws: WebSocket, g: Any, job_id: str) -> str:
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
            return (await g.keys.authenticate(header)).owner_id
        if key:
            return (await g.keys.authenticate(f"Bearer {key}")).owner_id
    except VidgateError as exc:
        raise _Invalid(CLOSE_UNAUTHORIZED, exc.message) from None
    if token:
        try:
            return verify_token(g.settings.signing_secret, job_id, token)
        except InvalidToken as exc:
            raise _Invalid(CLOSE_UNAUTHORIZED, str(exc)) from None
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


_CLIENT, _HEARTBEAT = object(), object()  # put on the job's bus queue to wake the pump


class _Socket:
    """One websocket: bus events, a client message (``take`` + ``_CLIENT``) and due heartbeats all
    wake the pump through the job's bus queue. One reader task and one self-re-arming timer live as
    long as the socket; a task, ``asyncio.wait`` and timer per event cost a quarter of the server CPU
    per message with 2,000 sockets.
    """

    def __init__(self, ws: WebSocket, heartbeat: float, queue: asyncio.Queue[Any]) -> None:
        self.ws = ws
        self.heartbeat = heartbeat
        self.queue = queue
        self.loop = asyncio.get_running_loop()
        self.last_sent = self.loop.time()
        self._inbox: dict[str, Any] | Exception | None = None
        self._taken = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    async def send_text(self, text: str) -> None:
        await self.ws.send_text(text)
        self.last_sent = self.loop.time()

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_text(_encoder.encode(message).decode())

    def idle_for(self) -> float:
        return max(0.0, self.last_sent + self.heartbeat - self.loop.time())

    def start(self) -> None:
        """Start reading the client and arm the heartbeat (after the snapshot and backlog are sent)."""
        self._reader = self.loop.create_task(self._read())
        self._timer = self.loop.call_at(self.last_sent + self.heartbeat, self._beat)

    def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._timer is not None:
            self._timer.cancel()

    def _wake(self, marker: object) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # the bus's own policy: a listener this far behind loses the oldest
        self.queue.put_nowait(marker)

    def take(self) -> dict[str, Any] | Exception | None:
        """The client message (or failed receive) waiting for the pump, if any."""
        message, self._inbox = self._inbox, None
        if message is not None:
            self._taken.set()
        return message

    async def _read(self) -> None:
        """Hand client messages to the pump one at a time, so a flooding client is not buffered."""
        try:
            while True:
                message = self._inbox = await self.ws.receive()
                self._taken.clear()
                self._wake(_CLIENT)
                if message["type"] == "websocket.disconnect":
                    return
                await self._taken.wait()
        except Exception as exc:  # raised by the pump, so the socket ends as a failed receive always did
            self._inbox = exc
            self._wake(_CLIENT)

    def _beat(self) -> None:
        """Wake the pump if nothing went out for ``heartbeat``, else re-arm: sends only move ``last_sent``."""
        now, due = self.loop.time(), self.last_sent + self.heartbeat
        if now >= due - _BEAT_SLACK:
            self._wake(_HEARTBEAT)
            due = now + self.heartbeat
        self._timer = self.loop.call_at(due, self._beat)


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
        who = await _authenticate(ws, g, job_id)
        heartbeat, close_on_terminal = _options(ws)
    except _Invalid as exc:
        await ws.close(exc.code, exc.reason[:120])
        return
    slots = _slots(ws.app)
    queue = g.bus.subscribe(job_id)
    acquired = False
    try:
        try:
            row = await g.jobs.row(who, job_id)
        except NotFoundError:
            await ws.close(CLOSE_NOT_FOUND, "video not found")
            return
        if slots.full(who, g.settings.max_websockets_per_key):
            await ws.close(CLOSE_TOO_MANY, "too many open streams for this key")
            return
        slots.take(who)
        acquired = True
        sock = _Socket(ws, heartbeat, queue)
        if await _pump(sock, g, who, job_id, queue, g.jobs.view(row), close_on_terminal):
            await ws.close(CLOSE_NORMAL)
    finally:
        g.bus.unsubscribe(job_id, queue)
        if acquired:
            slots.release(who)


async def _pump(
    sock: _Socket,
    g: Any,
    who: str,
    job_id: str,
    queue: asyncio.Queue[Any],
    snapshot: Video,
    close_on_terminal: bool,
) -> bool:
    """Relay the job's events until it ends; True when the server should close the socket."""

    async def relay(item: JobEvent | None) -> bool:
        if item is None:
            await sock.send(_deleted(job_id))
            return True
        await sock.send_text(_update(item)[1])
        return close_on_terminal and item.data.status in TERMINAL

    await sock.send(_message("job.snapshot", snapshot))
    if close_on_terminal and snapshot.status in TERMINAL:
        return True
    for item in _pending(queue, snapshot):
        if await relay(item):
            return True
    sock.start()
    try:
        while True:
            item = await queue.get()
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
                if await _answer(sock, g, who, job_id, message, close_on_terminal):
                    return True
    finally:
        sock.stop()


async def _answer(
    sock: _Socket, g: Any, who: str, job_id: str, message: dict[str, Any], close_on_terminal: bool
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
            row = await g.jobs.row(who, job_id)
        except NotFoundError:
            await sock.send(_deleted(job_id))
            return True
        video = g.jobs.view(row)
        await sock.send(_message("job.snapshot", video))
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
    who = await owner(request)
    job_id = request.path_params["video_id"]
    heartbeat = int_param(request, "interval_ms", HEARTBEAT_DEFAULT_MS, HEARTBEAT_MIN_MS, HEARTBEAT_MAX_MS) / 1000
    row = await g.jobs.row(who, job_id)
    if request.headers.get("last-event-id") and row["status"] in TERMINAL:
        return Response(status_code=204)  # an EventSource reconnecting to a finished job: stop it
    slots = _slots(request.app)
    if slots.full(who, g.settings.max_websockets_per_key):
        raise RateLimitError("too many open streams for this key", headers={"Retry-After": "5"})
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _sse(g, who, job_id, heartbeat, slots), media_type="text/event-stream; charset=utf-8", headers=headers
    )


async def _sse(g: Any, who: str, job_id: str, heartbeat: float, slots: _Slots) -> AsyncIterator[bytes]:
    # Taken here, not in the route, so the finally below always gives it back.
    slots.take(who)
    queue = g.bus.subscribe(job_id)
    try:
        yield b"retry: 3000\n\n"
        try:
            row = await g.jobs.row(who, job_id)
        except NotFoundError:
            yield _frame(_deleted(job_id), None)
            return
        last = await g.db.fetchone(_LAST_EVENT, {"id": job_id})
        video = g.jobs.view(row)
        yield _frame(_message("job.snapshot", video), last["id"] if last else None)
        if video.status in TERMINAL:
            return
        for item in _pending(queue, video):
            yield _sse_update(job_id, item)
            if item is None or item.data.status in TERMINAL:
                return
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=heartbeat)
            except TimeoutError:
                yield f": heartbeat {now_s()}\n\n".encode()
                continue
            yield _sse_update(job_id, item)
            if item is None or item.data.status in TERMINAL:
                return
    finally:
        g.bus.unsubscribe(job_id, queue)
        slots.release(who)


routes = [
    WebSocketRoute("/v1/async/video/{video_id}/ws", video_socket),
    Route("/v1/async/video/{video_id}/ws", socket_over_http, methods=["GET"]),
    Route("/v1/videos/{video_id}/events", video_events, methods=["GET"]),
    Route("/v1/videos/{video_id}/stream_token", stream_token, methods=["POST"]),
]
