"""An image host that answers 404, but only when the test says so: the job waits, queued, meanwhile."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from fakes.server import FakeUpstream
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route


class HeldMissingImage:
    """Holds every image request until ``release`` is set, then answers 404.

    A test watching a job "while it is queued" needs the job to stay queued until it has looked,
    however slow the machine; a pause of fixed length only makes that likely.
    """

    def __init__(self, hold_seconds: float = 60.0) -> None:
        self.release = threading.Event()

        async def missing(request: Any) -> Response:
            await asyncio.to_thread(self.release.wait, hold_seconds)
            return Response(b"no such image", status_code=404, media_type="text/plain")

        self.server = FakeUpstream(Starlette(routes=[Route("/{name}", missing)]))
        self.url = self.server.base_url + "/first.png"

    def __enter__(self) -> HeldMissingImage:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.stop()
