"""Fan lifecycle events out across processes with PostgreSQL LISTEN/NOTIFY.

A notification is only a wake-up carrying an event id: the listener reads that event row (the
source of truth) and publishes it on this process's bus, in arrival order. Events made in this
process were published locally already and are skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from vidgate.gateway.events.bus import EventBus
from vidgate.gateway.events.outbox import CHANNEL, NOTIFY_ORIGIN, event_from_row
from vidgate.gateway.storage.db import Database, Q

log = logging.getLogger("vidgate.events")
_EVENT = Q("SELECT * FROM events WHERE id = :id")
WAKE_TYPES = frozenset({"video.created", "video.cancelled"})
STOP_TYPES = frozenset({"video.cancelled", "video.expired"})


class PgListener:
    def __init__(
        self,
        url: str,
        db: Database,
        bus: EventBus,
        wake: Callable[[], None] = lambda: None,
        stop_job: Callable[[str], None] = lambda job_id: None,
    ) -> None:
        self.url = url
        self.db = db
        self.bus = bus
        self.wake = wake
        self.stop_job = stop_job
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._conn: object | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self._connect()
        self._tasks = [
            asyncio.create_task(self._drain(), name="pg-listen-drain"),
            asyncio.create_task(self._watch(), name="pg-listen-watch"),
        ]

    async def _connect(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.url)
        await conn.add_listener(CHANNEL, self._on_notify)
        self._conn = conn

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        event_id, event_type, origin = [*payload.split(" "), "", ""][:3]
        if origin == NOTIFY_ORIGIN:
            return
        if event_type in WAKE_TYPES:
            self.wake()
        self._queue.put_nowait((event_id, event_type))

    async def _drain(self) -> None:
        while True:
            event_id, _ = await self._queue.get()
            try:
                row = await self.db.fetchone(_EVENT, {"id": event_id})
                if row is not None:
                    event = event_from_row(row)
                    if event.type in STOP_TYPES:
                        self.stop_job(event.data.id)  # a render elsewhere in this process stops at once
                    self.bus.publish(event)
            except Exception:
                log.exception("could not relay event %s", event_id)

    async def _watch(self) -> None:
        """Reconnect when the listening connection drops (the database restarted, say)."""
        while True:
            await asyncio.sleep(1.0)
            conn = self._conn
            if conn is not None and not conn.is_closed():  # type: ignore[attr-defined]
                continue
            try:
                await self._connect()
                log.info("re-established LISTEN %s", CHANNEL)
            except Exception as exc:
                log.warning("LISTEN reconnect failed: %s", exc)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()  # type: ignore[attr-defined]
