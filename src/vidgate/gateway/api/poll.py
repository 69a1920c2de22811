"""``GET /v1/videos/{id}``: one answer, served beneath the framework and, as a fallback, as a route.

Clients poll a job about a hundred times for each one they create, so the fast path skips
Starlette's routing, request objects and middleware chain: it does what they would do for it
(request id, metrics, auth, throttle, one indexed read, one encode) on the raw ASGI scope, and takes
the base of the answer's URLs from the headers it reads anyway. It serves the reference's
``/v1/video/generations/{id}`` spelling too. Errors the API defines get the same envelope here;
anything unexpected (a database outage, a bug) is left to the full stack, whose route answers with
the same ``answer`` (and an outage with its 503 or 500, logged). A poll only reads, so running it
again there is safe.

Every answer carries the job's ETag (``conditional.py``): ``If-None-Match`` naming it gets a 304, and
``?wait=N`` holds the poll until the job moves past the version the client has (``longpoll.py``).
The fast path keeps recent bodies (``RenderCache``), so polls of an unchanged job skip the render.
"""

from __future__ import annotations

import asyncio
import re
import time

import msgspec
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vidgate.errors import NotFoundError, VidgateError
from vidgate.gateway.api.conditional import CACHE_CONTROL, etag, link_window, matches, seen_version
from vidgate.gateway.api.http import caller, valid_request_id
from vidgate.gateway.api.longpoll import ClientGone, hold, wait_param
from vidgate.gateway.auth import Principal
from vidgate.gateway.ids import request_id as new_request_id
from vidgate.gateway.jobs.records import VIEW_COLUMNS, JobView
from vidgate.gateway.jobs.state import TERMINAL
from vidgate.gateway.metrics import HTTP_LATENCY
from vidgate.gateway.services import Gateway, services
from vidgate.gateway.storage.db import Q

PREFIXES = ("/v1/videos/", "/v1/video/generations/")
_PREFIX_LENGTHS = frozenset(len(p) for p in PREFIXES)
_JOB_ID = re.compile(r"vid_[0-9a-z]{1,64}\Z")
_JSON = (b"content-type", b"application/json")
_CACHE_CONTROL = (b"cache-control", CACHE_CONTROL.encode())
_IN_FLIGHT = ("queued", "processing")
_encode = msgspec.json.Encoder().encode
# The view's columns, then the version: a row read once serves the tag, the cache key and the render.
_VIEW = Q(f"SELECT {VIEW_COLUMNS}, version FROM jobs WHERE id = :id AND owner_id = :owner")
_STATUS = JobView.__struct_fields__.index("status")
_VERSION = len(JobView.__struct_fields__)
# How long a rendered body stays true: a job in flight shows poll_after_seconds, which the clock moves;
# signed links are kept only for a small part of their life; a finished job's body does not age.
IN_FLIGHT_SECONDS = 1.0
SIGNED_MAX_SECONDS = 60.0
SETTLED_SECONDS = 300.0
CACHE_ENTRIES = 4096

Headers = tuple[tuple[bytes, bytes], ...]
Values = tuple[object, ...]


class Rendered(msgspec.Struct, frozen=True, gc=False):
    """One job version's answer on one base URL, and until when (monotonic seconds) it may be served."""

    tag: str
    headers: Headers  # ETag, Cache-Control and, for a job in flight, Retry-After
    body: bytes
    until: float


class RenderCache:
    """Recent answers by (job id, version, base URL); a new version is a new key, so nothing goes stale
    by a write, only by the clock. Ownership is checked by the read each poll still makes."""

    def __init__(self, size: int = CACHE_ENTRIES) -> None:
        self.size = size
        self._entries: dict[tuple[str, int, str], Rendered] = {}

    def get(self, key: tuple[str, int, str], now: float) -> Rendered | None:
        hit = self._entries.get(key)
        return hit if hit is not None and hit.until > now else None

    def clear(self) -> None:
        self._entries.clear()

    def put(self, key: tuple[str, int, str], entry: Rendered) -> None:
        if len(self._entries) >= self.size:
            self._entries.clear()  # rare, and cheaper per poll than keeping an order
        self._entries[key] = entry


def render(g: Gateway, values: Values, base: str, now: float) -> Rendered:
    """The answer for one row of ``_VIEW``: its tag, headers and JSON body."""
    video = g.jobs.view(JobView.from_values(values), base)
    version = values[_VERSION]
    assert isinstance(version, int)
    headers: list[tuple[bytes, bytes]] = []
    if isinstance(video.expires_at, int):  # signed links: the tag names their window
        ttl = g.jobs.default_ttl
        tag = etag(video.id, version, link_window(video.expires_at - ttl, ttl))
        life = min(SIGNED_MAX_SECONDS, ttl / 10)
    else:
        tag = etag(video.id, version)
        life = SETTLED_SECONDS
    headers += ((b"etag", tag.encode()), _CACHE_CONTROL)
    if video.status in _IN_FLIGHT:
        life = IN_FLIGHT_SECONDS
        if isinstance(video.poll_after_seconds, int):
            # The same hint as poll_after_seconds, for clients that read only headers.
            headers.append((b"retry-after", str(video.poll_after_seconds).encode()))
    return Rendered(tag, tuple(headers), _encode(video), now + life)


