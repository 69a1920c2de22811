"""Check the ledger's invariants straight from the database, on either backend."""

from __future__ import annotations

from helpers.backends import rows
from helpers.gateway import GatewayProcess


def check_ledger(gw: GatewayProcess) -> dict[str, int]:
    """balance = sum(topup, charge, adjust); held = sum(hold, release); available >= 0; once per job."""
    # One statement, so one consistent snapshot even while the gateway settles jobs.
    accounts = rows(
        gw,
        "SELECT a.owner_id, a.balance, a.held, "
        "CAST(COALESCE(SUM(CASE WHEN l.kind IN ('topup','charge','adjust') THEN l.amount END), 0) AS BIGINT), "
        "CAST(COALESCE(SUM(CASE WHEN l.kind IN ('hold','release') THEN l.amount END), 0) AS BIGINT) "
        "FROM accounts a LEFT JOIN ledger l ON l.owner_id = a.owner_id GROUP BY a.owner_id, a.balance, a.held",
    )
    for owner, balance, held, entries, holds in accounts:
        assert balance == entries, (owner, balance, entries)
        assert held == holds, (owner, held, holds)
        assert balance - held >= 0 and balance >= 0, (owner, balance, held)
    dupes = rows(
        gw,
        "SELECT job_id, kind, COUNT(*) FROM ledger WHERE job_id IS NOT NULL GROUP BY job_id, kind HAVING COUNT(*) > 1",
    )
    assert dupes == [], dupes
    wrong = rows(
        gw,
        "SELECT id, status, billing_state FROM jobs WHERE "
        "(status IN ('queued','processing') AND billing_state NOT IN ('held','none')) OR "
        "(status = 'completed' AND billing_state NOT IN ('settled','none')) OR "
        "(status IN ('failed','cancelled') AND billing_state NOT IN ('void','none'))",
    )
    assert wrong == [], wrong
    return {"accounts": len(accounts)}
