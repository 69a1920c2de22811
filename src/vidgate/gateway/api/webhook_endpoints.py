"""``/v1/webhook-endpoints`` (also ``/v1/webhook_endpoints``): receivers registered once per key.

Thin adapters onto ``events.webhook_endpoints``; a signing secret appears in the answers to create
and rotate-secret only.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vidgate.errors import ValidationError
from vidgate.gateway.api.http import decode, json_response, owner, read_body
from vidgate.gateway.events.webhook_endpoints import Endpoints
from vidgate.gateway.events.webhook_send import send_test
from vidgate.gateway.services import Gateway, services
from vidgate.types import (
    WebhookEndpointCreate,
    WebhookEndpointDeleted,
    WebhookEndpointList,
    WebhookEndpointUpdate,
    WebhookSecretRotation,
)

MAX_BODY = 64 << 10  # room for the longest URL, name and event list the schema allows, all escaped


def _endpoints(g: Gateway) -> Endpoints:
    return Endpoints(g.db, g.settings.secret_box, allow_http=g.settings.allow_private_urls)


async def _optional_body(request: Request) -> bytes:
    """A body that may be left out (the SDK sends none unless given one), JSON when it is there."""
    body = await read_body(request, MAX_BODY, json=False)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if body.strip() and ctype not in ("application/json", ""):
        raise ValidationError("send the body as application/json", param="Content-Type")
    return body


async def create_endpoint(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    req: WebhookEndpointCreate = decode(await read_body(request, MAX_BODY), WebhookEndpointCreate)
    endpoint, secret = await _endpoints(g).create(who, req)
    return json_response(endpoint.with_secret(secret), 201)


async def list_endpoints(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    return json_response(WebhookEndpointList(data=[e.public() for e in await _endpoints(g).for_owner(who)]))


async def get_endpoint(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    return json_response((await _endpoints(g).get(who, request.path_params["endpoint_id"])).public())


async def update_endpoint(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    req: WebhookEndpointUpdate = decode(await read_body(request, MAX_BODY), WebhookEndpointUpdate)
    return json_response((await _endpoints(g).update(who, request.path_params["endpoint_id"], req)).public())


async def delete_endpoint(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    endpoint = await _endpoints(g).delete(who, request.path_params["endpoint_id"])
    return json_response(WebhookEndpointDeleted(id=endpoint.id))


async def rotate_secret(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    opts: WebhookSecretRotation = decode(await _optional_body(request), WebhookSecretRotation)
    endpoint, secret = await _endpoints(g).rotate(who, request.path_params["endpoint_id"], opts.overlap_seconds)
    return json_response(endpoint.with_secret(secret))


async def test_endpoint(request: Request) -> Response:
    """Send a signed ``webhook.test`` event to the endpoint now and answer what it met."""
    g = services(request)
    who = await owner(request)
    await _optional_body(request)
    endpoints = _endpoints(g)
    endpoint = await endpoints.get(who, request.path_params["endpoint_id"])
    return json_response(await send_test(g.settings, endpoints, endpoint))
