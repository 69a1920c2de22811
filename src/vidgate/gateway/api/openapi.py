"""The OpenAPI document, assembled from the msgspec models and the route table, and a docs page.

Each documented entry of the route table (``routes.py``) carries an ``Operation``; this module turns
those into the document's ``paths`` (``routes.document()`` builds it once; the app serves that copy).
Routes that answer plain dicts are described by the doc-only
Structs in ``openapi_schemas``, so every response has a schema that schemathesis checks against
(tests/reliability/test_schemathesis.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from vidgate.gateway.api.http import json_response
from vidgate.gateway.api.openapi_schemas import components

ERRORS = {
    "400": "Invalid request (validation_error, unsupported_parameter, model_not_found)",
    "401": "Missing, invalid or revoked API key",
    "402": "Insufficient funds or a spend limit reached",
    "403": "Forbidden (the admin key on a key route, a key on an admin route, a bad signed link)",
    "404": "Not found (also another owner's id)",
    "409": "Conflict or not ready",
    "410": "The model is retired (model_retired): its maker no longer serves it",
    "413": "Body too large",
    "415": "Wrong content type",
    "416": "Range not satisfiable",
    "426": "Upgrade required (a websocket endpoint reached over plain HTTP)",
    "429": "Rate limited (see Retry-After)",
    "500": "Internal error",
    "502": "Upstream error",
    "503": "Service unavailable: no provider, the database or object store down, or storage full (see Retry-After)",
}
# Every keyed route: bad or missing key, the admin key, throttling, and the server-side failures.
KEYED = ("401", "403", "429", "500", "503")
ADMIN = ("401", "403", "500", "503")
REQUEST_ID = {"description": "The request's id, on every response", "schema": {"type": "string"}}


@dataclass(frozen=True, slots=True)
class Param:
    """A path, query or header parameter."""

    name: str
    where: Literal["path", "query", "header"]
    schema: Mapping[str, Any]
    required: bool = False

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "in": self.where, "required": self.required, "schema": dict(self.schema)}


def path_param(name: str) -> Param:
    return Param(name, "path", {"type": "string", "minLength": 1}, required=True)


def query(name: str, schema: Mapping[str, Any], *, required: bool = False) -> Param:
    return Param(name, "query", schema, required)


def header(name: str, schema: Mapping[str, Any]) -> Param:
    return Param(name, "header", schema)


@dataclass(frozen=True, slots=True)
class Reply:
    """A success answer: its status, the schema of its body (None: no JSON body) and what it means."""

    status: str
    schema: str | None
    description: str = "OK"


@dataclass(frozen=True, slots=True)
class Operation:
    """What the document says of one route: ``id`` may hold ``{method}`` when one route answers several
    methods alike, each then documented under its own id."""

    id: str
    summary: str
    ok: Reply
    body: str | None = None  # the request body's schema
    body_required: bool = True
    example: Mapping[str, Any] | None = None  # of the request body
    params: tuple[Param, ...] = ()
    errors: tuple[str, ...] = ()
    auth: Literal["key", "admin"] | None = "key"
    content: str = "application/json"  # of the success body; several comma-separated
    also: tuple[Reply, ...] = field(default=())  # other success answers, always JSON
    alias_of: str | None = None  # the path this one is another spelling of (``x-alias-of``)
    body_type: str = "application/json"  # of the request body (an upload's is multipart/form-data)

    def spec(self, method: str) -> dict[str, Any]:
        responses: dict[str, Any] = {self.ok.status: _reply(self.ok, self.content)}
        if self.content.startswith("video/mp4"):
            responses["206"] = _reply(Reply("206", None, "Partial content (Range)"), self.content)
        for reply in self.also:
            responses[reply.status] = _reply(reply, "application/json")
        # Any route refuses a malformed URL (a NUL in a path or query parameter, say) with 400.
        for e in sorted(set(self.errors) | ({"401", "403"} if self.auth else set()) | {"400", "500", "503"}):
            responses[e] = {"$ref": f"#/components/responses/E{e}"}
        op: dict[str, Any] = {
            "operationId": self.id.format(method=method),
            "summary": self.summary,
            "responses": responses,
            "parameters": [p.spec() for p in self.params],
        }
        if self.body:
            media: dict[str, Any] = {"schema": _ref(self.body)}
            if self.example is not None:
                media["example"] = dict(self.example)
            op["requestBody"] = {"required": self.body_required, "content": {self.body_type: media}}
        if self.alias_of is not None:
            op["x-alias-of"] = self.alias_of
        if self.auth is None:
            op["security"] = []
        elif self.auth == "admin":
            op["security"] = [{"AdminKey": []}]
        return op


@dataclass(frozen=True, slots=True)
class Hidden:
    """A route left out of the document, and why."""

    reason: str


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _reply(reply: Reply, content: str) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description, "headers": {"X-Request-Id": REQUEST_ID}}
    if reply.schema is not None:
        out["content"] = {content: {"schema": _ref(reply.schema)}}
    elif content != "application/json":
        out["content"] = {c: {"schema": {"type": "string", "format": "binary"}} for c in content.split(",")}
    return out


def paths(operations: Iterable[tuple[str, str, Operation]]) -> dict[str, Any]:
    """The document's ``paths`` from (path, lower-case method, operation), in that order."""
    out: dict[str, Any] = {}
    for path, method, operation in operations:
        out.setdefault(path, {})[method] = operation.spec(method)
    return out


