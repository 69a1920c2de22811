"""What operators and load balancers probe: liveness, readiness and the Prometheus metrics."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response

from vidgate.errors import AuthenticationError, ServiceUnavailableError
from vidgate.gateway import metrics as prometheus
from vidgate.gateway.api.http import json_response
from vidgate.gateway.auth import bearer
from vidgate.gateway.services import services


async def healthz(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type="application/json")


async def readyz(request: Request) -> Response:
    g = services(request)
    if g.bus.draining:  # shutting down: a load balancer sends new requests elsewhere
        raise ServiceUnavailableError("draining: the server is shutting down", details={"server": "draining"})
    probes = {"database": asyncio.ensure_future(g.db.ping()), "blobs": asyncio.ensure_future(g.blobs.ping())}
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
