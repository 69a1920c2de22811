"""Fan lifecycle events out across processes with PostgreSQL LISTEN/NOTIFY.

A notification is only a wake-up carrying an event id: the listener reads that event row (the
source of truth) and publishes it on this process's bus, in arrival order. Events made in this
process were published locally already and are skipped. A key revoked in another process comes on
the same channel, so this process closes that owner's streams at once, and so does a job changed
without a lifecycle event (a webhook attempt recorded), so this process's long polls on it wake.

Notifications sent while the connection is down are lost, so the listener notices a drop at once (or,
for a connection that hangs, by a periodic ping), reconnects, and then tells every stream to re-read
the events table (``EventBus.resync``) and wakes the worker for jobs it may not have heard of.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable

from vidgate.gateway.auth import KEY_REVOKED
from vidgate.gateway.events.bus import EventBus
from vidgate.gateway.events.outbox import CHANNEL, JOB_CHANGED, NOTIFY_ORIGIN, event_from_row
from vidgate.gateway.storage.db import Database, Q

log = logging.getLogger("vidgate.events")
_EVENT = Q("SELECT * FROM events WHERE id = :id")
WAKE_TYPES = frozenset({"video.created", "video.cancelled"})
STOP_TYPES = frozenset({"video.cancelled", "video.expired"})
PING_SECONDS = 5.0  # how long a silently dead connection can go unnoticed, about
RETRY_SECONDS = 1.0
APPLICATION_NAME = "vidgate-listen"  # with the pid: operators (and tests) can find this connection


class PgListener:
    def __init__(
        self,
        url: str,
        db: Database,
        bus: EventBus,
        wake: Callable[[], None] = lambda: None,
        stop_job: Callable[[str], None] = lambda job_id: None,
        revoked: Callable[[str], None] = lambda owner_id: None,
    ) -> None:
        self.url = url
        self.db = db
        self.bus = bus
        self.wake = wake
        self.stop_job = stop_job
        self.revoked = revoked
        self._queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._conn: object | None = None
        self._lost = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self._connect()
        self._tasks = [
            asyncio.create_task(self._drain(), name="pg-listen-drain"),
            asyncio.create_task(self._watch(), name="pg-listen-watch"),
        ]

    async def _connect(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(
            self.url, timeout=5, server_settings={"application_name": f"{APPLICATION_NAME}-{os.getpid()}"}
        )
        try:
            await conn.add_listener(CHANNEL, self._on_notify)
        except BaseException:
            conn.terminate()
            raise
        conn.add_termination_listener(lambda _conn: self._lost.set())
        self._lost.clear()
        self._conn = conn

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        event_id, event_type, origin = [*payload.split(" "), "", ""][:3]
        if origin == NOTIFY_ORIGIN:
            return
        if event_type == KEY_REVOKED:
            self.revoked(event_id)  # the revoked key's owner
            return
        if event_type == JOB_CHANGED:
            self.bus.publish_changed(event_id)  # the job's id: no event row to read
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
        """Reconnect when the listening connection drops (the database restarted, the connection was
        killed) or stops answering, then have every stream re-read what it missed meanwhile."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), PING_SECONDS)
            conn = self._conn
            if conn is not None and not conn.is_closed() and await self._alive(conn):  # type: ignore[attr-defined]
                continue
            if conn is not None:
                conn.terminate()  # type: ignore[attr-defined]
            try:
                await self._connect()
            except Exception as exc:
                log.warning("LISTEN reconnect failed: %s", exc)
                await asyncio.sleep(RETRY_SECONDS)
                self._lost.set()  # try again at once after the pause, not after a ping interval
                continue
            log.info("re-established LISTEN %s", CHANNEL)
            self.bus.resync()
            self.wake()

    async def _alive(self, conn: object) -> bool:
        try:
            await asyncio.wait_for(conn.fetchval("SELECT 1"), PING_SECONDS)  # type: ignore[attr-defined]
            return True
        except Exception as exc:
            log.warning("LISTEN connection is not answering: %s", exc)
            return False

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()  # type: ignore[attr-defined]
