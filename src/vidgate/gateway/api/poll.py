"""``GET /v1/videos/{id}``: one answer, served beneath the framework and, as a fallback, as a route.

Clients poll a job about a hundred times for each one they create, so the fast path skips
Starlette's routing, request objects and middleware chain: it does what they would do for it
(request id, metrics, auth, throttle, one indexed read, one encode) on the raw ASGI scope, and takes
the base of the answer's URLs from the headers it reads anyway. It serves the reference's
``/v1/video/generations/{id}`` spelling too. Errors the API defines get the same envelope here;
anything unexpected (a database outage, a bug) is left to the full stack, whose route answers with
the same ``answer`` (and an outage with its 503 or 500, logged). A poll only reads, so running it
again there is safe.
"""

from __future__ import annotations

import re
import time

import msgspec
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vidgate.errors import VidgateError
from vidgate.gateway.api.http import caller, valid_request_id
from vidgate.gateway.auth import Principal
from vidgate.gateway.ids import request_id as new_request_id
from vidgate.gateway.metrics import HTTP_LATENCY
from vidgate.gateway.services import Gateway, services

PREFIXES = ("/v1/videos/", "/v1/video/generations/")
_PREFIX_LENGTHS = frozenset(len(p) for p in PREFIXES)
_JOB_ID = re.compile(r"vid_[0-9a-z]{1,64}\Z")
_JSON = (b"content-type", b"application/json")
_IN_FLIGHT = ("queued", "processing")
_encode = msgspec.json.Encoder().encode

Headers = tuple[tuple[bytes, bytes], ...]


async def answer(g: Gateway, principal: Principal, job_id: str, base: str) -> tuple[int, Headers, bytes]:
    """The poll's status, headers besides content type and length, and JSON body; raises the API's errors.

    A job still in flight carries ``Retry-After``: the same hint as its ``poll_after_seconds``.
    """
    video = g.jobs.view(await g.jobs.view_row(principal.owner_id, job_id), base)
    if video.poll_after_seconds is not None and video.status in _IN_FLIGHT:
        return 200, ((b"retry-after", str(video.poll_after_seconds).encode()),), _encode(video)
    return 200, (), _encode(video)


async def get_video(request: Request) -> Response:
    """The route the fast path falls back to (and that answers ids it does not take)."""
    g = services(request)
    base = g.settings.base_url.of(request.scope)
    status, headers, body = await answer(g, await caller(request), request.path_params["video_id"], base)
    response = Response(body, status, media_type="application/json")
    response.raw_headers.extend(headers)
    return response


class PollFastPath:
    """Wraps the whole app; every other request passes straight through."""

    def __init__(self, app: ASGIApp, cors: CORSMiddleware | None = None) -> None:
        self.app = app
        self.cors = cors
        if cors is not None:
            # What ``cors`` adds to an answer, added here without its per-request header parsing.
            self.cors_vary = (b"vary", b"Origin")
            self.cors_simple = [(k.lower().encode(), v.encode()) for k, v in cors.simple_headers.items()]
            self.cors_echo = not cors.allow_all_origins or cors.allow_credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(PREFIXES):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        job_id = path[path.rfind("/") + 1 :]
        if not _JOB_ID.match(job_id) or len(path) - len(job_id) not in _PREFIX_LENGTHS:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        auth = rid = host = proto = forwarded = origin = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value.decode("latin-1")
            elif name == b"host":
                host = value
            elif name == b"x-request-id":
                rid = valid_request_id(value)
            elif name == b"x-forwarded-proto":
                proto = value
            elif name == b"x-forwarded-host":
                forwarded = value
            elif name == b"origin":
                origin = value
        rid = rid or new_request_id()  # not bound for logging: this path logs nothing, the fallback binds its own
        g = services(scope)
        headers = [_JSON, (b"x-request-id", rid.encode())]
        try:
            principal = await g.keys.authenticate(auth)
            g.keys.throttle(principal)
            base = g.settings.base_url.resolve(scope, host, proto, forwarded)
            status, extra, body = await answer(g, principal, job_id, base)
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
        if self.cors is not None:
            headers.append(self.cors_vary)
            if origin is not None:
                headers.extend(self.cors_simple)
                if self.cors_echo and self.cors.is_allowed_origin(origin.decode("latin-1")):
                    headers.append((b"access-control-allow-origin", origin))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        HTTP_LATENCY.observe("GET", status, time.perf_counter() - start)
