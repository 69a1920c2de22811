"""``GET /v1/videos/{id}``: one answer, served beneath the framework and, as a fallback, as a route.

Clients poll a job about a hundred times for each one they create, so the fast path skips
Starlette's routing, request objects and middleware chain: it does what they would do for it
(request id, metrics, auth, throttle, one indexed read, one encode) on the raw ASGI scope. Errors
the API defines get the same envelope here; anything unexpected (a database outage, a bug) is left
to the full stack, whose route answers with the same ``answer`` (and an outage with its 503 or 500,
logged). A poll only reads, so running it again there is safe.
"""

from __future__ import annotations

import re
import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vidgate.errors import VidgateError
from vidgate.gateway.api.http import caller, valid_request_id
from vidgate.gateway.auth import Principal
from vidgate.gateway.ids import request_id as new_request_id
from vidgate.gateway.metrics import HTTP_LATENCY
from vidgate.gateway.services import Gateway, services

PREFIX = "/v1/videos/"
_JOB_ID = re.compile(r"vid_[0-9a-z]{1,64}\Z")
_JSON = (b"content-type", b"application/json")
_IN_FLIGHT = ("queued", "processing")
_encode = msgspec.json.Encoder().encode

Headers = tuple[tuple[bytes, bytes], ...]


async def answer(g: Gateway, principal: Principal, job_id: str) -> tuple[int, Headers, bytes]:
    """The poll's status, headers besides content type and length, and JSON body; raises the API's errors.

    A job still in flight carries ``Retry-After``: the same hint as its ``poll_after_seconds``.
    """
    video = g.jobs.view(await g.jobs.view_row(principal.owner_id, job_id))
    if video.poll_after_seconds is not None and video.status in _IN_FLIGHT:
        return 200, ((b"retry-after", str(video.poll_after_seconds).encode()),), _encode(video)
    return 200, (), _encode(video)


async def get_video(request: Request) -> Response:
    """The route the fast path falls back to (and that answers ids it does not take)."""
    status, headers, body = await answer(services(request), await caller(request), request.path_params["video_id"])
    response = Response(body, status, media_type="application/json")
    response.raw_headers.extend(headers)
    return response


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
        g = services(scope)
        headers = [_JSON, (b"x-request-id", rid.encode())]
        try:
            principal = await g.keys.authenticate(auth)
            g.keys.throttle(principal)
            status, extra, body = await answer(g, principal, job_id)
            if extra:
                headers.extend(extra)
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
