"""What the admin pages list across every key: keys with their accounts, ledger entries and jobs.

Ledger entries and jobs come newest first in keyset pages (``after`` is the last id of the page
before), so a deep page costs what the first does. A query is compiled once per filter set.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from vidgate.errors import ValidationError
from vidgate.gateway.billing.pricing import usd
from vidgate.gateway.jobs.records import StoredError
from vidgate.gateway.jobs.service import STATUS_ALIASES
from vidgate.gateway.storage.db import Database, Q, Row

LEDGER_KINDS = ("topup", "hold", "release", "charge", "adjust")


class KeyLimits(msgspec.Struct):
    """A key's limits as set (``null``: none set; the gateway's defaults may still apply)."""

    daily_limit: float | None
    monthly_limit: float | None
    rate_per_second: float | None
    rate_burst: int | None
    max_concurrent_jobs: int | None


class KeyAccount(msgspec.Struct):
    """An API key (never its secret) with its account: funds, limits and jobs under way."""

    id: str
    name: str
    prefix: str
    created_at: int
    revoked_at: int | None
    balance: float
    held: float
    available: float
    limits: KeyLimits
    live_jobs: int
    object: str = "key_account"


class KeyAccountList(msgspec.Struct):
    data: list[KeyAccount]
    object: str = "list"


class LedgerLine(msgspec.Struct):
    """One ledger entry of any key; ``amount`` in USD (negative takes from the balance or the hold)."""

    id: str
    key_id: str
    job_id: str | None
    kind: Literal["topup", "hold", "release", "charge", "adjust"]
    amount: float
    model: str | None
    created_at: int
    memo: str | None


class LedgerPage(msgspec.Struct):
    data: list[LedgerLine]
    has_more: bool
    last_id: str | None
    object: str = "list"


class JobLine(msgspec.Struct):
    """One job of any key as the request log shows it; ``cost`` is the charge once settled, the amount
    held while held, and 0 for a hold voided (failed, cancelled) or a job that held nothing."""

    id: str
    key_id: str
    model: str
    provider: str | None
    status: str
    billing_state: str
    cost: float
    created_at: int
    completed_at: int | None
    error_code: str | None
    error_message: str | None
    is_byok: bool


class JobPage(msgspec.Struct):
    data: list[JobLine]
    has_more: bool
    first_id: str | None
    last_id: str | None
    object: str = "list"


_ACCOUNTS = Q(
    "SELECT k.id, k.name, k.prefix, k.created_at, k.revoked_at, a.balance, a.held, a.daily_limit, a.monthly_limit, "
    "a.rate_per_second, a.rate_burst, a.max_concurrent_jobs FROM api_keys k "
    "LEFT JOIN accounts a ON a.owner_id = k.owner_id ORDER BY k.id DESC"
)
_LIVE_BY_OWNER = Q(
    "SELECT owner_id, COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'processing') GROUP BY owner_id"
)
_compiled: dict[tuple[str, tuple[str, ...], bool], Q] = {}


def _query(kind: str, filters: tuple[str, ...], cursor: bool) -> Q:
    """The page query of ``kind`` for these equality filters, compiled on first use."""
    key = (kind, filters, cursor)
    if key not in _compiled:
        where = [f"{f} = :{f}" for f in filters]
        if kind == "ledger":
            if cursor:  # the order is (created_at, id): entries of one transaction share a millisecond
                where.append("(created_at, id) < (SELECT created_at, id FROM ledger WHERE id = :after)")
            sql = (
                "SELECT id, owner_id, job_id, kind, amount, model, created_at, memo FROM ledger"
                f"{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY created_at DESC, id DESC LIMIT :limit"
            )
        else:
            if cursor:
                where.append("id < :after")
            sql = (
                "SELECT id, owner_id, model, provider, status, billing_state, quote, cost, created_at, completed_at, "
                f"error, is_byok FROM jobs{' WHERE ' + ' AND '.join(where) if where else ''} "
                "ORDER BY id DESC LIMIT :limit"
            )
        _compiled[key] = Q(sql)
    return _compiled[key]


def _seconds(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def _money(micros: int | None) -> float | None:
    return None if micros is None else usd(micros)


async def key_accounts(db: Database) -> KeyAccountList:
    rows = await db.fetchall(_ACCOUNTS)
    live = {r["owner_id"]: int(r["n"]) for r in await db.fetchall(_LIVE_BY_OWNER)}
    return KeyAccountList([_key_account(r, live.get(r["id"], 0)) for r in rows])


def _key_account(r: Row, live_jobs: int) -> KeyAccount:
    balance, held = r["balance"] or 0, r["held"] or 0
    return KeyAccount(
        id=r["id"],
        name=r["name"],
        prefix=r["prefix"],
        created_at=r["created_at"] // 1000,
        revoked_at=_seconds(r["revoked_at"]),
        balance=usd(balance),
        held=usd(held),
        available=usd(balance - held),
        limits=KeyLimits(
            daily_limit=_money(r["daily_limit"]),
            monthly_limit=_money(r["monthly_limit"]),
            rate_per_second=r["rate_per_second"],
            rate_burst=r["rate_burst"],
            max_concurrent_jobs=r["max_concurrent_jobs"],
        ),
        live_jobs=live_jobs,
    )


def _filters(values: dict[str, str | None]) -> tuple[tuple[str, ...], dict[str, Any]]:
    present = {k: v for k, v in values.items() if v}
    return tuple(sorted(present)), present


async def ledger_page(
    db: Database, *, key_id: str | None, kind: str | None, limit: int, after: str | None
) -> LedgerPage:
    if kind is not None and kind not in LEDGER_KINDS:
        raise ValidationError(f"unknown ledger kind {kind!r}; use {', '.join(LEDGER_KINDS)}", param="kind")
    names, params = _filters({"owner_id": key_id, "kind": kind})
    rows = await db.fetchall(_query("ledger", names, bool(after)), {**params, "after": after, "limit": limit + 1})
    data = [
        LedgerLine(
            id=r["id"],
            key_id=r["owner_id"],
            job_id=r["job_id"],
            kind=r["kind"],
            amount=usd(r["amount"]),
            model=r["model"],
            created_at=r["created_at"] // 1000,
            memo=r["memo"],
        )
        for r in rows[:limit]
    ]
    return LedgerPage(data=data, has_more=len(rows) > limit, last_id=data[-1].id if data else None)


async def job_page(
    db: Database,
    *,
    key_id: str | None,
    status: str | None,
    model: str | None,
    provider: str | None,
    limit: int,
    after: str | None,
) -> JobPage:
    if status:
        if status.lower() not in STATUS_ALIASES:
            raise ValidationError(f"unknown status {status!r}; use {', '.join(sorted(STATUS_ALIASES))}", param="status")
        status = STATUS_ALIASES[status.lower()]
    names, params = _filters({"owner_id": key_id, "status": status, "model": model, "provider": provider})
    rows = await db.fetchall(_query("jobs", names, bool(after)), {**params, "after": after, "limit": limit + 1})
    data = [_job_line(r) for r in rows[:limit]]
    return JobPage(
        data=data,
        has_more=len(rows) > limit,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )


_ERROR = msgspec.json.Decoder(StoredError)


def _job_line(r: Row) -> JobLine:
    error = _ERROR.decode(r["error"]) if r["error"] else None
    state = r["billing_state"]
    charged = r["cost"] if state == "settled" else r["quote"] if state == "held" else 0
    return JobLine(
        id=r["id"],
        key_id=r["owner_id"],
        model=r["model"],
        provider=r["provider"],
        status=r["status"],
        billing_state=r["billing_state"],
        cost=usd(charged or 0),
        created_at=r["created_at"] // 1000,
        completed_at=_seconds(r["completed_at"]),
        error_code=error.code if error else None,
        error_message=error.message if error else None,
        is_byok=bool(r["is_byok"]),
    )
