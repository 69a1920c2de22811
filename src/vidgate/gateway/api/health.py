"""What operators and load balancers probe: liveness, readiness and the Prometheus metrics.

The API serves these among its routes; a worker serves them alone on a port of its own
(``probe_app``), so its upstream counters can be scraped and its database checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import time
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vidgate.errors import AuthenticationError, ServiceUnavailableError
from vidgate.gateway import metrics as prometheus
from vidgate.gateway.api.http import RequestIdMiddleware, exception_handlers, json_response
from vidgate.gateway.auth import bearer
from vidgate.gateway.services import Gateway, services
from vidgate.gateway.storage.db import Database, Q
from vidgate.gateway.storage.migrate import sqlite_path

# Told only to a caller on this machine: which database this server uses, so that ``vidgate keys``
# can say when it writes to another one. A digest of the database's identity, never a path.
DATABASE_HEADER = "vidgate-database"
# A write that changes nothing: it still needs a writable database (disk, permissions, a primary).
_TOUCH = Q("UPDATE alembic_version SET version_num = version_num")


def database_fingerprint(database_url: str) -> str | None:
    """A short digest naming the database (SQLite: its file's device and inode; PostgreSQL: its
    host, port and name), the same from the server and from a CLI on this machine."""
    path = sqlite_path(database_url)
    if path is not None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        identity = f"sqlite:{st.st_dev}:{st.st_ino}"
    elif database_url.startswith(("postgres://", "postgresql://")):
        parts = urlsplit(database_url)
        identity = f"postgresql:{(parts.hostname or 'localhost').lower()}:{parts.port or 5432}{parts.path or '/'}"
    else:
        return None
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def _local(request: Request) -> bool:
    # A string test, not ``ipaddress``: load balancers probe this route often, and parsing the
    # address cost more than the rest of the answer.
    host = request.client.host if request.client is not None else ""
    return host.startswith("127.") or host in ("::1", "::ffff:127.0.0.1")


async def healthz(request: Request) -> Response:
    response = Response(b'{"status":"ok"}', media_type="application/json")
    if _local(request):
        state = request.app.state
        if not hasattr(state, "database_fingerprint"):  # one stat for the life of the process
            state.database_fingerprint = database_fingerprint(services(request).settings.database_url)
        if state.database_fingerprint:
            response.headers[DATABASE_HEADER] = state.database_fingerprint
    return response


class WriteProbe:
    """Whether the database takes a write, asked at most every ``every`` seconds: readiness polls
    share the last answer (and an answer still coming) rather than each writing."""

    def __init__(self, db: Database, every: float) -> None:
        self.db = db
        self.every = every
        self._task: asyncio.Future[None] | None = None
        self._started = 0.0

    def latest(self) -> asyncio.Future[None]:
        """The write under way, or the last one while it is fresh; a failed one is tried again at once."""
        now = time.monotonic()
        task = self._task
        if task is None or (task.done() and (_failed(task) or now - self._started >= self.every)):
            self._started = now
            self._task = task = asyncio.ensure_future(self._write())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return task

    async def _write(self) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(_TOUCH)


def _failed(task: asyncio.Future[None]) -> bool:
    return task.cancelled() or task.exception() is not None


async def _database(request: Request, g: Gateway) -> None:
    """Reachable (a read, every time) and writable (the shared write probe)."""
    await g.db.ping()
    state = request.app.state
    probe: WriteProbe | None = getattr(state, "write_probe", None)
    if probe is None:
        probe = state.write_probe = WriteProbe(g.db, g.settings.ready_write_probe_seconds)
    await asyncio.shield(probe.latest())  # a timed-out poll gives up waiting, not the shared write


async def readyz(request: Request) -> Response:
    g = services(request)
    if g.bus.draining:  # shutting down: a load balancer sends new requests elsewhere
        raise ServiceUnavailableError("draining: the server is shutting down", details={"server": "draining"})
    probes = {"database": asyncio.ensure_future(_database(request, g)), "blobs": asyncio.ensure_future(g.blobs.ping())}
    await asyncio.wait(probes.values(), timeout=2.0)
    checks: dict[str, Any] = {}
    for name, task in probes.items():
        # Retrieve whatever the probe ends with, so a late failure is not logged as never retrieved.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        if not task.done():
            # Not awaited: a stalled connection can take longer to give up than readiness may wait.
            task.cancel()
            checks[name] = "error: TimeoutError"
        elif task.exception() is not None:  # any failure means not ready, whatever its type
            checks[name] = f"error: {type(task.exception()).__name__}"
        else:
            checks[name] = "ok"
    if any(v != "ok" for v in checks.values()):
        raise ServiceUnavailableError("not ready", details=checks)
    return json_response({"status": "ready", "checks": checks})


def _authorize(request: Request) -> None:
    """With ``VIDGATE_METRICS_TOKEN`` set, only a scrape bearing it reads the metrics."""
    token = services(request).settings.metrics_token
    if token is None:
        return
    given = bearer(request.headers.get("authorization"))
    if given is None or not hmac.compare_digest(given.encode(), token.reveal().encode()):
        raise AuthenticationError(
            "/metrics needs Authorization: Bearer <VIDGATE_METRICS_TOKEN>", headers={"WWW-Authenticate": "Bearer"}
        )


async def metrics(request: Request) -> Response:
    _authorize(request)
    return Response(await prometheus.scrape(services(request).db), media_type=CONTENT_TYPE_LATEST)


def probe_app(gateway: Gateway) -> Starlette:
    """``/healthz``, ``/readyz`` and ``/metrics`` alone, answered from ``gateway``: what a worker serves."""
    app = Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)],
        middleware=[Middleware(RequestIdMiddleware)],
        exception_handlers=exception_handlers(postgres=gateway.db.dialect == "postgresql"),
    )
    app.state.gateway = gateway
    return app
