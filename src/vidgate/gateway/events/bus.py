"""In-process fan-out of committed lifecycle events to websocket and SSE listeners.

Publishers call ``publish`` after their transaction commits; the events table stays the source
of truth, so a listener that falls behind re-reads it rather than the bus buffering forever.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable

from vidgate.types import JobEvent

QUEUE_LIMIT = 256


class EventBus:
    def __init__(self) -> None:
        self._subs: dict[str, set[asyncio.Queue[JobEvent | None]]] = defaultdict(set)
        self._wakers: list[Callable[[], None]] = []

    def subscribe(self, job_id: str) -> asyncio.Queue[JobEvent | None]:
        """A queue of the job's committed events; ``None`` on it means the job was deleted."""
        queue: asyncio.Queue[JobEvent | None] = asyncio.Queue(QUEUE_LIMIT)
        self._subs[job_id].add(queue)
        return queue

    def unsubscribe(self, job_id: str, queue: asyncio.Queue[JobEvent | None]) -> None:
        subs = self._subs.get(job_id)
        if subs is not None:
            subs.discard(queue)
            if not subs:
                del self._subs[job_id]

    def on_event(self, waker: Callable[[], None]) -> None:
        """Call ``waker`` after every publish (the webhook deliverer uses this to wake up)."""
        self._wakers.append(waker)

    def publish(self, event: JobEvent) -> None:
        for queue in self._subs.get(event.data.id, ()):
            if queue.full():
                queue.get_nowait()  # a slow listener loses the oldest update, never the newest
            queue.put_nowait(event)
        for waker in self._wakers:
            waker()

    def publish_deleted(self, job_id: str) -> None:
        for queue in self._subs.get(job_id, ()):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)
