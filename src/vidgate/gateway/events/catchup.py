"""Where a stream is in its job's events, and re-reading the events table from there.

The bus is the fast path; the events table is the truth. The bus can miss events (the PostgreSQL
listener lost its connection; a queue overflowed), so a stream re-reads the table from its mark when
the bus says so (``RESYNC``), every ``CHECK_SECONDS`` as a safety net, and when a client resumes with
``Last-Event-ID`` or ``since=``. The mark is the table position (``seq``) of the newest row read;
``seen`` holds the ids relayed, so an event reaching a stream both ways is sent once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any

from vidgate.errors import ValidationError
from vidgate.gateway.events.bus import DRAIN, RESYNC
from vidgate.gateway.events.outbox import event_from_row
from vidgate.gateway.storage.db import Q
from vidgate.types import JobEvent, Video

log = logging.getLogger("vidgate.stream")

CHECK_SECONDS = 8.0  # how often an open stream re-reads the table, whatever the bus says (jittered)
_BATCH = 500
_LATEST = Q("SELECT id, seq FROM events WHERE job_id = :job ORDER BY seq DESC LIMIT 1")
_SEQ_OF = Q("SELECT seq FROM events WHERE id = :id AND job_id = :job")
_AFTER = Q("SELECT * FROM events WHERE job_id = :job AND seq > :seq ORDER BY seq LIMIT :limit")
_RANK = {"queued": 0, "processing": 1, "completed": 2, "failed": 2, "cancelled": 2, "expired": 3}


def check_delay() -> float:
    """The next safety-net re-read, jittered so thousands of streams do not read in step."""
    return CHECK_SECONDS * random.uniform(0.75, 1.25)


class Cursor:
    """One stream's position in its job's events."""

    __slots__ = ("db", "job_id", "seen", "seq")

    def __init__(self, db: Any, job_id: str, seq: int) -> None:
        self.db = db
        self.job_id = job_id
        self.seq = seq
        self.seen: set[str] = set()

    def fresh(self, event: JobEvent) -> bool:
        """True the first time the stream meets ``event``, from the bus or the table."""
        if event.id in self.seen:
            return False
        self.seen.add(event.id)
        return True

    async def missed(self) -> list[JobEvent]:
        """The events after the mark this stream has not relayed, oldest first; moves the mark.

        A failed read (a database outage) returns nothing and keeps the mark: the next check retries.
        """
        found: list[JobEvent] = []
        try:
            while True:
                rows = await self.db.fetchall(_AFTER, {"job": self.job_id, "seq": self.seq, "limit": _BATCH})
                for row in rows:
                    self.seq = row["seq"]
                    if row["id"] not in self.seen:
                        found.append(event_from_row(row))
                if len(rows) < _BATCH:
                    return [e for e in found if self.fresh(e)]
        except Exception as exc:
            log.warning("could not re-read the events of %s: %s", self.job_id, exc)
            return [e for e in found if self.fresh(e)]


async def latest(db: Any, job_id: str) -> tuple[str | None, Cursor]:
    """The job's newest event id and a cursor just after it; read before the snapshot it labels, so
    the snapshot shows at least that event and a resume from its id loses nothing."""
    row = await db.fetchone(_LATEST, {"job": job_id})
    return (row["id"], Cursor(db, job_id, row["seq"])) if row else (None, Cursor(db, job_id, 0))


async def resume_at(db: Any, job_id: str, since: str, param: str) -> Cursor:
    """A cursor just after the job's event ``since``; 400 when it is not one of the job's events."""
    row = await db.fetchone(_SEQ_OF, {"id": since, "job": job_id})
    if row is None:
        raise ValidationError(f"{param} is not an event of this video", param=param)
    return Cursor(db, job_id, row["seq"])


def since_of(headers: Mapping[str, str], query: Mapping[str, str]) -> tuple[str | None, str]:
    """The event id a client resumes after, and where it came from. ``Last-Event-ID`` wins: an
    EventSource reconnects to its first URL, ``since=`` included, with its newest id in the header."""
    header = headers.get("last-event-id")
    if header:
        return header.strip(), "Last-Event-ID"
    return query.get("since") or None, "since"


def pending(queue: asyncio.Queue[Any], snapshot: Video, cursor: Cursor | None) -> list[Any]:
    """What queued up while the snapshot was read, minus the events it already shows (``None``: the
    job was deleted; ``RESYNC`` and ``DRAIN`` are kept). Other markers are dropped: their flags are
    checked instead."""
    kept: list[Any] = []
    while not queue.empty():
        item = queue.get_nowait()
        if isinstance(item, JobEvent):
            e, s = item.data, snapshot
            if _RANK[e.status] < _RANK[s.status] or (e.status == s.status and (e.progress or 0) <= (s.progress or 0)):
                if cursor is not None:
                    cursor.fresh(item)  # shown by the snapshot: never relay it later
                continue
        elif item is not None and item is not RESYNC and item is not DRAIN:
            continue
        kept.append(item)
    return kept


async def updates(cursor: Cursor | None, item: Any) -> list[JobEvent | None]:
    """What a queue item means for the client: the event if not sent yet, ``None`` for a deletion,
    and for ``RESYNC`` every event the table has that this stream has not sent."""
    if item is None:
        return [None]
    if isinstance(item, JobEvent):
        return [item] if cursor is None or cursor.fresh(item) else []
    if item is RESYNC and cursor is not None:
        return list(await cursor.missed())
    return []
