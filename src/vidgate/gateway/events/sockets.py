"""One websocket's wake-ups: everything the pump in ``stream.py`` waits for arrives on one queue.

Bus events, a client message, a due heartbeat and the periodic re-read of the events table all wake
the pump through the job's bus queue, so a socket costs one reader task and two timers however many
messages pass.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from starlette.types import Message
from starlette.websockets import WebSocket

from vidgate.gateway.events import catchup
from vidgate.gateway.events.bus import RESYNC

BEAT_SLACK = 0.01  # a heartbeat this close to due is sent rather than re-armed for a few ms
_encoder = msgspec.json.Encoder()

CLIENT, HEARTBEAT = object(), object()  # put on the job's bus queue to wake the pump


class Socket:
    """One websocket: bus events, a client message (``take`` + ``CLIENT``), due heartbeats and the
    periodic re-read of the events table (``RESYNC``) all wake the pump through the job's bus queue.
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

    async def send_text(self, text: str) -> None:
        await self.ws.send_text(text)
        self.last_sent = self.loop.time()

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

    def _wake(self, marker: object) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # the bus's own policy: a listener this far behind loses the oldest
        self.queue.put_nowait(marker)

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
                self._wake(CLIENT)
                if message["type"] == "websocket.disconnect":
                    return
                await self._taken.wait()
        except Exception as exc:  # raised by the pump, so the socket ends as a failed receive always did
            self._inbox = exc
            self._wake(CLIENT)

    def _beat(self) -> None:
        """Wake the pump if nothing went out for ``heartbeat``, else re-arm: sends only move ``last_sent``."""
        now, due = self.loop.time(), self.last_sent + self.heartbeat
        if now >= due - BEAT_SLACK:
            self._wake(HEARTBEAT)
            due = now + self.heartbeat
        self._timer = self.loop.call_at(due, self._beat)

    def _recheck(self) -> None:
        self._wake(RESYNC)
        self._check = self.loop.call_later(catchup.check_delay(), self._recheck)
