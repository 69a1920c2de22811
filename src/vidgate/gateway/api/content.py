"""``GET /v1/videos/{id}/content`` with one ``Range``, from the local store, served beneath the framework.

A player seeking through a video asks for many small ranges; each one paid for the whole stack
(routing, request objects, three middlewares, a read of every column) around a single ``pread``.
This path does what those did for it on the raw ASGI scope: request id, metrics, auth, throttle, a
read of the two columns it needs, the same headers as ``api/videos.py`` ``serve``. It takes only
the plain case: a completed job's first output (no query), a single satisfiable range, no
``If-Range``, a store with local files, no CORS request. Everything else, and every error but the
throttle's 429, goes through the full stack, which answers it from scratch (a read only reads, so
asking twice is safe); the throttle is taken last, once this path is sure to answer.
"""

from __future__ import annotations

import os
import re
import time

import msgspec
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from vidgate.errors import VidgateError
from vidgate.gateway.api.http import valid_request_id
from vidgate.gateway.api.videos import SMALL_RANGE, _single_range
from vidgate.gateway.ids import request_id as new_request_id
from vidgate.gateway.jobs.records import StoredOutput
from vidgate.gateway.metrics import HTTP_LATENCY
from vidgate.gateway.services import services
from vidgate.gateway.storage.db import Q

PREFIX = "/v1/videos/"
SUFFIX = "/content"
_JOB_ID = re.compile(r"vid_[0-9a-z]{1,64}\Z")
_READ = Q("SELECT status, outputs FROM jobs WHERE id = :id AND owner_id = :owner")
_OUTPUTS = msgspec.json.Decoder(tuple[StoredOutput, ...])
_DECODED_ENTRIES = 1024
_encode = msgspec.json.Encoder().encode


class _Served(Exception):
    """Not for this path: the full stack answers."""


class ContentFastPath:
    """Wraps the app; every request it does not take passes straight through."""

    def __init__(self, app: ASGIApp, cors: CORSMiddleware | None = None) -> None:
        self.app = app
        self.cors = cors
        # A finished job's outputs never change: their decoded form by the column's text.
        self._outputs: dict[str, tuple[StoredOutput, ...]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["query_string"]
            or not scope["path"].endswith(SUFFIX)
            or not scope["path"].startswith(PREFIX)
        ):
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        try:
            status, head, body = await self._answer(scope)
        except Exception:  # not this path's case, or an outage or a bug: the full stack answers it
            await self.app(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": body})
        HTTP_LATENCY.observe("GET", status, time.perf_counter() - start)

    async def _answer(self, scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The answer; raises (and has changed nothing) when the full stack should answer instead.

        The throttle comes last, once this path is sure to answer, so no request is counted twice.
        """
        path: str = scope["path"]
        job_id = path[len(PREFIX) : -len(SUFFIX)]
        if not _JOB_ID.match(job_id):
            raise _Served
        auth = rid = ranged = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                auth = value.decode("latin-1")
            elif name == b"range":
                ranged = value.decode("latin-1")
            elif name == b"x-request-id":
                rid = valid_request_id(value)
            elif name == b"if-range" or (name == b"origin" and self.cors is not None):
                raise _Served
        if ranged is None:
            raise _Served
        g = services(scope)
        if not g.blobs.is_local:  # an object store: streamed or redirected by the full stack
            raise _Served
        principal = await g.keys.authenticate(auth)
        values = await g.db.fetchone_values(_READ, {"id": job_id, "owner": principal.owner_id})
        if values is None or values[0] != "completed" or not values[1]:
            raise _Served
        out = self._decoded(values[1])[0]
        file = g.blobs.local_path(out.key)
        span = None if file is None else _single_range(ranged, out.bytes)
        if file is None or span is None or span[1] - span[0] > SMALL_RANGE:
            raise _Served
        fd = os.open(file, os.O_RDONLY)  # gone (FileNotFoundError): the full stack says so
        try:
            head = [(b"x-request-id", (rid or new_request_id()).encode())]
            try:
                await g.keys.throttle(principal)
            except VidgateError as exc:
                exc.request_id = rid
                for name, value in (exc.headers or {}).items():
                    head.append((name.lower().encode("latin-1"), value.encode("latin-1")))
                body = _encode(exc.body())
                head += ((b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()))
                return exc.status, head, body
            start, end = span
            body = os.pread(fd, end - start, start)
        finally:
            os.close(fd)
        head += (
            (b"etag", f'"{out.sha256}"'.encode()),
            (b"cache-control", b"private, max-age=3600"),
            (b"x-content-sha256", out.sha256.encode()),
            (b"accept-ranges", b"bytes"),
            (b"content-range", f"bytes {start}-{end - 1}/{out.bytes}".encode()),
            (b"content-length", str(len(body)).encode()),
            (b"content-disposition", f'attachment; filename="{job_id}-0.mp4"'.encode()),
            (b"content-type", out.mime_type.encode()),
        )
        return 206, head, body

    def _decoded(self, text: str) -> tuple[StoredOutput, ...]:
        outputs = self._outputs.get(text)
        if outputs is None:
            if len(self._outputs) >= _DECODED_ENTRIES:
                self._outputs.clear()
            outputs = self._outputs[text] = _OUTPUTS.decode(text)
        return outputs
