"""The OpenAPI document, assembled once from the msgspec models and the route table, and a docs page.

Routes that answer plain dicts are described by the doc-only Structs in ``openapi_schemas``, so every
response has a schema that schemathesis checks against (tests/reliability/test_schemathesis.py).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from vidgate.gateway.api.http import json_response
from vidgate.gateway.api.openapi_schemas import components

ERRORS = {
    "400": "Invalid request (validation_error, unsupported_parameter, model_not_found)",
    "401": "Missing, invalid or revoked API key",
    "402": "Insufficient funds or a spend limit reached",
    "403": "Forbidden (the admin key on a key route, a key on an admin route, a bad signed link)",
    "404": "Not found (also another owner's id)",
    "409": "Conflict or not ready",
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


CREATE_EXAMPLE = {"model": "vidgate/procedural", "prompt": "a lighthouse at dusk", "duration": 1, "size": "128x72"}
REQUEST_ID = {"description": "The request's id, on every response", "schema": {"type": "string"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(schema: str | None, content: str, *, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": "OK", "headers": {"X-Request-Id": REQUEST_ID, **(headers or {})}}
    if schema is not None:
        out["content"] = {content: {"schema": _ref(schema)}}
    elif content != "application/json":
        out["content"] = {content: {"schema": {"type": "string", "format": "binary"}}}
    return out


def _op(
    op_id: str,
    summary: str,
    ok: tuple[str, str | None],
    *,
    body: str | None = None,
    body_required: bool = True,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[str, ...] = (),
    auth: str | None = "key",
    content: str = "application/json",
    extra: dict[str, Any] | None = None,
    example: dict[str, Any] | None = None,
) -> dict[str, Any]:
    code, schema = ok
    responses: dict[str, Any] = {code: _ok(schema, content)}
    if content == "video/mp4":
        responses["206"] = {**_ok(None, content), "description": "Partial content (Range)"}
    responses.update(extra or {})
    # Any route refuses a malformed URL (a NUL in a path or query parameter, say) with 400.
    for e in sorted(set(errors) | ({"401", "403"} if auth else set()) | {"400", "500", "503"}):
        responses[e] = {"$ref": f"#/components/responses/E{e}"}
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": responses, "parameters": params or []}
    if body:
        media: dict[str, Any] = {"schema": _ref(body)}
        if example is not None:
            media["example"] = example
        op["requestBody"] = {"required": body_required, "content": {"application/json": media}}
    if auth is None:
        op["security"] = []
    elif auth == "admin":
        op["security"] = [{"AdminKey": []}]
    return op


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _header(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": schema}


def _paths() -> dict[str, Any]:
    vid = _path("video_id")
    key = _path("key_id")
    index = _query("index", {"type": "integer", "minimum": 0, "maximum": 63})
    byte_range = _header("Range", {"type": "string", "pattern": "^bytes=[0-9]*-[0-9]*$"})
    video = ("200", "Video")
    return {
        "/v1/videos": {
            "post": _op(
                "createVideo",
                "Create a video job (202; 200 when an Idempotency-Key replays an earlier create)",
                ("202", "Video"),
                body="VideoGenerationRequest",
                example=CREATE_EXAMPLE,
                errors=(*KEYED, "400", "402", "409", "413", "415"),
                params=[
                    _header("Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 255}),
                    _header("X-Provider-Key", {"type": "string", "description": "provider=key pairs (your own keys)"}),
                ],
                extra={"200": {**_ok("Video", "application/json"), "description": "Idempotent replay"}},
            ),
            "get": _op(
                "listVideos",
                "List your video jobs, newest first (keyset pagination)",
                ("200", "VideoList"),
                errors=(*KEYED, "400"),
                params=[
                    _query("status", {"type": "string"}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                    _query("after", {"type": "string"}),
                    _query("order", {"type": "string", "enum": ["asc", "desc"]}),
                ],
            ),
        },
        "/v1/videos/models": {
            "get": _op("listVideoModels", "The model catalogue", ("200", "VideoModelList"), errors=KEYED),
        },
        "/v1/videos/{video_id}": {
            "get": _op("getVideo", "A video job's status", video, params=[vid], errors=(*KEYED, "404")),
            "delete": _op(
                "deleteVideo",
                "Delete a finished job and its outputs",
                ("200", "VideoDeleted"),
                params=[vid],
                errors=(*KEYED, "404", "409"),
            ),
        },
        "/v1/videos/{video_id}/content": {
            "get": _op(
                "getVideoContent",
                "The output bytes (Range supported)",
                ("200", None),
                params=[vid, index, byte_range],
                errors=(*KEYED, "400", "404", "409", "416"),
                content="video/mp4",
            ),
        },
        "/v1/videos/{video_id}/download_url": {
            "post": _op(
                "getVideoDownloadUrl",
                "A short-lived signed download link",
                ("200", "DownloadURL"),
                body="DownloadURLRequest",
                body_required=False,
                params=[vid],
                errors=(*KEYED, "400", "404", "409", "413"),
            ),
        },
        "/v1/videos/{video_id}/download": {
            "get": _op(
                "downloadSigned",
                "Download through a signed link (no API key; tampered, expired or foreign links are 403)",
                ("200", None),
                params=[
                    vid,
                    {**index, "required": True},
                    {**_query("disposition", {"type": "string", "enum": ["attachment", "inline"]}), "required": True},
                    {**_query("expires", {"type": "integer"}), "required": True},
                    {**_query("signature", {"type": "string"}), "required": True},
                    byte_range,
                ],
                errors=("403", "404", "409", "416"),
                auth=None,
                content="video/mp4",
            ),
        },
        "/v1/videos/{video_id}/cancel": {
            "post": _op(
                "cancelVideo", "Cancel a queued or running job", video, params=[vid], errors=(*KEYED, "404", "409")
            ),
        },
        "/v1/videos/{video_id}/events": {
            "get": _op(
                "streamVideoEvents",
                "Server-sent events: a snapshot, then one update per lifecycle event until the job ends",
                ("200", "ServerSentEvent"),
                params=[
                    vid,
                    _query("interval_ms", {"type": "integer", "minimum": 1000, "maximum": 10000}),
                    _query("since", {"type": "string"}),
                    _header("Last-Event-ID", {"type": "string"}),
                ],
                errors=(*KEYED, "400", "404"),
                content="text/event-stream",
                extra={"204": {**_ok(None, "application/json"), "description": "Reconnect to a finished job: stop"}},
            ),
        },
        "/v1/videos/{video_id}/stream_token": {
            "post": _op(
                "createStreamToken",
                "A short-lived token for the job's websocket (browsers cannot send headers)",
                ("200", "StreamToken"),
                body="StreamTokenRequest",
                body_required=False,
                params=[vid],
                errors=(*KEYED, "400", "404", "413"),
            ),
        },
        "/v1/videos/{video_id}/webhook_deliveries": {
            "get": _op(
                "listWebhookDeliveries",
                "The job's webhook deliveries with their attempt log",
                ("200", "WebhookDeliveryList"),
                params=[vid],
                errors=(*KEYED, "404"),
            ),
        },
        "/v1/videos/{video_id}/webhook_deliveries/{delivery_id}/redeliver": {
            "post": _op(
                "redeliverWebhook",
                "Queue a webhook delivery again",
                ("200", "WebhookDelivery"),
                params=[vid, _path("delivery_id")],
                errors=(*KEYED, "404"),
            ),
        },
        "/v1/async/video/{video_id}/ws": {
            "get": _op(
                "videoWebsocket",
                "The job's websocket (connect with Upgrade: websocket; plain HTTP is 426)",
                ("101", None),
                params=[vid, _query("since", {"type": "string"})],
                errors=("426",),
                auth=None,
            ),
        },
        "/v1/usage": {
            "get": _op(
                "getUsage",
                "Your balance and spend by day and by model",
                ("200", "UsageReport"),
                params=[_query("days", {"type": "integer", "minimum": 1, "maximum": 366})],
                errors=(*KEYED, "400"),
            ),
        },
        "/v1/admin/keys": {
            "post": _op(
                "createKey",
                "Create an API key (the secret is shown once)",
                ("201", "APIKey"),
                body="CreateKey",
                errors=(*ADMIN, "400", "413", "415"),
                auth="admin",
            ),
            "get": _op("listKeys", "Every API key (no secrets)", ("200", "APIKeyList"), errors=ADMIN, auth="admin"),
        },
        "/v1/admin/keys/{key_id}": {
            "delete": _op(
                "revokeKey", "Revoke an API key", ("200", "APIKey"), params=[key], errors=(*ADMIN, "404"), auth="admin"
            ),
        },
        "/v1/admin/keys/{key_id}/topup": {
            "post": _op(
                "topUpKey",
                "Add to (or, negative, take from) a key's balance",
                ("200", "Balance"),
                body="TopUp",
                params=[key],
                errors=(*ADMIN, "400", "404", "413", "415"),
                auth="admin",
            ),
        },
        "/v1/admin/keys/{key_id}/ledger": {
            "get": _op(
                "getKeyLedger",
                "A key's balance and latest ledger entries",
                ("200", "Ledger"),
                params=[key, _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})],
                errors=(*ADMIN, "400", "404"),
                auth="admin",
            ),
        },
        "/v1/admin/keys/{key_id}/limits": {
            method: _op(
                f"{method}KeyLimits",
                "Set a key's spend, rate and concurrency limits (null removes one, a missing field keeps it)",
                ("200", "Balance"),
                body="SetLimits",
                params=[key],
                errors=(*ADMIN, "400", "404", "413", "415"),
                auth="admin",
            )
            for method in ("patch", "post")
        },
        "/healthz": {"get": _op("healthz", "Liveness (no I/O)", ("200", "Health"), auth=None)},
        "/readyz": {
            "get": _op("readyz", "Readiness: database and object store reachable", ("200", "Health"), auth=None)
        },
    }


def _error_response(code: str, text: str) -> dict[str, Any]:
    headers: dict[str, Any] = {"X-Request-Id": REQUEST_ID}
    if code == "429":
        headers["Retry-After"] = {"required": True, "schema": {"type": "string"}}
    elif code in ("503", "409"):
        headers["Retry-After"] = {"required": False, "schema": {"type": "string"}}
    return {"description": text, "headers": headers, "content": {"application/json": {"schema": _ref("ErrorEnvelope")}}}


@cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "vidgate",
            "version": "1.0.0",
            "description": "A self-hostable gateway for AI video generation. Every error is one envelope.",
        },
        "servers": [{"url": "/"}],
        "security": [{"BearerAuth": []}],
        "paths": _paths(),
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
    return json_response(document())


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


routes = [
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
]
