"""A job's webhook deliveries: their log, and sending one again."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from vidgate.errors import NotFoundError
from vidgate.gateway.api.http import json_response, owner
from vidgate.gateway.events import webhooks
from vidgate.gateway.services import services
from vidgate.gateway.storage.db import Row


def _seconds(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def delivery_view(row: Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "webhook_delivery",
        "event_id": row["event_id"],
        "event_type": row["event_type"],
        "url": row["url"],
        "status": row["status"],
        "attempts": row["attempts"],
        "last_status_code": row["last_status_code"],
        "last_error": row["last_error"],
        "next_attempt_at": _seconds(row["next_attempt_at"]),
        "created_at": _seconds(row["created_at"]),
        "delivered_at": _seconds(row["delivered_at"]),
        "log": orjson.loads(row["log"] or "[]"),
    }


async def list_deliveries(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    job_id = request.path_params["video_id"]
    await g.jobs.row(who, job_id)
    rows = await webhooks.deliveries(g.db, job_id, who)
    return json_response({"object": "list", "data": [delivery_view(r) for r in rows]})


async def redeliver(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    job_id, delivery_id = request.path_params["video_id"], request.path_params["delivery_id"]
    await g.jobs.row(who, job_id)
    row = await webhooks.requeue(g.db, delivery_id, job_id, who)
    if row is None:
        raise NotFoundError(f"no webhook delivery {delivery_id} for video {job_id}", param="delivery_id")
    if g.deliverer is not None:  # API-only processes send nothing: a worker's deliverer finds it due
        g.deliverer.wake()
    return json_response(delivery_view(row))
