"""The OpenAPI document, assembled once from the msgspec models and the route table, and a docs page."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from vidgate import types as t
from vidgate.gateway.api.http import json_response

ERRORS = {
    "400": "Invalid request (validation_error, unsupported_parameter, model_not_found)",
    "401": "Missing, invalid or revoked API key",
    "402": "Insufficient funds",
    "403": "Forbidden",
    "404": "Not found (also another owner's id)",
    "409": "Conflict or not ready",
    "413": "Body too large",
    "415": "Wrong content type",
    "429": "Rate limited (see Retry-After)",
    "500": "Internal error",
    "502": "Upstream error",
    "503": "No provider available or not ready",
}


def _op(
    op_id: str,
    summary: str,
    ok: tuple[str, str | None],
    *,
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[str, ...] = ("400", "401", "404", "500"),
    auth: bool = True,
    content: str = "application/json",
) -> dict[str, Any]:
    code, schema = ok
    ok_content = (
        {content: {"schema": {"$ref": f"#/components/schemas/{schema}"}}}
        if schema
        else ({content: {"schema": {"type": "string", "format": "binary"}}} if content != "application/json" else {})
    )
    responses: dict[str, Any] = {
        code: {"description": "OK", "content": ok_content} if ok_content else {"description": "OK"}
    }
    if code == "200" and content == "video/mp4":
        responses["206"] = {"description": "Partial content (Range)", "content": ok_content}
        responses["416"] = {"description": "Range not satisfiable"}
    for e in errors:
        responses[e] = {"$ref": f"#/components/responses/E{e}"}
    op: dict[str, Any] = {"operationId": op_id, "summary": summary, "responses": responses, "parameters": params or []}
    if body:
        op["requestBody"] = {
            "required": body == "VideoGenerationRequest",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    if not auth:
        op["security"] = []
    return op


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema}


@cache
def document() -> dict[str, Any]:
    models = [
        t.VideoGenerationRequest,
        t.Video,
        t.VideoList,
        t.VideoDeleted,
        t.DownloadURLRequest,
        t.DownloadURL,
        t.VideoModelList,
        t.ErrorEnvelope,
        t.APIKey,
    ]
    _, components = msgspec.json.schema_components(models, ref_template="#/components/schemas/{name}")
    vid = _path_param("video_id")
    index = _query("index", {"type": "integer", "minimum": 0, "maximum": 63})
    write_errors = ("400", "401", "402", "404", "409", "413", "415", "429", "500", "503")
    paths = {
        "/v1/videos": {
            "post": _op(
                "createVideo",
                "Create a video job",
                ("202", "Video"),
                body="VideoGenerationRequest",
                errors=write_errors,
                params=[
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "schema": {"type": "string", "maxLength": 255},
                    }
                ],
            ),
            "get": _op(
                "listVideos",
                "List your video jobs",
                ("200", "VideoList"),
                params=[
                    _query("status", {"type": "string"}),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                    _query("after", {"type": "string"}),
                    _query("order", {"type": "string", "enum": ["asc", "desc"]}),
                ],
            ),
        },
        "/v1/videos/models": {
            "get": _op("listVideoModels", "The model catalogue", ("200", "VideoModelList"), errors=("401", "500"))
        },
        "/v1/videos/{video_id}": {
            "get": _op("getVideo", "A video job's status", ("200", "Video"), params=[vid]),
            "delete": _op(
                "deleteVideo",
                "Delete a finished job and its outputs",
                ("200", "VideoDeleted"),
                params=[vid],
                errors=("401", "404", "409", "500"),
            ),
        },
        "/v1/videos/{video_id}/content": {
            "get": _op(
                "getVideoContent",
                "The output bytes (Range supported)",
                ("200", None),
                params=[vid, index],
                errors=("400", "401", "404", "409", "500"),
                content="video/mp4",
            ),
        },
        "/v1/videos/{video_id}/download_url": {
            "post": _op(
                "getVideoDownloadUrl",
                "A short-lived signed download link",
                ("200", "DownloadURL"),
                body="DownloadURLRequest",
                params=[vid],
                errors=("400", "401", "404", "409", "500"),
            ),
        },
        "/v1/videos/{video_id}/download": {
            "get": _op(
                "downloadSigned",
                "Download through a signed link (no API key)",
                ("200", None),
                params=[
                    vid,
                    index,
                    _query("disposition", {"type": "string"}),
                    _query("expires", {"type": "integer"}),
                    _query("signature", {"type": "string"}),
                ],
                errors=("403", "404", "409", "500"),
                auth=False,
                content="video/mp4",
            ),
        },
        "/v1/videos/{video_id}/cancel": {
            "post": _op(
                "cancelVideo",
                "Cancel a queued or running job",
                ("200", "Video"),
                params=[vid],
                errors=("401", "404", "409", "500"),
            ),
        },
        "/healthz": {"get": _op("healthz", "Liveness", ("200", None), errors=(), auth=False)},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "vidgate",
            "version": "1.0.0",
            "description": "A self-hostable gateway for AI video generation.",
        },
        "servers": [{"url": "/"}],
        "security": [{"BearerAuth": []}],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"BearerAuth": {"type": "http", "scheme": "bearer"}},
            "responses": {
                f"E{code}": {
                    "description": text,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
                }
                for code, text in ERRORS.items()
            },
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
