"""Check the ledger's invariants straight from the database."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def check_sqlite(db_path: Path) -> dict[str, int]:
    """balance = sum(topup, charge, adjust); held = sum(hold, release); available >= 0; once per job."""
    conn = sqlite3.connect(db_path)
    try:
        accounts = conn.execute("SELECT owner_id, balance, held FROM accounts").fetchall()
        for owner, balance, held in accounts:
            (entries,) = conn.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM ledger "
                "WHERE owner_id = ? AND kind IN ('topup','charge','adjust')",
                (owner,),
            ).fetchone()
            (holds,) = conn.execute(
                "SELECT COALESCE(SUM(amount), 0) FROM ledger WHERE owner_id = ? AND kind IN ('hold','release')",
                (owner,),
            ).fetchone()
            assert balance == entries, (owner, balance, entries)
            assert held == holds, (owner, held, holds)
            assert balance - held >= 0 and balance >= 0, (owner, balance, held)
        dupes = conn.execute(
            "SELECT job_id, kind, COUNT(*) FROM ledger WHERE job_id IS NOT NULL "
            "GROUP BY job_id, kind HAVING COUNT(*) > 1"
        ).fetchall()
        assert dupes == [], dupes
        live = conn.execute(
            "SELECT j.id, j.status, j.billing_state FROM jobs j WHERE "
            "(j.status IN ('queued','processing') AND j.billing_state NOT IN ('held','none')) OR "
            "(j.status IN ('completed') AND j.billing_state NOT IN ('settled','none')) OR "
            "(j.status IN ('failed','cancelled') AND j.billing_state NOT IN ('void','none'))"
        ).fetchall()
        assert live == [], live
        return {"accounts": len(accounts)}
    finally:
        conn.close()
