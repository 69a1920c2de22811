"""Lifecycle events, written in the same transaction as the state change they describe.

The ``events`` table is the source of truth for websockets, server-sent events and webhooks;
a webhook delivery row is queued in that same transaction when the job asked for the event.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import msgspec
import orjson

from vidgate.gateway.events import webhook_events
from vidgate.gateway.ids import new_id
from vidgate.gateway.jobs.spec import Webhook
from vidgate.gateway.storage.db import Q, Tx
from vidgate.types import JobEvent, Video

_INSERT = Q(
    "INSERT INTO events (id, job_id, owner_id, type, created_at, data) VALUES (:id, :job, :owner, :type, :now, :data)"
)
_DELIVERY = Q(
    "INSERT INTO webhook_deliveries "
    "(id, event_id, job_id, owner_id, url, status, attempts, next_attempt_at, created_at) "
    "VALUES (:id, :event, :job, :owner, :url, 'pending', 0, :now, :now) ON CONFLICT DO NOTHING"
)
_encoder = msgspec.json.Encoder()
CHANNEL = "vidgate_events"
NOTIFY_ORIGIN = f"{os.getpid()}-{id(object()):x}"
# On the events channel, "<job_id> job.changed <origin>": the job changed without a lifecycle event.
JOB_CHANGED = "job.changed"
# On PostgreSQL the event row and its NOTIFY (delivered at commit to every listening process, so
# websockets anywhere see it) go in one statement: one round trip less for every event written.
_INSERT_NOTIFY = Q(
    _INSERT.sqlite,
    pg="WITH e AS (INSERT INTO events (id, job_id, owner_id, type, created_at, data) "
    "VALUES (:id, :job, :owner, :type, :now, :data) RETURNING id) "
    f"SELECT pg_notify('{CHANNEL}', :payload) FROM e",
)


def wanted(webhook: Webhook | None, event_type: str) -> bool:
    return webhook is not None and webhook_events.wanted(webhook.events, event_type)


async def emit(tx: Tx, *, video: Video, owner_id: str, event_type: str, now: int, webhook: Webhook | None) -> JobEvent:
    event = JobEvent(id=new_id("evt"), type=event_type, created_at=now // 1000, data=video)
    data = _encoder.encode(video)
    row = {"id": event.id, "job": video.id, "owner": owner_id, "type": event_type, "now": now, "data": data.decode()}
    if tx.dialect == "postgresql":
        await tx.fetchone(_INSERT_NOTIFY, {**row, "payload": f"{event.id} {event_type} {NOTIFY_ORIGIN}"})
    else:
        await tx.execute(_INSERT, row)
    if webhook is not None and wanted(webhook, event_type):
        await tx.execute(
            _DELIVERY,
            {
                "id": new_id("whd"),
                "event": event.id,
                "job": video.id,
                "owner": owner_id,
                "url": webhook.url,
                "now": now,
            },
        )
    return event


def event_from_row(row: Mapping[str, Any]) -> JobEvent:
    return JobEvent(
        id=row["id"],
        type=row["type"],
        created_at=row["created_at"] // 1000,
        data=msgspec.convert(orjson.loads(row["data"]), Video),
    )