def _error_response(code: str, text: str) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-Id": REQUEST_ID}
    if code == "429":
        headers["Retry-After"] = {"required": True, "schema": {"type": "string"}}
    elif code in ("503", "409"):
        headers["Retry-After"] = {"required": False, "schema": {"type": "string"}}
    return {"description": text, "headers": headers, "content": {"application/json": {"schema": _ref("ErrorEnvelope")}}}


def document(operations: Iterable[tuple[str, str, Operation]]) -> dict[str, Any]:
    """The whole document for the route table's documented operations (``routes.document`` keeps it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vidgate",
            "version": "1.0.0",
            "description": "A self-hostable gateway for AI video generation. Every error is one envelope.",
        },
        "servers": [{"url": "/"}],
        "security": [{"BearerAuth": []}],
        "paths": paths(operations),
        "components": {
            "schemas": components(),
            "securitySchemes": {
                "BearerAuth": {"type": "http", "scheme": "bearer", "description": "An API key (vg_…)"},
                "AdminKey": {"type": "http", "scheme": "bearer", "description": "VIDGATE_ADMIN_KEY"},
            },
            "responses": {f"E{code}": _error_response(code, text) for code, text in ERRORS.items()},
        },
    }


async def openapi_json(request: Request) -> Response:
    # The app keeps the document it was built with, so this module needs no import of the table.
    return json_response(request.app.state.openapi)


DOCS = """<!doctype html><html><head><meta charset="utf-8"><title>vidgate API</title>
<style>body{font:15px system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{background:#f4f4f4;padding:.1rem .3rem;border-radius:4px}.op{border:1px solid #ddd;border-radius:6px;
margin:.6rem 0;padding:.5rem .8rem}.m{font-weight:700;display:inline-block;width:4.5rem}</style></head>
<body><h1>vidgate API</h1><p>The machine-readable document is at <a href="/openapi.json">/openapi.json</a>.
Authenticate with <code>Authorization: Bearer &lt;key&gt;</code>.</p><div id="ops"></div>
<script>fetch('/openapi.json').then(r=>r.json()).then(d=>{const o=document.getElementById('ops');
for(const[p,ms]of Object.entries(d.paths))for(const[m,op]of Object.entries(ms)){const e=document.createElement('div');
e.className='op';e.innerHTML=`<span class=m>${m.toUpperCase()}</span><code>${p}</code> — ${op.summary}
<br><small>responses: ${Object.keys(op.responses).join(', ')}</small>`;o.appendChild(e);}});</script></body></html>"""


async def docs(request: Request) -> Response:
    return HTMLResponse(DOCS)