async def _read(g: Gateway, owner: str, job_id: str) -> Values:
    values = await g.db.fetchone_values(_VIEW, {"id": job_id, "owner": owner})
    if values is None:
        raise NotFoundError(f"no video {job_id}", param="video_id")
    return tuple(values)


async def _held(
    g: Gateway,
    job_id: str,
    owner: str,
    woken: asyncio.Event,
    wait: float,
    seen: int | None,
    values: Values,
    receive: Receive | None,
) -> Values:
    """``values`` once the job has moved past the version the client has (``seen``, else this one).

    A finished job is answered at once, unless the client names its current version: what it then
    waits for is the job's next change all the same (its webhook delivery recorded, its expiry).
    """
    baseline = values[_VERSION] if seen is None else seen
    if values[_VERSION] != baseline or (seen is None and values[_STATUS] in TERMINAL):
        return values

    async def reread() -> tuple[bool, Values]:
        again = await _read(g, owner, job_id)
        return again[_VERSION] != baseline, again

    later = await hold(woken, wait, receive, reread, lambda: g.waiters.draining)
    return values if later is None else later


async def answer(
    g: Gateway,
    principal: Principal,
    job_id: str,
    base: str,
    *,
    if_none_match: str | None = None,
    wait: float | None = None,
    receive: Receive | None = None,
    cache: RenderCache | None = None,
) -> tuple[int, Headers, bytes]:
    """The poll's status, headers besides content type and length, and JSON body (empty for a 304);
    raises the API's errors, and ``ClientGone`` when a held poll's client leaves.

    With ``wait``, a job in flight is answered once its version moves past the one ``If-None-Match``
    names (else the one read now) or ``wait`` seconds pass; at the process's cap, at once.
    """
    woken = g.waiters.add(job_id) if wait is not None else None  # before the read: no change slips between
    try:
        values = await _read(g, principal.owner_id, job_id)
        if woken is not None and wait is not None:
            seen = seen_version(if_none_match, job_id)
            values = await _held(g, job_id, principal.owner_id, woken, wait, seen, values, receive)
    finally:
        if woken is not None:
            g.waiters.remove(job_id, woken)
    now = time.monotonic()
    if cache is None:
        entry = render(g, values, base, now)
    else:
        version = values[_VERSION]
        assert isinstance(version, int)
        key = (job_id, version, base)
        hit = cache.get(key, now)
        if hit is None:
            hit = render(g, values, base, now)
            cache.put(key, hit)
        entry = hit
    if if_none_match is not None and matches(if_none_match, entry.tag):
        return 304, entry.headers, b""
    return 200, entry.headers, entry.body


async def get_video(request: Request) -> Response:
    """The route the fast path falls back to (and that answers ids it does not take)."""
    g = services(request)
    base = g.settings.base_url.of(request.scope)
    principal = await caller(request)
    wait = wait_param(request.scope["query_string"])
    try:
        status, headers, body = await answer(
            g,
            principal,
            request.path_params["video_id"],
            base,
            if_none_match=request.headers.get("if-none-match"),
            wait=wait,
            receive=request.receive,
        )
    except ClientGone:
        return Response(status_code=499)  # no one reads it; the access log and metrics do
    response = Response(body, status) if status == 304 else Response(body, status, media_type="application/json")
    response.raw_headers.extend(headers)
    return response


class PollFastPath:
    """Wraps the whole app; every other request passes straight through."""

    def __init__(self, app: ASGIApp, cors: CORSMiddleware | None = None) -> None:
        self.app = app
        self.cors = cors
        self.cache = RenderCache()
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
        auth = rid = host = proto = forwarded = origin = inm = None
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
            elif name == b"if-none-match":
                inm = value.decode("latin-1")
        rid = rid or new_request_id()  # not bound for logging: this path logs nothing, the fallback binds its own
        g = services(scope)
        headers = [(b"x-request-id", rid.encode())]
        wait = None
        try:
            principal = await g.keys.authenticate(auth)
            await g.keys.throttle(principal)
            query = scope["query_string"]
            wait = wait_param(query) if query else None
            base = g.settings.base_url.resolve(scope, host, proto, forwarded)
            status, extra, body = await answer(
                g, principal, job_id, base, if_none_match=inm, wait=wait, receive=receive, cache=self.cache
            )
            headers.extend(extra)
        except ClientGone:
            return
        except VidgateError as exc:
            exc.request_id = rid
            body = _encode(exc.body())
            status = exc.status
            for name, value in (exc.headers or {}).items():
                headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        except Exception:
            await self.app(scope, receive, send)
            return
        if status != 304:
            headers += (_JSON, (b"content-length", str(len(body)).encode()))
        if self.cors is not None:
            headers.append(self.cors_vary)
            if origin is not None:
                headers.extend(self.cors_simple)
                if self.cors_echo and self.cors.is_allowed_origin(origin.decode("latin-1")):
                    headers.append((b"access-control-allow-origin", origin))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if wait is None:  # a held poll's time is the job's, not the server's: it would swamp the histogram
            HTTP_LATENCY.observe("GET", status, time.perf_counter() - start)
