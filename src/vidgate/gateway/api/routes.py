"""The one route table: every path the app serves, its handler, and what the OpenAPI document says of it.

The app's Starlette routes (``starlette_routes``) and the document's ``paths`` (``operations``) are
both built from ``ENDPOINTS`` (see ``endpoint``), so a route cannot be served and left out of the
document, or the other way round, unless its entry says it is ``Hidden`` and why. The table is in the
document's order; routes are matched in the same order, except those marked ``first``. The admin
routes are kept in ``admin_routes``; the parameters several routes share, in ``route_params``.

Every ``/v1/videos`` route is also served under ``/v1/video/generations``, the reference's other
spelling, and documented there as an alias (``route_aliases``).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

from starlette.routing import BaseRoute

from vidgate.gateway.api import (
    dashboard,
    deliveries,
    events,
    file_download,
    files,
    health,
    job_request,
    models,
    openai_compat,
    openapi,
    poll,
    quote,
    usage,
    videos,
    webhook_endpoints,
)
from vidgate.gateway.api.admin_routes import ADMIN_ENDPOINTS
from vidgate.gateway.api.endpoint import Endpoint, Files, table_operations, table_routes
from vidgate.gateway.api.openapi import KEYED, Hidden, Operation, Reply, header, path_param, query
from vidgate.gateway.api.route_aliases import WEBHOOK_ENDPOINTS, with_aliases
from vidgate.gateway.api.route_params import (
    CREATE_EXAMPLE,
    ENDPOINT_ID,
    FILE_ID,
    IF_NONE_MATCH,
    INDEX,
    LONG_POLL_WAIT,
    OPENAI,
    RANGE,
    VARIANT,
    VARIANT_TYPES,
    VIDEO,
    VIDEO_ID,
)

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
        "/v1/videos/{video_id}/request",
        ("GET",),
        job_request.get_video_request,
        Operation(
            "getVideoRequest",
            "What a video job was created with, defaults filled in (no secrets; data: inputs by type and size); "
            "the owner's key, or the admin key for any job",
            Reply("200", "VideoRequest"),
            params=(VIDEO_ID,),
            errors=(*KEYED, "404"),
        ),
    ),
    Endpoint(
        "/v1/videos/{video_id}/content",
        ("GET", "HEAD"),
        videos.video_content,
        Operation(
            "getVideoContent",
            "The output bytes (Range supported), or its poster frame or spritesheet (variant); where the "
            "operator turned content redirects on (an S3 store), a 307 to a short-lived presigned URL instead",
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
    file_download.ENDPOINT,
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
    *ADMIN_ENDPOINTS,
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
ENDPOINTS = with_aliases(ENDPOINTS)


def operations() -> Iterator[tuple[str, str, Operation]]:
    """(path, lower-case method, operation) for every documented method; HEAD goes with GET."""
    return table_operations(ENDPOINTS)


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document of this table, built once."""
    return openapi.document(operations())


def starlette_routes() -> list[BaseRoute]:
    """The app's routes, in table order with the ``first`` ones ahead."""
    return table_routes(ENDPOINTS)
