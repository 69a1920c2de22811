"""What every route shares: the error envelope, request ids, JSON bodies and responses."""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidgate.errors import (
    InternalError,
    MethodNotAllowedError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    ValidationError,
    VidgateError,
)
from vidgate.gateway.ids import token
from vidgate.gateway.logs import bind_contextvars

log = logging.getLogger("vidgate.api")
_encoder = msgspec.json.Encoder()
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(_encoder.encode(value), status_code=status, headers=headers, media_type="application/json")


def request_id(scope: Scope) -> str:
    return scope["state"]["request_id"]


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
                candidate = value.decode("latin-1")
                rid = candidate if _REQUEST_ID.match(candidate) else None
                break
        rid = rid or f"req_{token(12)}"
        scope.setdefault("state", {})["request_id"] = rid
        bind_contextvars(request_id=rid)
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

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


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        InternalError("the gateway hit an unexpected error; it has been logged"), request_id(request.scope)
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    VidgateError: on_vidgate_error,
    HTTPException: on_http_exception,
    Exception: on_unexpected,
}


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
    return body


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
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(f"{name} must be an integer", param=name) from None
    if not lo <= value <= hi:
        raise ValidationError(f"{name} must be between {lo} and {hi}", param=name)
    return value
