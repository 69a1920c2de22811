"""Admin routes, guarded by the admin key: API keys, balances, limits, and listings across keys."""

from __future__ import annotations

from typing import Annotated

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from vidgate.gateway.api import admin_lists
from vidgate.gateway.api.http import decode, int_param, json_response, read_body
from vidgate.gateway.billing import accounts
from vidgate.gateway.billing.pricing import micros
from vidgate.gateway.services import services

# Bounds keep every amount a 64-bit integer of micro-dollars in the database (a bigger one was a 500).
MAX_USD = 1e9
Dollars = Annotated[float, msgspec.Meta(ge=0, le=MAX_USD)]
Count = Annotated[int, msgspec.Meta(ge=0, le=1_000_000_000)]


class CreateKey(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    balance: Dollars | None = None


class TopUp(msgspec.Struct, forbid_unknown_fields=True):
    amount: Annotated[float, msgspec.Meta(ge=-MAX_USD, le=MAX_USD)]
    memo: str | None = None


class SetLimits(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Dollar limits in USD; ``null`` removes a limit, a missing field leaves it as it is."""

    daily_limit: Dollars | msgspec.UnsetType | None = msgspec.UNSET
    monthly_limit: Dollars | msgspec.UnsetType | None = msgspec.UNSET
    rate_per_second: Count | msgspec.UnsetType | None = msgspec.UNSET
    rate_burst: Count | msgspec.UnsetType | None = msgspec.UNSET
    max_concurrent_jobs: Count | msgspec.UnsetType | None = msgspec.UNSET


async def create_key(request: Request) -> Response:
    g = services(request)
    await g.keys.require_admin(request.headers.get("authorization"))
    body: CreateKey = decode(await read_body(request, 16 << 10), CreateKey)
    balance = g.settings.default_balance_micros if body.balance is None else micros(body.balance)
    return json_response(await g.keys.create(body.name, balance), 201)


async def list_keys(request: Request) -> Response:
    g = services(request)
    await g.keys.require_admin(request.headers.get("authorization"))
    return json_response({"object": "list", "data": await g.keys.list()})


async def revoke_key(request: Request) -> Response:
    g = services(request)
    await g.keys.require_admin(request.headers.get("authorization"))
    return json_response(await g.keys.revoke(request.path_params["key_id"]))


async def topup(request: Request) -> Response:
    g = services(request)
    await g.keys.require_admin(request.headers.get("authorization"))
    body: TopUp = decode(await read_body(request, 16 << 10), TopUp)
    return json_response(await accounts.topup(g.db, request.path_params["key_id"], micros(body.amount), body.memo))


async def ledger(request: Request) -> Response:
    g = services(request)
    await g.keys.require_admin(request.headers.get("authorization"))
    owner = request.path_params["key_id"]
    balance = accounts.balance_view(await accounts.account(g.db, owner))
    limit = int_param(request, "limit", 100, 1, 1000)
    return json_response({**balance, "entries": await accounts.entries(g.db, owner, limit)})


async def limits(request: Request) -> Response:
    g = services(request)
    await g.keys.require_admin(request.headers.get("authorization"))
    body: SetLimits = decode(await read_body(request, 16 << 10), SetLimits)
    values = {f: getattr(body, f) for f in SetLimits.__struct_fields__ if getattr(body, f) is not msgspec.UNSET}
    for money in ("daily_limit", "monthly_limit"):
        if values.get(money) is not None:
            values[money] = micros(values[money])
    return json_response(await accounts.set_limits(g.db, request.path_params["key_id"], values))


async def key_accounts(request: Request) -> Response:
    g = services(request)
    await g.keys.require_admin(request.headers.get("authorization"))
    return json_response(await admin_lists.key_accounts(g.db))


async def ledger_entries(request: Request) -> Response:
    g = services(request)
    await g.keys.require_admin(request.headers.get("authorization"))
    q = request.query_params
    page = await admin_lists.ledger_page(
        g.db,
        key_id=q.get("key_id"),
        kind=q.get("kind"),
        limit=int_param(request, "limit", 50, 1, 500),
        after=q.get("after"),
    )
    return json_response(page)


async def jobs(request: Request) -> Response:
    g = services(request)
    await g.keys.require_admin(request.headers.get("authorization"))
    q = request.query_params
    page = await admin_lists.job_page(
        g.db,
        key_id=q.get("key_id"),
        status=q.get("status"),
        model=q.get("model"),
        provider=q.get("provider"),
        limit=int_param(request, "limit", 50, 1, 500),
        after=q.get("after"),
    )
    return json_response(page)
