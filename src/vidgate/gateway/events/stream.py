"""Pumping a job's live updates into a websocket or a server-sent event stream, from the event bus.

A stream (opened by ``api/events.py``, subscribed to the bus before the job was read) sends a
snapshot, then one update per committed event, and ends after a terminal status. A websocket's live
updates mostly leave from its job's fan-out (``fanout.py``) while its pump sleeps; the pump sends
the start, catch-up, heartbeats and answers, and whatever the fan-out could not send at once. Every event message
carries its event id; a client resuming after an id gets every event after it instead of the snapshot.
The bus can miss events, so streams also re-read the events table (``catchup.py``). When the process
shuts down (``drain.py``) websockets close with 1001 and event streams end, so clients reconnect to
another process and resume there; a revoked key's streams end too (``stream_slots.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import msgspec
import orjson
from starlette.types import Message

from vidgate.errors import NotFoundError
from vidgate.gateway.events import catchup
from vidgate.gateway.events.bus import DRAIN, RESYNC
from vidgate.gateway.events.catchup import Cursor
from vidgate.gateway.events.sockets import BEAT_SLACK as _BEAT_SLACK
from vidgate.gateway.events.sockets import CLIENT as _CLIENT
from vidgate.gateway.events.sockets import END as _END
from vidgate.gateway.events.sockets import HEARTBEAT as _HEARTBEAT
from vidgate.gateway.events.sockets import SEND_FAILED as _SEND_FAILED
from vidgate.gateway.events.sockets import Socket as _Socket
from vidgate.gateway.events.stream_slots import REVOKED_REASON, Stream
from vidgate.gateway.ids import now_s
from vidgate.gateway.jobs.state import TERMINAL
from vidgate.types import JobEvent, Video

if TYPE_CHECKING:
    from vidgate.gateway.services import Gateway

CLOSE_INTERNAL, CLOSE_GOING_AWAY = 1011, 1001
DRAINING_REASON = "the server is shutting down; reconnect to resume"
CLOSE_NORMAL, CLOSE_BAD_REQUEST, CLOSE_UNAUTHORIZED, CLOSE_NOT_FOUND, CLOSE_TOO_MANY = 1000, 4400, 4401, 4404, 4429
_encoder = msgspec.json.Encoder()
_ENCODED_KEEP = 1024  # events whose encoding is kept; a few seconds of updates across every watched job


class Refused(Exception):
    """A stream cannot start or go on: the websocket close code and reason."""

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
    """The job is gone: its id and kind (what the reference sends) and the delete's answer."""
    return {
        "type": "job.deleted",
        "data": {"id": job_id, "kind": "video", "object": "video.deleted", "deleted": True},
    }


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


encoded_update = _update  # what the job's fan-out sends


# ---- websocket --------------------------------------------------------------------------------


class Start:
    """How a socket starts: with a snapshot labelled ``snapshot_id``, or ``resumed`` after the
    client's last event id (``cursor``), with no snapshot."""

    __slots__ = ("cursor", "resumed", "snapshot_id")

    def __init__(self, cursor: Cursor | None, snapshot_id: str | None = None, resumed: bool = False) -> None:
        self.cursor = cursor
        self.snapshot_id = snapshot_id
        self.resumed = resumed


def check_open(stream: Stream | None, item: Any = None) -> None:
    """Raise the close for a revoked key, or for ``DRAIN``: the process is shutting down."""
    if stream is not None and stream.revoked:
        raise Refused(CLOSE_UNAUTHORIZED, REVOKED_REASON)
    if item is DRAIN:
        raise Refused(CLOSE_GOING_AWAY, DRAINING_REASON)


async def pump(
    sock: _Socket,
    g: Gateway,
    who: str,
    job_id: str,
    queue: asyncio.Queue[Any],
    snapshot: Video,
    close_on_terminal: bool,
    stream: Stream | None = None,
    start: Start | None = None,
    *,
    base: str | None = None,
) -> bool:
    """Relay the job's events until it ends; True when the server should close the socket.

    A refresh answers with the job's URLs on ``base`` (the snapshot's). Raises ``Refused`` when
    ``stream``'s key is revoked meanwhile, or the process is draining. Every message has left (or
    failed) when it returns, so the caller's close follows them.
    """
    try:
        return await _pump(sock, g, who, job_id, queue, snapshot, close_on_terminal, stream, start, base)
    finally:
        with contextlib.suppress(Exception):  # a failed send: the close that follows fails alike
            await sock.flush()


