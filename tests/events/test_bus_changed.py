"""A change that is no lifecycle event wakes the job's watchers (long polls) and nothing else."""

from __future__ import annotations

from typing import Any

from vidgate.gateway.events.bus import EventBus
from vidgate.gateway.events.waiters import JobWaiters
from vidgate.types import JobEvent


class Sink:
    def __init__(self) -> None:
        self.events: list[JobEvent] = []

    def publish(self, event: JobEvent) -> None:
        self.events.append(event)


async def test_publish_changed_wakes_waiters_only() -> None:
    bus = EventBus()
    waiters = JobWaiters(bus, limit=4)
    sink = Sink()
    bus.add_sink(sink)
    heard: list[Any] = []
    bus.listen("vid_a", heard.append)
    queue = bus.subscribe("vid_a")
    woken = waiters.add("vid_a")
    other = waiters.add("vid_b")
    assert woken is not None and other is not None

    bus.publish_changed("vid_a")

    assert woken.is_set() and not other.is_set()
    assert queue.empty() and heard == [] and sink.events == []  # streams and sinks carry lifecycle events only
