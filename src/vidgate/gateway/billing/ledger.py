"""The ledger: every balance change is an entry, written in the caller's transaction.

Invariants, checked by tests after every run: an account's ``balance`` equals the sum of its
topup, charge and adjust entries; ``held`` equals the sum of its hold and release entries;
``balance - held`` is never negative. A job's hold, charge and release are unique per job, so
settle and void happen exactly once whatever retries a crash causes.
"""

from __future__ import annotations

from vidgate.errors import InsufficientFundsError
from vidgate.gateway.ids import new_id, now_ms
from vidgate.gateway.storage.db import Q, Tx

_OPEN = Q(
    "INSERT INTO accounts (owner_id, balance, held, created_at) VALUES (:owner, 0, 0, :now) "
    "ON CONFLICT (owner_id) DO NOTHING"
)
_ENTRY = Q(
    "INSERT INTO ledger (id, owner_id, job_id, kind, amount, model, created_at, memo) "
    "VALUES (:id, :owner, :job, :kind, :amount, :model, :now, :memo) ON CONFLICT DO NOTHING"
)
_CREDIT = Q("UPDATE accounts SET balance = balance + :amount WHERE owner_id = :owner")
_HOLD = Q("UPDATE accounts SET held = held + :amount WHERE owner_id = :owner AND balance - held >= :amount")
_UNHOLD = Q("UPDATE accounts SET held = held - :amount WHERE owner_id = :owner")
_CHARGE = Q("UPDATE accounts SET balance = balance - :amount, held = held - :held WHERE owner_id = :owner")
_AVAILABLE = Q("SELECT balance, held FROM accounts WHERE owner_id = :owner")


async def _entry(
    tx: Tx, owner: str, job: str | None, kind: str, amount: int, model: str | None, memo: str | None
) -> bool:
    inserted = await tx.execute(
        _ENTRY,
        {
            "id": new_id("led"),
            "owner": owner,
            "job": job,
            "kind": kind,
            "amount": amount,
            "model": model,
            "now": now_ms(),
            "memo": memo,
        },
    )
    return inserted == 1


async def open_account(tx: Tx, owner: str, initial: int = 0) -> None:
    await tx.execute(_OPEN, {"owner": owner, "now": now_ms()})
    if initial:
        await topup(tx, owner, initial, memo="initial balance")


async def topup(tx: Tx, owner: str, amount: int, memo: str | None = None) -> None:
    await _entry(tx, owner, None, "topup" if amount >= 0 else "adjust", amount, None, memo)
    await tx.execute(_CREDIT, {"owner": owner, "amount": amount})


async def hold(tx: Tx, owner: str, job: str, amount: int, model: str) -> None:
    """Reserve ``amount`` for ``job``; raises 402 when the available balance is short."""
    if amount <= 0:
        return
    if await tx.execute(_HOLD, {"owner": owner, "amount": amount}) != 1:
        row = await tx.fetchone(_AVAILABLE, {"owner": owner})
        available = (row["balance"] - row["held"]) if row else 0
        raise InsufficientFundsError(
            f"this job costs ${amount / 1e6:.4f} and the available balance is ${available / 1e6:.4f}",
            details={"required": amount / 1e6, "available": available / 1e6},
        )
    await _entry(tx, owner, job, "hold", amount, model, None)


async def settle(tx: Tx, owner: str, job: str, held: int, cost: int, model: str) -> bool:
    """Charge ``cost`` and release the whole hold, once; False when already settled or voided."""
    if not await _entry(tx, owner, job, "release", -held, model, "settled"):
        return False
    await _entry(tx, owner, job, "charge", -cost, model, None)
    await tx.execute(_CHARGE, {"owner": owner, "amount": cost, "held": held})
    return True


async def void(tx: Tx, owner: str, job: str, held: int, model: str, reason: str) -> bool:
    """Release the hold without charging, once."""
    if not await _entry(tx, owner, job, "release", -held, model, reason):
        return False
    await tx.execute(_UNHOLD, {"owner": owner, "amount": held})
    return True
