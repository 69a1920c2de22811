"""An entry of the route table, and how a table becomes the app's routes and the document's operations.

Both come from the same entries, so a route cannot be served and left out of the document, or the
other way round, unless its entry says it is ``Hidden`` and why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from vidgate.gateway.api.openapi import Hidden, Operation

Handler = Callable[[Request], Awaitable[Response]]
SocketHandler = Callable[[WebSocket], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One path and the methods ``handler`` answers there, documented by ``doc``."""

    path: str
    methods: tuple[str, ...]
    handler: Handler
    doc: Operation | Hidden
    websocket: SocketHandler | None = None  # serves the path to clients that upgrade; ``handler`` the rest
    first: bool = False  # matched before every other route, so a probe costs one path match


@dataclass(frozen=True, slots=True)
class Files:
    """Static files under a path prefix."""

    path: str
    app: ASGIApp
    name: str
    doc: Hidden


def table_operations(table: Iterable[Endpoint | Files]) -> Iterator[tuple[str, str, Operation]]:
    """(path, lower-case method, operation) for every documented method; HEAD goes with GET."""
    for entry in table:
        if isinstance(entry, Endpoint) and isinstance(entry.doc, Operation):
            for method in entry.methods:
                if method != "HEAD":
                    yield entry.path, method.lower(), entry.doc


def table_routes(table: Iterable[Endpoint | Files]) -> list[BaseRoute]:
    """Starlette routes, in table order with the ``first`` ones ahead."""
    out: list[BaseRoute] = []
    for entry in sorted(table, key=lambda e: not (isinstance(e, Endpoint) and e.first)):
        if isinstance(entry, Files):
            out.append(Mount(entry.path, app=entry.app, name=entry.name))
            continue
        if entry.websocket is not None:
            out.append(WebSocketRoute(entry.path, entry.websocket))
        out.append(Route(entry.path, entry.handler, methods=list(entry.methods)))
    return out
