"""``GET /v1/videos/{id}`` answered beneath the framework.

Clients poll a job about a hundred times for each one they create, so this one call skips
Starlette's routing, request objects and middleware chain: it does what they would do for it
(request id, metrics, auth, throttle, one indexed read, one encode) on the raw ASGI scope. Errors
the API defines get the same envelope here; anything unexpected (a database outage, a bug) is left
to the full stack, which answers it with its 503 or 500 and logs it. A poll only reads, so running
it again there is safe.
"""

from __future__ import annotations

import re
import time

import msgspec
from starlette.types import ASGIApp, Receive, Scope, Send

from vidgate.errors import VidgateError
from vidgate.gateway.api.http import valid_request_id
from vidgate.gateway.ids import request_id as new_request_id
from vidgate.gateway.metrics import HTTP_LATENCY

PREFIX = "/v1/videos/"
_JOB_ID = re.compile(r"vid_[0-9a-z]{1,64}\Z")
_JSON = (b"content-type", b"application/json")
_encode = msgspec.json.Encoder().encode


class PollFastPath:
    """Wraps the whole app; every other request passes straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        job_id = scope["path"][len(PREFIX) :]
        if not _JOB_ID.match(job_id):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        auth = rid = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value.decode("latin-1")
            elif name == b"x-request-id":
                rid = valid_request_id(value)
        rid = rid or new_request_id()  # not bound for logging: this path logs nothing, the fallback binds its own
        gateway = scope["app"].state.gateway
        headers = [_JSON, (b"x-request-id", rid.encode())]
        try:
            principal = await gateway.keys.authenticate(auth)
            gateway.keys.throttle(principal)
            row = await gateway.jobs.view_row(principal.owner_id, job_id)
            video = gateway.jobs.view(row)
            body = _encode(video)
            status = 200
            if video.poll_after_seconds is not None and row["status"] in ("queued", "processing"):
                headers.append((b"retry-after", str(video.poll_after_seconds).encode()))
        except VidgateError as exc:
            exc.request_id = rid
            body = _encode(exc.body())
            status = exc.status
            for name, value in (exc.headers or {}).items():
                headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        except Exception:
            await self.app(scope, receive, send)
            return
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        HTTP_LATENCY.observe("GET", status, time.perf_counter() - start)
