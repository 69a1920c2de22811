"""The job state machine: a pure function of (status, happening) to the next step.

Statuses only move forward and a terminal status is never overwritten: any happening not in the
table (a late upstream answer for a cancelled job, a second "done") yields ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Happening = Literal["accepted", "done", "failed", "cancel", "deadline", "retention"]
LedgerAction = Literal["settle", "void"] | None

LIVE = ("queued", "processing")
TERMINAL = frozenset({"completed", "failed", "cancelled", "expired"})


@dataclass(frozen=True, slots=True)
class Step:
    status: str
    ledger: LedgerAction
    event: str  # the webhook event type this step emits


_TABLE: dict[tuple[str, Happening], Step] = {
    ("queued", "accepted"): Step("processing", None, "video.status_changed"),
    ("queued", "failed"): Step("failed", "void", "video.failed"),
    ("queued", "cancel"): Step("cancelled", "void", "video.cancelled"),
    ("queued", "deadline"): Step("expired", "void", "video.expired"),
    ("processing", "done"): Step("completed", "settle", "video.completed"),
    ("processing", "failed"): Step("failed", "void", "video.failed"),
    ("processing", "cancel"): Step("cancelled", "void", "video.cancelled"),
    ("processing", "deadline"): Step("expired", "void", "video.expired"),
    ("completed", "retention"): Step("expired", None, "video.expired"),
}


def advance(status: str, happening: Happening) -> Step | None:
    return _TABLE.get((status, happening))


def sources(happening: Happening) -> tuple[str, ...]:
    """The statuses from which ``happening`` moves a job, for the guarded UPDATE."""
    return tuple(s for (s, h) in _TABLE if h == happening)


def is_terminal(status: str) -> bool:
    return status in TERMINAL
