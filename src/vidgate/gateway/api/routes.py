"""The one route table: every path the app serves, its handler, and what the OpenAPI document says of it.

The app's Starlette routes (``starlette_routes``) and the document's ``paths`` (``operations``) are
both built from ``ENDPOINTS``, so a route cannot be served and left out of the document, or the other
way round, unless its entry says it is ``Hidden`` and why. The table is in the document's order;
routes are matched in the same order, except those marked ``first``.

Every ``/v1/videos`` route is also served under ``/v1/video/generations``, the reference's other
spelling, and documented there as an alias (operation id ``…Alias``, ``x-alias-of`` its path).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from vidgate.gateway.api import (
    admin,
    dashboard,
    deliveries,
    events,
    files,
    health,
    models,
    openai_compat,
    openapi,
    poll,
    quote,
    usage,
    videos,
    webhook_endpoints,
)
from vidgate.gateway.api.openapi import ADMIN, KEYED, Hidden, Operation, Reply, header, path_param, query

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


VIDEO_ID = path_param("video_id")
KEY_ID = path_param("key_id")
ENDPOINT_ID = path_param("endpoint_id")
FILE_ID = path_param("file_id")
WEBHOOK_ENDPOINTS = "/v1/webhook-endpoints"  # the reference SDK's spelling; also served as webhook_endpoints
INDEX = {"type": "integer", "minimum": 0, "maximum": 63}
RANGE = header("Range", {"type": "string", "pattern": "^bytes=[0-9]*-[0-9]*$"})
# video: the output (the default); thumbnail: its poster frame (WebP); spritesheet: its frames in a grid (JPEG)
VARIANT = {"type": "string", "enum": list(videos.VARIANTS), "default": "video"}
VARIANT_TYPES = "video/mp4,image/webp,image/jpeg"
VIDEO = Reply("200", "Video")
# Seconds to hold the poll until the job moves past the version the client has (If-None-Match, else
# the one at the request); a finished job, or a process at its cap of held polls, answers at once.
LONG_POLL_WAIT = query("wait", {"type": "number", "exclusiveMinimum": 0, "maximum": 30})
# An ETag of an earlier answer: 304 while the job is still that version.
IF_NONE_MATCH = header("If-None-Match", {"type": "string"})
CREATE_EXAMPLE = {"model": "vidgate/procedural", "prompt": "a lighthouse at dusk", "duration": 1, "size": "128x72"}
OPENAI = Hidden("the OpenAI video dialect, documented by OpenAI")
ADMIN_PAGE = (query("limit", {"type": "integer", "minimum": 1, "maximum": 500}), query("after", {"type": "string"}))

ENDPOINTS: tuple[Endpoint | Files, ...] = (
    Endpoint(
        "/v1/videos",
        ("POST",),
        videos.create_video,
        Operation(
            "createVideo",
            "Create a video job (202; 200 when an Idempotency-Key replays an earlier create)",
            Reply("202", "Video"),
            body="VideoGenerationRequest",
            example=CREATE_EXAMPLE,
            errors=(*KEYED, "400", "402", "409", "410", "413", "415"),
            params=(
                header("Idempotency-Key", {"type": "string", "minLength": 1, "maxLength": 255}),
                header("X-Provider-Key", {"type": "string", "description": "provider=key pairs (your own keys)"}),
            ),
            also=(Reply("200", "Video", "Idempotent replay"),),
        ),
    ),
    Endpoint(
        "/v1/videos",
        ("GET",),
        videos.list_videos,
        Operation(
            "listVideos",
            "List your video jobs, newest first (keyset pagination)",
            Reply("200", "VideoList"),
            errors=(*KEYED, "400"),
            params=(
                query("status", {"type": "string"}),
                query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                query("after", {"type": "string"}),
                query("order", {"type": "string", "enum": ["asc", "desc"]}),
                query("model", {"type": "string", "description": "only this model's jobs"}),
                query("q", {"type": "string", "maxLength": 200, "description": "prompt contains (any case)"}),
            ),
        ),
    ),
    Endpoint(
        "/v1/videos/models",
        ("GET",),
        models.list_models,
        Operation(
            "listVideoModels",
            "The model catalogue (params: comma-separated fields a model must all take)",
            Reply("200", "VideoModelList"),
            params=(query("params", {"type": "string"}), query("include_retired", {"type": "boolean"})),
            errors=KEYED,
        ),
    ),
    Endpoint(
        "/v1/videos/quote",
        ("POST",),
        quote.quote_video,
        Operation(
            "quoteVideo",
            "What a create with this body would hold, with the price card's lines (validated as a create; no job)",
            Reply("200", "VideoQuote"),
            body="VideoGenerationRequest",
            example=CREATE_EXAMPLE,
            errors=(*KEYED, "400", "413", "415", "503"),
            params=(header("X-Provider-Key", {"type": "string", "description": "provider=key pairs (your own keys)"}),),
        ),
    ),
    Endpoint(
        "/v1/videos/{video_id}",
        ("GET",),
        poll.get_video,
        Operation(
            "getVideo",
            "A video job's status; with wait, held until the job changes (a long poll)",
            VIDEO,
            params=(VIDEO_ID, LONG_POLL_WAIT, IF_NONE_MATCH),
            errors=(*KEYED, "404"),
            also=(Reply("304", None, "Not modified: the job is still the version If-None-Match names"),),
        ),
    ),
    Endpoint(
        "/v1/videos/{video_id}",
        ("DELETE",),
        videos.delete_video,
        Operation(
            "deleteVideo",
            "Delete a finished job and its outputs",
            Reply("200", "VideoDeleted"),
            params=(VIDEO_ID,),
            errors=(*KEYED, "404", "409"),
        ),
    ),
    Endpoint(
        "/v1/videos/{video_id}/content",
        ("GET", "HEAD"),
        videos.video_content,
        Operation(
            "getVideoContent",
            "The output bytes (Range supported), or its poster frame or spritesheet (variant)",
            Reply("200", None),
            params=(VIDEO_ID, query("index", INDEX), query("variant", VARIANT), RANGE),
            errors=(*KEYED, "400", "404", "409", "416"),
            content=VARIANT_TYPES,
        ),
    ),
    Endpoint(
        "/v1/videos/{video_id}/download_url",
        ("POST",),
        videos.download_url,
        Operation(
            "getVideoDownloadUrl",
            "A short-lived signed download link",
            Reply("200", "DownloadURL"),
            body="DownloadURLRequest",
            body_required=False,
            params=(VIDEO_ID,),
            errors=(*KEYED, "400", "404", "409", "413"),
        ),
    ),
    Endpoint(
        "/v1/videos/{video_id}/download",
        ("GET", "HEAD"),
        videos.signed_download,
        Operation(
            "downloadSigned",
            "Download through a signed link (no API key; tampered, expired or foreign links are 403)",
            Reply("200", None),
            params=(
                VIDEO_ID,
                query("index", INDEX, required=True),
                query("disposition", {"type": "string", "enum": ["attachment", "inline"]}, required=True),
                query("expires", {"type": "integer"}, required=True),
                query("signature", {"type": "string"}, required=True),
                query("variant", VARIANT),
                RANGE,
            ),
            errors=("403", "404", "409", "416"),
            auth=None,
            content=VARIANT_TYPES,
        ),
    ),
    Endpoint(
        "/v1/videos/{video_id}/cancel",
        ("POST",),
        videos.cancel_video,
        Operation(
            "cancelVideo", "Cancel a queued or running job", VIDEO, params=(VIDEO_ID,), errors=(*KEYED, "404", "409")
        ),
    ),
    Endpoint(
        "/v1/videos/{video_id}/events",
        ("GET",),
        events.video_events,
        Operation(
            "streamVideoEvents",
            "Server-sent events: a snapshot, then one update per lifecycle event until the job ends",
            Reply("200", "ServerSentEvent"),
            params=(
                VIDEO_ID,
                query("interval_ms", {"type": "integer", "minimum": 1000, "maximum": 10000}),
                query("since", {"type": "string"}),
                header("Last-Event-ID", {"type": "string"}),
            ),
            errors=(*KEYED, "400", "404"),
            content="text/event-stream",
            also=(Reply("204", None, "Reconnect to a finished job: stop"),),
        ),
    ),
    Endpoint(
        "/v1/videos/{video_id}/stream_token",
        ("POST",),
        events.stream_token,
        Operation(
            "createStreamToken",
            "A short-lived token for the job's websocket (browsers cannot send headers)",
            Reply("200", "StreamToken"),
            body="StreamTokenRequest",
            body_required=False,
            params=(VIDEO_ID,),
            errors=(*KEYED, "400", "404", "413"),
        ),
    ),
    Endpoint(
        "/v1/videos/{video_id}/webhook_deliveries",
        ("GET",),
        deliveries.list_deliveries,
        Operation(
            "listWebhookDeliveries",
            "The job's webhook deliveries with their attempt log",
            Reply("200", "WebhookDeliveryList"),
            params=(VIDEO_ID,),
            errors=(*KEYED, "404"),
        ),
    ),
    Endpoint(
        "/v1/videos/{video_id}/webhook_deliveries/{delivery_id}/redeliver",
        ("POST",),
        deliveries.redeliver,
        Operation(
            "redeliverWebhook",
            "Queue a webhook delivery again",
            Reply("200", "WebhookDelivery"),
            params=(VIDEO_ID, path_param("delivery_id")),
            errors=(*KEYED, "404"),
        ),
    ),
    Endpoint(
        WEBHOOK_ENDPOINTS,
        ("POST",),
        webhook_endpoints.create_endpoint,
        Operation(
            "createWebhookEndpoint",
            "Register a webhook endpoint (its signing secret is shown once)",
            Reply("201", "WebhookEndpointSecret"),
            body="WebhookEndpointCreate",
            errors=(*KEYED, "400", "413", "415"),
        ),
    ),
    Endpoint(
        WEBHOOK_ENDPOINTS,
        ("GET",),
        webhook_endpoints.list_endpoints,
        Operation("listWebhookEndpoints", "Your webhook endpoints", Reply("200", "WebhookEndpointList"), errors=KEYED),
    ),
    Endpoint(
        f"{WEBHOOK_ENDPOINTS}/{{endpoint_id}}",
        ("GET",),
        webhook_endpoints.get_endpoint,
        Operation(
            "getWebhookEndpoint",
            "A webhook endpoint",
            Reply("200", "WebhookEndpoint"),
            params=(ENDPOINT_ID,),
            errors=(*KEYED, "404"),
        ),
    ),
    Endpoint(
        f"{WEBHOOK_ENDPOINTS}/{{endpoint_id}}",
        ("PATCH",),
        webhook_endpoints.update_endpoint,
        Operation(
            "updateWebhookEndpoint",
            "Change a webhook endpoint's url, name, events or status",
            Reply("200", "WebhookEndpoint"),
            body="WebhookEndpointUpdate",
            params=(ENDPOINT_ID,),
            errors=(*KEYED, "400", "404", "413", "415"),
        ),
    ),
    Endpoint(
        f"{WEBHOOK_ENDPOINTS}/{{endpoint_id}}",
        ("DELETE",),
        webhook_endpoints.delete_endpoint,
        Operation(
            "deleteWebhookEndpoint",
            "Delete a webhook endpoint (jobs that name it deliver nothing more)",
            Reply("200", "WebhookEndpointDeleted"),
            params=(ENDPOINT_ID,),
            errors=(*KEYED, "404"),
        ),
    ),
    Endpoint(
        f"{WEBHOOK_ENDPOINTS}/{{endpoint_id}}/rotate-secret",
        ("POST",),
        webhook_endpoints.rotate_secret,
        Operation(
            "rotateWebhookEndpointSecret",
            "A new signing secret (shown once); the previous one keeps signing for the overlap",
            Reply("200", "WebhookEndpointSecret"),
            body="WebhookSecretRotation",
            body_required=False,
            params=(ENDPOINT_ID,),
            errors=(*KEYED, "400", "404", "413"),
        ),
    ),
    Endpoint(
        f"{WEBHOOK_ENDPOINTS}/{{endpoint_id}}/test",
        ("POST",),
        webhook_endpoints.test_endpoint,
        Operation(
            "testWebhookEndpoint",
            "Send a signed webhook.test event to the endpoint now",
            Reply("200", "WebhookEndpointTestResult"),
            params=(ENDPOINT_ID,),
            errors=(*KEYED, "400", "404", "413"),
        ),
    ),
    Endpoint(
        "/v1/files",
        ("POST",),
        files.create_file,
        Operation(
            "createFile",
            "Upload an image, video or audio file (multipart/form-data: file, purpose) for input references",
            Reply("201", "UploadedFile"),
            body="FileUpload",
            body_type="multipart/form-data",
            errors=(*KEYED, "400", "413", "415"),
        ),
    ),
    Endpoint(
        "/v1/files",
        ("GET",),
        files.list_files,
        Operation(
            "listFiles",
            "Your uploads that have not expired, newest first (keyset pagination)",
            Reply("200", "FileList"),
            errors=(*KEYED, "400"),
            params=(
                query("limit", {"type": "integer", "minimum": 1, "maximum": 100}),
                query("after", {"type": "string"}),
                query("order", {"type": "string", "enum": ["asc", "desc"]}),
            ),
        ),
    ),
    Endpoint(
        "/v1/files/{file_id}",
        ("GET",),
        files.get_file,
        Operation("getFile", "An upload", Reply("200", "UploadedFile"), params=(FILE_ID,), errors=(*KEYED, "404")),
    ),
    Endpoint(
        "/v1/files/{file_id}",
        ("DELETE",),
        files.delete_file,
        Operation(
            "deleteFile",
            "Delete an upload and its bytes",
            Reply("200", "FileDeleted"),
            params=(FILE_ID,),
            errors=(*KEYED, "404"),
        ),
    ),
    Endpoint(
        "/v1/async/video/{video_id}/ws",
        ("GET",),
        events.socket_over_http,
        Operation(
            "videoWebsocket",
            "The job's websocket (connect with Upgrade: websocket; plain HTTP is 426)",
            Reply("101", None),
            params=(VIDEO_ID, query("since", {"type": "string"})),
            errors=("426",),
            auth=None,
        ),
        websocket=events.video_socket,
    ),
    Endpoint(
        "/v1/usage",
        ("GET",),
        usage.usage,
        Operation(
            "getUsage",
            "Your balance and spend by day and by model",
            Reply("200", "UsageReport"),
            params=(query("days", {"type": "integer", "minimum": 1, "maximum": 366}),),
            errors=(*KEYED, "400"),
        ),
    ),
    Endpoint(
        "/v1/usage/limits",
        ("GET",),
        usage.limits,
        Operation(
            "getUsageLimits",
            "Your rate, concurrency and spend limits, and how much of each is in use now",
            Reply("200", "UsageLimits"),
            errors=KEYED,
        ),
    ),
    Endpoint(
        "/v1/admin/keys",
        ("POST",),
        admin.create_key,
        Operation(
            "createKey",
            "Create an API key (the secret is shown once)",
            Reply("201", "APIKey"),
            body="CreateKey",
            errors=(*ADMIN, "400", "413", "415"),
            auth="admin",
        ),
    ),
    Endpoint(
        "/v1/admin/keys",
        ("GET",),
        admin.list_keys,
        Operation("listKeys", "Every API key (no secrets)", Reply("200", "APIKeyList"), errors=ADMIN, auth="admin"),
    ),
    Endpoint(
        "/v1/admin/keys/{key_id}",
        ("DELETE",),
        admin.revoke_key,
        Operation(
            "revokeKey",
            "Revoke an API key",
            Reply("200", "APIKey"),
            params=(KEY_ID,),
            errors=(*ADMIN, "404"),
            auth="admin",
        ),
    ),
    Endpoint(
        "/v1/admin/keys/{key_id}/topup",
        ("POST",),
        admin.topup,
        Operation(
            "topUpKey",
            "Add to (or, negative, take from) a key's balance",
            Reply("200", "Balance"),
            body="TopUp",
            params=(KEY_ID,),
            errors=(*ADMIN, "400", "404", "413", "415"),
            auth="admin",
        ),
    ),
    Endpoint(
        "/v1/admin/keys/{key_id}/ledger",
        ("GET",),
        admin.ledger,
        Operation(
            "getKeyLedger",
            "A key's balance and latest ledger entries",
            Reply("200", "Ledger"),
            params=(KEY_ID, query("limit", {"type": "integer", "minimum": 1, "maximum": 1000})),
            errors=(*ADMIN, "400", "404"),
            auth="admin",
        ),
    ),
    Endpoint(
        "/v1/admin/keys/{key_id}/limits",
        ("PATCH", "POST"),
        admin.limits,
        Operation(
            "{method}KeyLimits",
            "Set a key's spend, rate and concurrency limits (null removes one, a missing field keeps it)",
            Reply("200", "Balance"),
            body="SetLimits",
            params=(KEY_ID,),
            errors=(*ADMIN, "400", "404", "413", "415"),
            auth="admin",
        ),
    ),
    Endpoint(
        "/v1/admin/accounts",
        ("GET",),
        admin.key_accounts,
        Operation(
            "listKeyAccounts",
            "Every API key with its balance, limits and jobs under way (no secrets)",
            Reply("200", "KeyAccountList"),
            errors=ADMIN,
            auth="admin",
        ),
    ),
    Endpoint(
        "/v1/admin/ledger",
        ("GET",),
        admin.ledger_entries,
        Operation(
            "listLedgerEntries",
            "Ledger entries of every key (or one), newest first (keyset pagination)",
            Reply("200", "LedgerPage"),
            params=(
                query("key_id", {"type": "string"}),
                query("kind", {"type": "string", "enum": ["topup", "hold", "release", "charge", "adjust"]}),
                *ADMIN_PAGE,
            ),
            errors=(*ADMIN, "400"),
            auth="admin",
        ),
    ),
    Endpoint(
        "/v1/admin/jobs",
        ("GET",),
        admin.jobs,
        Operation(
            "listAllJobs",
            "Jobs of every key (or one), newest first, with model, provider, status and cost (keyset pagination)",
            Reply("200", "JobPage"),
            params=(
                query("key_id", {"type": "string"}),
                query("status", {"type": "string"}),
                query("model", {"type": "string"}),
                query("provider", {"type": "string"}),
                *ADMIN_PAGE,
            ),
            errors=(*ADMIN, "400"),
            auth="admin",
        ),
    ),
    Endpoint(
        "/healthz",
        ("GET",),
        health.healthz,
        Operation("healthz", "Liveness (no I/O)", Reply("200", "Health"), auth=None),
        first=True,
    ),
    Endpoint(
        "/readyz",
        ("GET",),
        health.readyz,
        Operation("readyz", "Readiness: database and object store reachable", Reply("200", "Health"), auth=None),
        first=True,
    ),
    Endpoint("/metrics", ("GET",), health.metrics, Hidden("Prometheus text, for scrapers")),
    Endpoint("/openapi.json", ("GET",), openapi.openapi_json, Hidden("the document itself")),
    Endpoint("/docs", ("GET",), openapi.docs, Hidden("a page that renders the document")),
    Endpoint(f"{openai_compat.PREFIX}/videos", ("POST",), openai_compat.create_video, OPENAI),
    Endpoint(f"{openai_compat.PREFIX}/videos", ("GET",), openai_compat.list_videos, OPENAI),
    Endpoint(f"{openai_compat.PREFIX}/videos/edits", ("POST",), openai_compat.edit_video, OPENAI),
    Endpoint(f"{openai_compat.PREFIX}/videos/extensions", ("POST",), openai_compat.extend_video, OPENAI),
    Endpoint(f"{openai_compat.PREFIX}/videos/{{video_id}}/remix", ("POST",), openai_compat.remix_video, OPENAI),
    Endpoint(f"{openai_compat.PREFIX}/videos/{{video_id}}", ("GET",), openai_compat.retrieve_video, OPENAI),
    Endpoint(f"{openai_compat.PREFIX}/videos/{{video_id}}", ("DELETE",), openai_compat.delete_video, OPENAI),
    Endpoint(
        f"{openai_compat.PREFIX}/videos/{{video_id}}/content", ("GET", "HEAD"), openai_compat.video_content, OPENAI
    ),
    Endpoint("/", ("GET", "HEAD"), dashboard.index, Hidden("the web dashboard's page")),
    Files("/web", dashboard.Assets(directory=dashboard.WEB_DIR), "web", Hidden("the web dashboard's static files")),
)


VIDEOS, GENERATIONS = "/v1/videos", "/v1/video/generations"


def alias(entry: Endpoint) -> Endpoint:
    """``entry`` under ``/v1/video/generations``, documented as an alias of its path."""
    doc = entry.doc
    if isinstance(doc, Operation):
        doc = replace(doc, id=f"{doc.id}Alias", summary=f"{doc.summary} (alias of {entry.path})", alias_of=entry.path)
    return replace(entry, path=GENERATIONS + entry.path[len(VIDEOS) :], doc=doc)


ENDPOINTS += tuple(
    alias(e) for e in ENDPOINTS if isinstance(e, Endpoint) and (e.path == VIDEOS or e.path.startswith(VIDEOS + "/"))
)


def underscored(entry: Endpoint) -> Endpoint:
    """A webhook endpoint route under ``/v1/webhook_endpoints``, documented as an alias."""
    doc = entry.doc
    if isinstance(doc, Operation):
        doc = replace(doc, id=f"{doc.id}Alias", summary=f"{doc.summary} (alias of {entry.path})")
    return replace(entry, path="/v1/webhook_endpoints" + entry.path[len(WEBHOOK_ENDPOINTS) :], doc=doc)


ENDPOINTS += tuple(
    underscored(e) for e in ENDPOINTS if isinstance(e, Endpoint) and e.path.startswith(WEBHOOK_ENDPOINTS)
)


def operations() -> Iterator[tuple[str, str, Operation]]:
    """(path, lower-case method, operation) for every documented method; HEAD goes with GET."""
    for entry in ENDPOINTS:
        if isinstance(entry, Endpoint) and isinstance(entry.doc, Operation):
            for method in entry.methods:
                if method != "HEAD":
                    yield entry.path, method.lower(), entry.doc


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document of this table, built once."""
    return openapi.document(operations())


def starlette_routes() -> list[BaseRoute]:
    """The app's routes, in table order with the ``first`` ones ahead."""
    out: list[BaseRoute] = []
    for entry in sorted(ENDPOINTS, key=lambda e: not (isinstance(e, Endpoint) and e.first)):
        if isinstance(entry, Files):
            out.append(Mount(entry.path, app=entry.app, name=entry.name))
            continue
        if entry.websocket is not None:
            out.append(WebSocketRoute(entry.path, entry.websocket))
        out.append(Route(entry.path, entry.handler, methods=list(entry.methods)))
    return out