async def _pump(
    sock: _Socket,
    g: Gateway,
    who: str,
    job_id: str,
    queue: asyncio.Queue[Any],
    snapshot: Video,
    close_on_terminal: bool,
    stream: Stream | None,
    start: Start | None,
    base: str | None,
) -> bool:
    start = start or Start(None)
    cursor = start.cursor

    async def relay(item: Any) -> bool:
        check_open(stream, item)
        if isinstance(item, JobEvent):  # the common case, without a coroutine for ``catchup.updates``
            if cursor is not None and not cursor.fresh(item):
                return False
            await sock.send_text(_update(item)[1])
            return close_on_terminal and item.data.status in TERMINAL
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
        check_open(stream)  # before pending, which drops the revoked marker
        backlog = catchup.pending(queue, snapshot, cursor)
    for item in backlog:
        if await relay(item):
            return True
    sock.cursor, sock.stream, sock.close_on_terminal = cursor, stream, close_on_terminal
    sock.start(check=cursor is not None)
    try:
        while True:
            sock.idle = True  # the job's fan-out may send to the socket itself until the pump wakes
            item = await queue.get()
            sock.idle = False
            check_open(stream, item)
            if item is _END:
                return True
            if item is _SEND_FAILED:
                await sock.flush()  # raises the send's error
            elif item is _HEARTBEAT:
                if sock.idle_for() <= _BEAT_SLACK:  # else an event went out since the timer fired
                    await sock.send({"type": "heartbeat", "at": now_s()})
            elif item is not _CLIENT and await relay(item):
                return True
            if (message := sock.take()) is not None:
                if isinstance(message, Exception):
                    raise message
                if message["type"] == "websocket.disconnect":
                    return False
                if await _answer(sock, g, who, job_id, message, close_on_terminal, cursor, base):
                    return True
    finally:
        sock.idle = False
        sock.stop()


async def _answer(
    sock: _Socket,
    g: Gateway,
    who: str,
    job_id: str,
    message: Message,
    close_on_terminal: bool,
    cursor: Cursor | None = None,
    base: str | None = None,
) -> bool:
    """Answer one client message; True when the socket should close (a refresh found the job over).

    A refresh is answered with ``job.updated`` carrying the job as it is now, with the newest event id
    it shows (or ``job.deleted``).
    """
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
        video = g.jobs.view(row, base)
        message = _message("job.updated", video)
        if latest:
            message["id"] = latest
        await sock.send(message)
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


# ---- server-sent events -----------------------------------------------------------------------


def _frame(message: dict[str, Any], event_id: str | None) -> bytes:
    head = f"id: {event_id}\n".encode() if event_id else b""
    return head + b"event: " + message["type"].encode() + b"\ndata: " + _encoder.encode(message) + b"\n\n"


def _sse_update(job_id: str, item: JobEvent | None) -> bytes:
    if item is None:
        return _frame(_deleted(job_id), None)
    return f"id: {item.id}\nevent: job.updated\ndata: ".encode() + _update(item)[0] + b"\n\n"


def _revoked_frame() -> bytes:
    return _frame({"type": "error", "error": {"code": "unauthorized", "message": REVOKED_REASON}}, None)


async def sse_frames(
    g: Gateway,
    stream: Stream,
    job_id: str,
    heartbeat: float,
    cursor: Cursor | None,
    backlog: list[JobEvent],
    *,
    base: str | None = None,
) -> AsyncIterator[bytes]:
    """The stream's frames: a snapshot (its URLs on ``base``) or, resuming, ``backlog`` (the events after
    the client's id), then updates until the job ends, the key is revoked or the process drains."""
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
        video = g.jobs.view(row, base)
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
