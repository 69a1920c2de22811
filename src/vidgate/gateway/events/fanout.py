"""One fan-out per watched job: the bus hands each event to the job's hub once, as it is published,
and the hub sends it to all of the job's websockets from that one call.

With a pump per socket, every event woke each of the job's sockets' tasks (40 sockets a job: 40
wake-ups) and that wake-up was a quarter of the server's CPU per message. The hub is made with the
job's first socket and dropped with its last; it is the job's one listener on the bus. For each
event it encodes the message once and offers it to every socket (``Socket.deliver``), which sends it
at once when its pump is idle and its last send has finished, and otherwise queues it for its pump:
per-socket order, the bounded queue of a slow client and everything else the pump does (catch-up,
heartbeats, client messages, revocation, the end of the stream) stay with the pump. Markers from the
bus (a resync, the process draining, the job's deletion) go to every socket's pump.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

from vidgate.gateway.events.bus import EventBus
from vidgate.gateway.events.sockets import Socket
from vidgate.gateway.events.stream import encoded_update
from vidgate.gateway.jobs.state import TERMINAL
from vidgate.types import JobEvent

log = logging.getLogger("vidgate.stream")


class Hub:
    """One job's open websockets, told of each of the job's events by the bus as it is published."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.sockets: dict[Socket, None] = {}  # insertion-ordered set

    def deliver(self, item: Any) -> None:
        if not isinstance(item, JobEvent):  # a deletion, a resync or the drain: each pump handles it
            for sock in self.sockets:
                sock.wake(item)
            return
        message = {"type": "websocket.send", "text": encoded_update(item)[1]}
        terminal = item.data.status in TERMINAL
        for sock in self.sockets:
            try:
                sock.deliver(item, message, terminal)
            except Exception:  # one socket's failure must not keep the event from the others
                log.exception("fan-out of %s to a websocket failed", item.id)
                sock.wake(item)


class Fanout:
    """The hubs of one bus, by job."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.hubs: dict[str, Hub] = {}

    def join(self, job_id: str, sock: Socket) -> None:
        """Deliver ``job_id``'s events to ``sock`` from now on (before the job is read for its snapshot)."""
        hub = self.hubs.get(job_id)
        if hub is None:
            hub = self.hubs[job_id] = Hub(job_id)
            self.bus.listen(job_id, hub.deliver)
        hub.sockets[sock] = None

    def leave(self, job_id: str, sock: Socket) -> None:
        hub = self.hubs.get(job_id)
        if hub is None:
            return
        hub.sockets.pop(sock, None)
        if not hub.sockets:
            del self.hubs[job_id]
            self.bus.unlisten(job_id)


_fanouts: weakref.WeakKeyDictionary[EventBus, Fanout] = weakref.WeakKeyDictionary()


def fanout_of(bus: EventBus) -> Fanout:
    """The bus's fan-out, made on first use."""
    fanout = _fanouts.get(bus)
    if fanout is None:
        fanout = _fanouts[bus] = Fanout(bus)
    return fanout
