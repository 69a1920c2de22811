"""Launch the HTTP server, granian by default or uvicorn, with the limits only a server can enforce;
and a worker's small probe server.

A slow client holds a connection before the app ever sees a request, so the server itself bounds how
long a request head may take (``header_timeout_seconds``) and how many connections one server process
holds (``max_connections``); the per-client limits that need a request are the app's own
(``gateway/api/edge.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import resource
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from vidgate.gateway.settings import Settings

if TYPE_CHECKING:
    from vidgate.gateway.services import Gateway

APP = "vidgate.gateway.app:app_from_env"
BACKLOG = 2048
FD_RESERVE = 256  # descriptors kept for the database, the blob store and log files


def connection_limit(wanted: int) -> int:
    """Raise this process's open-file limit to fit ``wanted`` connections; the connections it fits.

    Server worker processes inherit the limit. Without this a common default of 1,024 descriptors
    would refuse connections long before the server's own limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + FD_RESERVE
    if soft != resource.RLIM_INFINITY and soft < need:
        raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(1, min(wanted, soft - FD_RESERVE))


def serve(server: str, settings: Settings, host: str, port: int, workers: int) -> None:
    """Run ``server`` (granian or uvicorn) on ``host:port`` with ``workers`` processes until it is stopped."""
    connections = connection_limit(settings.max_connections)
    if server == "uvicorn":
        _uvicorn(settings, host, port, workers, connections)
    else:
        _granian(settings, host, port, workers, connections)


def _granian(settings: Settings, host: str, port: int, workers: int, connections: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings

    Granian(
        APP,
        address=host,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        factory=True,
        log_access=False,
        websockets=True,
        backlog=BACKLOG,
        # A connection holds one of these from accept to close, head still unread included: once they
        # are all taken no one else is served, so the head deadline below is what frees them.
        backpressure=connections,
        http1_settings=HTTP1Settings(header_read_timeout=max(1, round(settings.header_timeout_seconds * 1000))),
    ).serve()


def _uvicorn(settings: Settings, host: str, port: int, workers: int, connections: int) -> None:
    import uvicorn

    uvicorn.run(
        APP,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        http=functools.partial(HeadDeadlineH11, head_seconds=settings.header_timeout_seconds),  # type: ignore[arg-type]
        backlog=BACKLOG,
        limit_concurrency=connections,
        timeout_keep_alive=5,
        access_log=False,
    )


class HeadDeadlineH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline on every request head, which uvicorn does not have."""

    def __init__(self, *args: Any, head_seconds: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.head_seconds = head_seconds
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self._awaiting_head():
            self._arm()  # the first bytes of the next request on a kept-alive connection
        cycle = self.cycle
        super().data_received(data)
        if self._head_timer is not None and (self.cycle is not cycle or self.transport.get_protocol() is not self):
            self._head_timer.cancel()  # the head is in (or the connection became a websocket)
            self._head_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _awaiting_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(self.head_seconds, self._head_expired)

    def _head_expired(self) -> None:
        self._head_timer = None
        if self._awaiting_head() and self.transport.get_protocol() is self:
            self.transport.close()


class _ProbeServer(uvicorn.Server):
    """uvicorn inside the worker's own event loop: the worker, not uvicorn, handles the stop signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class ProbeServer:
    """``/healthz``, ``/readyz`` and ``/metrics`` of a worker, on a socket bound before the worker started."""

    def __init__(self, gateway: Gateway, sock: socket.socket) -> None:
        from vidgate.gateway.api.health import probe_app

        # No log config of its own: its warnings go through the worker's (format, escaping).
        config = uvicorn.Config(
            probe_app(gateway), lifespan="off", access_log=False, log_level="warning", log_config=None
        )
        self.server = _ProbeServer(config)
        self.sock = sock
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self.server.serve(sockets=[self.sock]), name="probes")

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)
        self.sock.close()
