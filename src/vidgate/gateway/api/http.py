"""What every route shares: the error envelope, request ids, the caller's key, JSON bodies and responses."""

from __future__ import annotations

import logging
import re
import sqlite3
import sys
from typing import Any

import msgspec
import obstore.exceptions
import orjson
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from vidgate.errors import (
    InternalError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
    ValidationError,
    VidgateError,
)
from vidgate.gateway.auth import Principal
from vidgate.gateway.ids import request_id as new_request_id
from vidgate.gateway.logs import bind_contextvars
from vidgate.gateway.services import services
from vidgate.gateway.storage.space import is_storage_full, storage_full_error

log = logging.getLogger("vidgate.api")
_encoder = msgspec.json.Encoder()
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_INTEGER = re.compile(r"-?[0-9]{1,18}\Z")
RETRY_AFTER_OUTAGE = "5"

# What a database or object-store outage raises: connection loss, refusal, shutdown, pool or command
# timeouts (storage/db.py bounds both), a locked or unreadable SQLite file, an unreachable store.
# asyncpg's classes are looked up only once it is loaded: an embedded server never imports it.
_PG_DOWN = ("PostgresConnectionError", "InterfaceError", "TooManyConnectionsError", "OperatorInterventionError")


def _db_down() -> tuple[type[BaseException], ...]:
    asyncpg = sys.modules.get("asyncpg")
    return () if asyncpg is None else tuple(getattr(asyncpg.exceptions, name) for name in _PG_DOWN)


_SQLITE_DOWN = ("locked", "busy", "disk i/o error", "unable to open")
_NOT_OUTAGES = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(value), status_code=status, headers=headers, media_type="application/json")


def request_id(scope: Scope) -> str:
    return scope["state"]["request_id"]


def valid_request_id(raw: bytes) -> str | None:
    """A client's ``X-Request-Id`` when it is sane enough to echo and log, else None."""
    candidate = raw.decode("latin-1")
    return candidate if _REQUEST_ID.match(candidate) else None


def error_response(exc: VidgateError, rid: str | None) -> Response:
    exc.request_id = rid
    return json_response(exc.body(), exc.status, headers=exc.headers or None)


class RequestIdMiddleware:
    """Gives every request an id (or keeps a sane ``X-Request-Id`` it came with) and echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = valid_request_id(value)
                break
        rid = rid or new_request_id()
        scope.setdefault("state", {})["request_id"] = rid
        bind_contextvars(request_id=rid)
        if scope["type"] == "websocket":  # no response head to carry the id: every message goes straight out
            await self.app(scope, receive, send)
            return
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")):
            # No id or parameter holds a NUL, and PostgreSQL text cannot: refuse it before any route does.
            await error_response(ValidationError("the URL must not contain NUL (%00) characters"), rid)(
                scope, receive, send_with_id
            )
            return
        await self.app(scope, receive, send_with_id)


async def on_vidgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, VidgateError)
    return error_response(exc, request_id(request.scope))


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        err: VidgateError = NotFoundError(f"no route for {request.method} {request.url.path}")
    elif exc.status_code == 405:
        err = MethodNotAllowedError(f"{request.method} is not allowed on {request.url.path}")
        err.headers = dict(exc.headers or {})
    else:
        err = VidgateError(str(exc.detail), status=exc.status_code, code="http_error")
    return error_response(err, request_id(request.scope))


def unavailable(exc: BaseException) -> str | None:
    """``"database"`` or ``"object store"`` when ``exc`` says that service is unreachable, ``"storage"``
    when a disk is full, else None."""
    if is_storage_full(exc):
        return "storage"
    if isinstance(exc, _db_down()):
        return "database"
    if isinstance(exc, sqlite3.OperationalError):
        return "database" if any(s in str(exc).lower() for s in _SQLITE_DOWN) else None
    if isinstance(exc, obstore.exceptions.GenericError):
        return "object store"
    if isinstance(exc, OSError) and not isinstance(exc, _NOT_OUTAGES):  # refused, reset, timed out
        return "database or object store"
    return None


async def on_outage(request: HTTPConnection, exc: Exception) -> Response | None:
    """A backing service is down: a quick 503 with Retry-After, never a hang or a 500."""
    what = unavailable(exc)
    if what is None:
        raise exc  # not an outage after all: the catch-all below logs it as a 500
    method = request.scope.get("method", "WEBSOCKET")
    log.warning("%s unreachable on %s %s: %s: %s", what, method, request.url.path, type(exc).__name__, exc)
    if isinstance(request, WebSocket):
        await request.close(1013)  # "try again later"
        return None
    if what == "storage":
        return error_response(storage_full_error(), request_id(request.scope))
    err = ServiceUnavailableError(
        f"the {what} is unreachable right now; retry shortly",
        headers={"Retry-After": RETRY_AFTER_OUTAGE},
        details={"unavailable": what},
    )
    return error_response(err, request_id(request.scope))


async def on_unexpected(request: Request, exc: Exception) -> Response:
    # This handler runs outside every middleware (Starlette's ServerErrorMiddleware), so the request
    # id header is added here.
    rid = request_id(request.scope)
    if unavailable(exc) is not None:
        response = await on_outage(request, exc)
        assert response is not None
    else:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        response = error_response(InternalError("the gateway hit an unexpected error; it has been logged"), rid)
    response.headers["X-Request-Id"] = rid
    return response


def exception_handlers(postgres: bool) -> dict[Any, Any]:
    """The handlers by class. Outages are registered by class so they are answered inside the
    middleware stack (request id, metrics); asyncpg's only when the database is PostgreSQL."""
    if postgres:
        import asyncpg  # noqa: F401  (loads the classes _db_down looks up)
    outages = (*_db_down(), sqlite3.OperationalError, obstore.exceptions.GenericError, OSError)
    return {
        VidgateError: on_vidgate_error,
        HTTPException: on_http_exception,
        **dict.fromkeys(outages, on_outage),
        Exception: on_unexpected,
    }


