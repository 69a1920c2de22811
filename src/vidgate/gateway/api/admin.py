"""Admin routes, guarded by the admin key: API keys and balances."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vidgate.gateway.api.http import decode, json_response, read_body
from vidgate.gateway.billing.pricing import micros


class CreateKey(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    balance: float | None = None


async def create_key(request: Request) -> Response:
    g = request.app.state.gateway
    await g.keys.require_admin(request.headers.get("authorization"))
    body: CreateKey = decode(await read_body(request, 16 << 10), CreateKey)
    balance = g.settings.default_balance_micros if body.balance is None else micros(body.balance)
    return json_response(await g.keys.create(body.name, balance), 201)


async def list_keys(request: Request) -> Response:
    g = request.app.state.gateway
    await g.keys.require_admin(request.headers.get("authorization"))
    return json_response({"object": "list", "data": await g.keys.list()})


async def revoke_key(request: Request) -> Response:
    g = request.app.state.gateway
    await g.keys.require_admin(request.headers.get("authorization"))
    return json_response(await g.keys.revoke(request.path_params["key_id"]))


routes = [
    Route("/v1/admin/keys", create_key, methods=["POST"]),
    Route("/v1/admin/keys", list_keys, methods=["GET"]),
    Route("/v1/admin/keys/{key_id}", revoke_key, methods=["DELETE"]),
]
