"""Requests waiting for a job's next change (long polls): one bus subscription, waiters by job id.

A waiter is only woken; it then re-reads the job, the database staying the source of truth, so a
wake-up for a change it has seen, or for every job at once (the bus may have missed events, the
process is draining), costs one indexed read and nothing more. Changes committed by other processes
reach the bus through the PostgreSQL listener, so no waiter ever polls the database on a timer.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Gauge

from vidgate.gateway.events.bus import EventBus
from vidgate.gateway.metrics import REGISTRY

WAITING = Gauge("vidgate_long_polls_waiting", "Long polls held open in this process now", registry=REGISTRY)


class JobWaiters:
    """At most ``limit`` waiters at once in this process; past that, ``add`` refuses."""

    def __init__(self, bus: EventBus, limit: int) -> None:
        self.bus = bus
        self.limit = limit
        self.count = 0
        self._waiting: dict[str, set[asyncio.Event]] = {}
        bus.watch(self._changed)

    @property
    def draining(self) -> bool:
        return self.bus.draining

    def add(self, job_id: str) -> asyncio.Event | None:
        """An event set whenever ``job_id`` may have changed; None at the cap or while draining."""
        if self.count >= self.limit or self.bus.draining:
            return None
        woken = asyncio.Event()
        self._waiting.setdefault(job_id, set()).add(woken)
        self.count += 1
        WAITING.inc()
        return woken

    def remove(self, job_id: str, woken: asyncio.Event) -> None:
        waiting = self._waiting.get(job_id)
        if waiting is None or woken not in waiting:
            return
        waiting.discard(woken)
        self.count -= 1
        WAITING.dec()
        if not waiting:
            del self._waiting[job_id]

    def waiting(self, job_id: str) -> int:
        return len(self._waiting.get(job_id, ()))

    def _changed(self, job_id: str | None) -> None:
        if job_id is not None:
            for woken in self._waiting.get(job_id, ()):
                woken.set()
            return
        for waiting in self._waiting.values():
            for woken in waiting:
                woken.set()