async def caller(request: Request) -> Principal:
    """The request's API key, authenticated and within its request rate."""
    keys = services(request).keys
    principal = await keys.authenticate(request.headers.get("authorization"))
    await keys.throttle(principal)
    return principal


async def owner(request: Request) -> str:
    """The owner of the request's API key (see ``caller``): the one whose jobs it may see."""
    return (await caller(request)).owner_id


async def read_body(request: Request, limit: int, *, json: bool = True) -> bytes:
    """The request body, refusing non-JSON content types and bodies over ``limit`` bytes."""
    if json:
        ctype = request.headers.get("content-type", "")
        if ctype.split(";", 1)[0].strip().lower() != "application/json":
            raise UnsupportedMediaTypeError(
                f"send the body as application/json (got {ctype or 'no content type'})", param="Content-Type"
            )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLargeError(f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if json and not body.strip():
        raise ValidationError("the body is empty; send a JSON object")
    if b"\\u0000" in body and _has_nul(body):
        # PostgreSQL text cannot hold NUL: a webhook URL with one would stop its job's every transition.
        raise ValidationError("strings in the body must not contain NUL (\\u0000) characters")
    return body


def _has_nul(body: bytes) -> bool:
    """Whether any string (key or value) in a JSON body holds a NUL character."""
    try:
        stack = [orjson.loads(body)]
    except orjson.JSONDecodeError:
        return False  # the route's own decoding reports what is wrong with it
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def decode(body: bytes, kind: type[Any]) -> Any:
    """Decode an optional JSON body into ``kind`` with errors that name the param."""
    from vidgate.gateway.catalog.validate import explain

    try:
        return msgspec.json.decode(body or b"{}", type=kind)
    except msgspec.ValidationError as exc:
        message, param = explain(str(exc))
        raise ValidationError(message, param=param) from None
    except msgspec.DecodeError as exc:
        raise ValidationError(f"the body is not valid JSON: {exc}") from None


def int_param(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not _INTEGER.match(raw):  # int() would also take " 7", "1_0" and other digits than 0-9
        raise ValidationError(f"{name} must be an integer", param=name)
    value = int(raw)
    if not lo <= value <= hi:
        raise ValidationError(f"{name} must be between {lo} and {hi}", param=name)
    return value


def bool_param(request: Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter: ``true``/``false`` (``1``/``0`` too); anything else is a 400, not a guess."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    value = raw.lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise ValidationError(f"{name} must be true or false", param=name)
