"""The admin routes of the route table: API keys, their balances and limits, and every key's ledger and jobs.

``routes.py`` places them in the table; they answer the admin key only (``auth="admin"``).
"""

from __future__ import annotations

from vidgate.gateway.api import admin
from vidgate.gateway.api.endpoint import Endpoint
from vidgate.gateway.api.openapi import ADMIN, Operation, Reply, query
from vidgate.gateway.api.route_params import ADMIN_PAGE, KEY_ID

ADMIN_ENDPOINTS: tuple[Endpoint, ...] = (
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
)
