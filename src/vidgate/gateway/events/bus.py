"""In-process fan-out of committed lifecycle events: to websocket and SSE listeners, and to sinks.

Publishers call ``publish`` after their transaction commits (the outbox), and the PostgreSQL listener
for events committed by other processes (``notify.py``); the events table stays the source of truth,
so a listener that falls behind re-reads it rather than the bus buffering forever. Besides events, a
subscriber's queue carries two markers: ``RESYNC`` when the bus may have missed events (the PostgreSQL
listener reconnected), so streams re-read the table, and ``DRAIN`` when the process is shutting down,
so streams end and their clients reconnect to another process.

A job's websockets hear of it through one ``listen`` callback per job (``fanout.py``), called in
``publish`` itself, so each event costs one call per job however many sockets follow it.

A change that is no lifecycle event (a webhook attempt recorded on the job) goes only to watchers
(``publish_changed``): long polls re-read the job, while websockets, server-sent events and sinks
hear nothing of it.

Whatever else hears of every event (the webhook deliverer; a queue, say) is an ``EventSink``,
added with ``add_sink`` where the gateway's services are put together (``services.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Protocol

from vidgate.types import JobEvent

log = logging.getLogger("vidgate.events")

QUEUE_LIMIT = 256
RESYNC = object()  # the bus may have missed events: re-read the events table
DRAIN = object()  # the process is shutting down: end the stream


def _put(queue: asyncio.Queue[Any], item: Any) -> None:
    if queue.full():
        queue.get_nowait()  # a slow listener loses the oldest update, never the newest
    queue.put_nowait(item)


class EventSink(Protocol):
    """Hears of every committed event, on the event loop: it hands the event on and never blocks."""

    def publish(self, event: JobEvent) -> None: ...


class EventBus:
    def __init__(self) -> None:
        self._subs: dict[str, set[asyncio.Queue[Any]]] = defaultdict(set)
        self._listeners: dict[str, Callable[[Any], None]] = {}
        self._sinks: list[EventSink] = []
        self._watchers: list[Callable[[str | None], None]] = []
        self.draining = False

    def subscribe(self, job_id: str) -> asyncio.Queue[Any]:
        """A queue of the job's committed events; ``None`` on it means the job was deleted."""
        queue: asyncio.Queue[Any] = asyncio.Queue(QUEUE_LIMIT)
        self._subs[job_id].add(queue)
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue[Any]) -> None:
        subs = self._subs.get(job_id)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                del self._subs[job_id]

    def listen(self, job_id: str, listener: Callable[[Any], None]) -> None:
        """Call ``listener`` with each item a subscriber's queue would get (events and markers), as it
        is published; it hands each on without blocking. One listener per job."""
        self._listeners[job_id] = listener

    def unlisten(self, job_id: str) -> None:
        self._listeners.pop(job_id, None)

    def _tell(self, listener: Callable[[Any], None], item: Any) -> None:
        try:
            listener(item)
        except Exception:  # the event is committed: a failing listener must not keep it from the rest
            log.exception("event listener failed")

    def add_sink(self, sink: EventSink) -> None:
        """Hand every event published from now on to ``sink`` too."""
        self._sinks.append(sink)

    def watch(self, watcher: Callable[[str | None], None]) -> None:
        """Call ``watcher(job_id)`` on each change published for a job (its deletion too), and
        ``watcher(None)`` when any job may have changed unseen (a resync) or the process drains."""
        self._watchers.append(watcher)

    def publish(self, event: JobEvent) -> None:
        for queue in self._subs.get(event.data.id, ()):
            _put(queue, event)
        if (listener := self._listeners.get(event.data.id)) is not None:
            self._tell(listener, event)
        for watcher in self._watchers:
            watcher(event.data.id)
        for sink in self._sinks:
            try:
                sink.publish(event)
            except Exception:  # the event is committed: one failing sink must not keep it from the rest
                log.exception("event sink %s failed on %s", type(sink).__name__, event.id)

    def publish_changed(self, job_id: str) -> None:
        """The job changed in a way that is no lifecycle event (its webhook delivery summary): wake what
        watches it (held long polls), never its streams, which carry lifecycle events only."""
        for watcher in self._watchers:
            watcher(job_id)

    def publish_deleted(self, job_id: str) -> None:
        for queue in self._subs.get(job_id, ()):
            _put(queue, None)
        if (listener := self._listeners.get(job_id)) is not None:
            self._tell(listener, None)
        for watcher in self._watchers:
            watcher(job_id)

    def resync(self) -> None:
        """Tell every subscriber that events may have been missed, so it re-reads the events table."""
        self._broadcast(RESYNC)

    def drain(self) -> None:
        """End every stream (and refuse new ones): the process is going away."""
        if not self.draining:
            self.draining = True
            self._broadcast(DRAIN)

    def _broadcast(self, marker: object) -> None:
        for subs in self._subs.values():
            for queue in subs:
                _put(queue, marker)
        for listener in list(self._listeners.values()):
            self._tell(listener, marker)
        for watcher in self._watchers:
            watcher(None)
