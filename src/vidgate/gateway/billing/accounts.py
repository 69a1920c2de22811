"""Accounts: balances, ledger listings, limits and usage. Every write goes through the ledger."""

from __future__ import annotations

from typing import Any

from vidgate.errors import NotFoundError, RateLimitError, SpendLimitExceededError, ValidationError
from vidgate.gateway.billing import ledger
from vidgate.gateway.billing.limits import day_start, month_start, next_day, next_month
from vidgate.gateway.billing.pricing import usd
from vidgate.gateway.ids import now_ms
from vidgate.gateway.storage.db import Database, Q, Tx

_ACCOUNT = Q("SELECT * FROM accounts WHERE owner_id = :owner")
_ENTRIES = Q(
    "SELECT id, job_id, kind, amount, model, created_at, memo FROM ledger WHERE owner_id = :owner "
    "ORDER BY created_at DESC, id DESC LIMIT :limit"
)
_SPENT_SINCE = Q(
    "SELECT CAST(COALESCE(-SUM(amount), 0) AS BIGINT) AS spent FROM ledger "
    "WHERE owner_id = :owner AND kind = 'charge' AND created_at >= :since"
)
_LIVE_JOBS = Q("SELECT COUNT(*) AS n FROM jobs WHERE owner_id = :owner AND status IN ('queued', 'processing')")
_BY_DAY = Q(
    "SELECT created_at / 86400000 AS day, CAST(COALESCE(-SUM(amount), 0) AS BIGINT) AS cost, COUNT(*) AS jobs "
    "FROM ledger WHERE owner_id = :owner AND kind = 'charge' AND created_at >= :since "
    "GROUP BY created_at / 86400000 ORDER BY day"
)
_BY_MODEL = Q(
    "SELECT model, CAST(COALESCE(-SUM(amount), 0) AS BIGINT) AS cost, COUNT(*) AS jobs FROM ledger "
    "WHERE owner_id = :owner AND kind = 'charge' AND created_at >= :since GROUP BY model ORDER BY cost DESC"
)
LIMIT_FIELDS = ("daily_limit", "monthly_limit", "rate_per_second", "rate_burst", "max_concurrent_jobs")


async def account(db: Database | Tx, owner: str) -> dict[str, Any]:
    row = await db.fetchone(_ACCOUNT, {"owner": owner})
    if row is None:
        raise NotFoundError(f"no account {owner}")
    return dict(row)


def balance_view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "balance",
        "owner": row["owner_id"],
        "currency": "USD",
        "balance": usd(row["balance"]),
        "held": usd(row["held"]),
        "available": usd(row["balance"] - row["held"]),
        "limits": {
            "daily_limit": None if row["daily_limit"] is None else usd(row["daily_limit"]),
            "monthly_limit": None if row["monthly_limit"] is None else usd(row["monthly_limit"]),
            "rate_per_second": row["rate_per_second"],
            "rate_burst": row["rate_burst"],
            "max_concurrent_jobs": row["max_concurrent_jobs"],
        },
    }


async def check_limits(tx: Tx, owner: str, quote: int, *, default_concurrency: int = 0) -> None:
    """Raise 429 (too many live jobs) or 402 ``spend_limit_exceeded``; runs in the create transaction."""
    now = now_ms()
    acct = await tx.fetchone(_ACCOUNT, {"owner": owner})
    if acct is None:
        return
    cap = acct["max_concurrent_jobs"] or default_concurrency
    if cap:
        row = await tx.fetchone(_LIVE_JOBS, {"owner": owner})
        # The count includes the job this transaction is creating.
        if row is not None and row["n"] > cap:
            raise RateLimitError(
                f"this key already has {row['n'] - 1} jobs queued or running (limit {cap}); retry when one finishes",
                headers={"Retry-After": "5"},
                details={"limit": "concurrent_jobs"},
            )
    held = acct["held"]
    for name, limit, window in (
        ("daily", acct["daily_limit"], (day_start, next_day)),
        ("monthly", acct["monthly_limit"], (month_start, next_month)),
    ):
        if not limit:
            continue  # most keys have no spend limit: no calendar arithmetic for them
        since, resets = window[0](now), window[1](now)
        row = await tx.fetchone(_SPENT_SINCE, {"owner": owner, "since": since})
        spent = row["spent"] if row else 0
        if spent + held + quote > limit:
            wait = max(1, int(resets.timestamp() - now / 1000))
            raise SpendLimitExceededError(
                f"the {name} spend limit of ${usd(limit):.2f} would be passed (${usd(spent):.4f} spent, "
                f"${usd(held):.4f} held, this job needs ${usd(quote):.4f}); it resets at {resets.isoformat()}",
                details={"limit": name, "resets_at": resets.isoformat()},
                headers={"Retry-After": str(wait)},
            )


async def topup(db: Database, owner: str, amount: int, memo: str | None = None) -> dict[str, Any]:
    if amount == 0:
        raise ValidationError("amount must not be zero", param="amount")
    async with db.transaction() as tx:
        row = await account(tx, owner)
        if row["balance"] + amount - row["held"] < 0:
            raise ValidationError("this adjustment would make the available balance negative", param="amount")
        await ledger.topup(tx, owner, amount, memo)
        return balance_view(await account(tx, owner))


async def set_limits(db: Database, owner: str, values: dict[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(LIMIT_FIELDS)
    if unknown:
        raise ValidationError(f"unknown limit {sorted(unknown)[0]}", param=sorted(unknown)[0])
    async with db.transaction() as tx:
        await account(tx, owner)
        sets = ", ".join(f"{k} = :{k}" for k in sorted(values))
        if sets:
            await tx.execute(Q(f"UPDATE accounts SET {sets} WHERE owner_id = :owner"), {**values, "owner": owner})
        return balance_view(await account(tx, owner))


async def entries(db: Database, owner: str, limit: int = 100) -> list[dict[str, Any]]:
    rows = await db.fetchall(_ENTRIES, {"owner": owner, "limit": limit})
    return [{**dict(r), "amount": usd(r["amount"]), "created_at": r["created_at"] // 1000} for r in rows]


async def usage(db: Database, owner: str, days: int) -> dict[str, Any]:
    since = day_start(now_ms()) - (days - 1) * 86_400_000
    by_day = await db.fetchall(_BY_DAY, {"owner": owner, "since": since})
    by_model = await db.fetchall(_BY_MODEL, {"owner": owner, "since": since})
    from datetime import UTC, datetime

    return {
        "object": "usage",
        "currency": "USD",
        "days": days,
        **{k: v for k, v in balance_view(await account(db, owner)).items() if k in ("balance", "held", "available")},
        "by_day": [
            {
                "date": datetime.fromtimestamp(int(r["day"]) * 86400, UTC).date().isoformat(),
                "cost": usd(r["cost"]),
                "jobs": r["jobs"],
            }
            for r in by_day
        ],
        "by_model": [{"model": r["model"], "cost": usd(r["cost"]), "jobs": r["jobs"]} for r in by_model],
    }
