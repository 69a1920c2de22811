"""One websocket's wake-ups: everything the pump in ``stream.py`` waits for arrives on one queue.

A client message, a due heartbeat, the periodic re-read of the events table, and whatever the job's
fan-out (``fanout.py``) could not send itself all wake the pump through the socket's queue, so a socket
costs one reader task and two timers however many messages pass. While the pump is idle, its queue
empty and its last send finished, the fan-out sends a job's events to the socket itself (``deliver``):
one task per job sends each event to all of its sockets, and the pumps are not woken for it.

Messages go out through the server's own ``send`` (kept in the scope by ``ServerSend``), not through
the framework's wrappers, and the wait for one send to finish is deferred to the next send (or the
end of the pump): a server whose ``send`` starts the write when called (Granian returns a future)
then costs the pump one wake-up per message instead of two. With 2,000 sockets that was about a
third of the server's CPU per message.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from vidgate.gateway.events import catchup
from vidgate.gateway.events.bus import RESYNC
from vidgate.gateway.events.catchup import Cursor
from vidgate.gateway.events.stream_slots import Stream
from vidgate.types import JobEvent

BEAT_SLACK = 0.01  # a heartbeat this close to due is sent rather than re-armed for a few ms
_encoder = msgspec.json.Encoder()

CLIENT, HEARTBEAT = object(), object()  # put on the socket's queue to wake the pump
END = object()  # the fan-out sent the terminal event: the pump closes the socket
SEND_FAILED = object()  # a send the fan-out started failed at once: the pump raises it and ends
SERVER_SEND = "vidgate.server_send"  # the scope key of the server's own ``send``


class ServerSend:
    """Keeps a websocket's ``send`` as the server gave it in the scope, beneath the framework's wrappers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[SERVER_SEND] = send
        await self.app(scope, receive, send)


class Socket:
    """One websocket: bus events, a client message (``take`` + ``CLIENT``), due heartbeats and the
    periodic re-read of the events table (``RESYNC``) all wake the pump through the socket's queue.
    One reader task and two self-re-arming timers live as long as the socket; a task, ``asyncio.wait``
    and timer per event cost a quarter of the server CPU per message with 2,000 sockets.
    """

    def __init__(self, ws: WebSocket, heartbeat: float, queue: asyncio.Queue[Any]) -> None:
        self.ws = ws
        self.heartbeat = heartbeat
        self.queue = queue
        self.loop = asyncio.get_running_loop()
        self.last_sent = self.loop.time()
        self._inbox: Message | Exception | None = None
        self._taken = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._check: asyncio.TimerHandle | None = None
        self._server_send: Callable[[Message], Awaitable[None]] | None = ws.scope.get(SERVER_SEND)
        self._sending: Awaitable[None] | None = None  # the last send, started and not yet waited for
        # Set by the pump: the fan-out may send only while ``idle``, and dedupes and ends as the pump would.
        self.idle = False
        self.cursor: Cursor | None = None
        self.stream: Stream | None = None
        self.close_on_terminal = True

    async def send_text(self, text: str) -> None:
        """Send ``text``; a failure of the send before it is raised here (the socket is gone either way)."""
        if self._sending is not None:
            sending, self._sending = self._sending, None
            await sending
        if self._server_send is None:
            await self.ws.send_text(text)
        else:
            sending = self._server_send({"type": "websocket.send", "text": text})
            if inspect.iscoroutine(sending):  # a server whose send only runs when awaited
                await sending
            else:
                self._sending = sending
        self.last_sent = self.loop.time()

    async def flush(self) -> None:
        """Wait for the last send: before a close, or before handing the socket back."""
        if self._sending is not None:
            sending, self._sending = self._sending, None
            await sending

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_text(_encoder.encode(message).decode())

    def idle_for(self) -> float:
        return max(0.0, self.last_sent + self.heartbeat - self.loop.time())

    def start(self, check: bool = False) -> None:
        """Start reading the client and arm the heartbeat (after the snapshot and backlog are sent),
        and with ``check`` the periodic re-read of the events table."""
        self._reader = self.loop.create_task(self._read())
        self._timer = self.loop.call_at(self.last_sent + self.heartbeat, self._beat)
        if check:
            self._check = self.loop.call_later(catchup.check_delay(), self._recheck)

    def stop(self) -> None:
        for handle in (self._reader, self._timer, self._check):
            if handle is not None:
                handle.cancel()

    def wake(self, marker: object) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # the bus's own policy: a listener this far behind loses the oldest
        self.queue.put_nowait(marker)
        self.idle = False

    def deliver(self, event: JobEvent, message: Message, terminal: bool) -> None:
        """Send the job's ``event`` (its encoded ``message``) from the fan-out's task, or hand it to the
        pump when it cannot go out at once: the pump is busy or has messages queued (order), the
        last send is still being written (a slow client then falls behind on its own queue, as it
        always did), the key was revoked, or the server's ``send`` is not kept."""
        sending = self._sending
        if (
            not self.idle
            or self._server_send is None
            or self.queue.qsize()
            or (self.stream is not None and self.stream.revoked)
            or (sending is not None and not _finished_well(sending))
        ):
            self.wake(event)
            return
        if self.cursor is not None and not self.cursor.fresh(event):
            return
        try:
            started = self._server_send(message)
        except Exception as exc:  # the socket is gone: the pump ends it as a failed send
            self._sending = _failed(self.loop, exc)
            self.wake(SEND_FAILED)
            return
        # A server whose send runs only when awaited gets a task of its own; the next send waits for it.
        self._sending = self.loop.create_task(started) if inspect.iscoroutine(started) else started
        self.last_sent = self.loop.time()
        if terminal and self.close_on_terminal:
            self.wake(END)

    def take(self) -> Message | Exception | None:
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
                self.wake(CLIENT)
                if message["type"] == "websocket.disconnect":
                    return
                await self._taken.wait()
        except Exception as exc:  # raised by the pump, so the socket ends as a failed receive always did
            self._inbox = exc
            self.wake(CLIENT)

    def _beat(self) -> None:
        """Wake the pump if nothing went out for ``heartbeat``, else re-arm: sends only move ``last_sent``."""
        now, due = self.loop.time(), self.last_sent + self.heartbeat
        if now >= due - BEAT_SLACK:
            self.wake(HEARTBEAT)
            due = now + self.heartbeat
        self._timer = self.loop.call_at(due, self._beat)

    def _recheck(self) -> None:
        self.wake(RESYNC)
        self._check = self.loop.call_later(catchup.check_delay(), self._recheck)


def _finished_well(sending: Awaitable[None]) -> bool:
    """True when the send is known to have finished without error; otherwise the pump waits for it."""
    done = getattr(sending, "done", None)
    if done is None or not done():
        return False
    try:
        return sending.exception() is None  # type: ignore[attr-defined]
    except BaseException:  # cancelled, or not a future after all
        return False


def _failed(loop: asyncio.AbstractEventLoop, exc: Exception) -> asyncio.Future[None]:
    future: asyncio.Future[None] = loop.create_future()
    future.set_exception(exc)
    return future
