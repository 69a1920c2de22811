"""``GET /v1/usage``: a key's own balance and spend by day and by model."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from vidgate.gateway.api.http import int_param, json_response, owner
from vidgate.gateway.billing import accounts
from vidgate.gateway.services import services


async def usage(request: Request) -> Response:
    who = await owner(request)
    days = int_param(request, "days", 30, 1, 366)
    return json_response(await accounts.usage(services(request).db, who, days))
