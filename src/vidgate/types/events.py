"""A job's lifecycle events, as webhook deliveries carry them."""

from __future__ import annotations

from vidgate.types.base import _Response
from vidgate.types.videos import Video


class JobEvent(_Response):
    """A lifecycle event, as a webhook delivery's body carries it (websockets and server-sent events
    send its ``id``, ``type`` and job in their own ``job.updated`` frame)."""

    id: str
    type: str
    created_at: int
    data: Video
