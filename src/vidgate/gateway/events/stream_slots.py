"""Open websockets and event streams per key: the per-key cap, and ending them when the key is revoked.

Checking the cap and taking a slot is one step with no await between, so concurrent opens cannot all
pass the check before any takes. A revoked key's streams are woken through their queues and end;
the revocation reaches this process from ``Keys.revoke`` here, over PostgreSQL LISTEN/NOTIFY from
another process (``notify.py``), or on SQLite, where nothing crosses processes, from the database,
read every ``WATCH_SECONDS`` while any stream is open.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from vidgate.errors import AuthenticationError, RateLimitError
from vidgate.gateway.auth import CACHE_SECONDS, Keys
from vidgate.gateway.ids import now_ms
from vidgate.gateway.storage.db import Database, Q

log = logging.getLogger("vidgate.stream")

_REVOKED_SINCE = Q("SELECT owner_id FROM api_keys WHERE revoked_at >= :since")
WATCH_SECONDS = 1.0  # how soon, on SQLite, a key revoked by another process ends this one's streams
REVOKED_MEMORY_SECONDS = 60.0  # longer than any authentication can be in flight when its key is revoked


class Stream:
    """One open stream: its owner and queue, and whether the owner's key was revoked meanwhile."""

    __slots__ = ("owner", "queue", "revoked")

    def __init__(self, owner: str, queue: asyncio.Queue[Any]) -> None:
        self.owner = owner
        self.queue = queue
        self.revoked = False


_REVOKED = object()  # put on a revoked stream's queue to wake it
REVOKED_REASON = "the API key was revoked"


class Streams:
    """Open streams per owner, capped at ``per_key`` (``settings.max_websockets_per_key``, per process)."""

    def __init__(self, keys: Keys, db: Database, per_key: int) -> None:
        self.keys = keys
        self.db = db
        self.per_key = per_key
        self.open: dict[str, set[Stream]] = {}
        self._revoked: dict[str, float] = {}  # owner -> when, so an open racing its revocation fails
        self._watcher: asyncio.Task[None] | None = None
        keys.on_revoke(self.revoke)

    def take(self, owner: str, queue: asyncio.Queue[Any]) -> Stream:
        """A slot for a new stream; 429 when the owner's are all taken, 401 when its key was just revoked."""
        if owner in self._revoked:
            raise AuthenticationError("invalid or revoked API key")
        streams = self.open.get(owner)
        if len(streams or ()) >= self.per_key:
            raise RateLimitError("too many open streams for this key", headers={"Retry-After": "5"})
        stream = Stream(owner, queue)
        if streams is None:
            streams = self.open[owner] = set()
        streams.add(stream)
        if self._watcher is None and self.db.dialect == "sqlite":
            self._watcher = asyncio.create_task(self._watch(), name="stream-revocations")
        return stream

    def release(self, stream: Stream) -> None:
        streams = self.open.get(stream.owner)
        if streams is not None:
            streams.discard(stream)
            if not streams:
                del self.open[stream.owner]

    def revoke(self, owner: str) -> None:
        """End ``owner``'s open streams: each wakes, sees ``revoked`` and closes."""
        now = asyncio.get_running_loop().time()
        self._revoked = {o: t for o, t in self._revoked.items() if t > now - REVOKED_MEMORY_SECONDS}
        self._revoked[owner] = now
        for stream in self.open.get(owner, ()):
            stream.revoked = True
            if stream.queue.full():
                stream.queue.get_nowait()
            stream.queue.put_nowait(_REVOKED)

    async def _watch(self) -> None:
        # From before the oldest cached authentication: a key revoked then may still have opened a stream.
        since = now_ms() - round((CACHE_SECONDS + WATCH_SECONDS) * 1000)
        try:
            while self.open:
                await asyncio.sleep(WATCH_SECONDS)
                checked = now_ms()
                try:
                    rows = await self.db.fetchall(_REVOKED_SINCE, {"since": since})
                except Exception as exc:  # an outage: the next round tries again
                    log.warning("could not read revoked keys: %s", exc)
                    continue
                for row in rows:
                    self.keys.revoked(row["owner_id"])
                since = checked - round(WATCH_SECONDS * 1000)  # overlap: a revocation committing meanwhile
        finally:
            self._watcher = None
