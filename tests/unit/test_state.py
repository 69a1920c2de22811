"""The state machine: statuses only move forward, terminal is final, the ledger acts once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vidgate.gateway.jobs import state

HAPPENINGS = ["accepted", "done", "failed", "cancel", "deadline", "retention"]
ORDER = {"queued": 0, "processing": 1, "completed": 2, "failed": 2, "cancelled": 2, "expired": 3}


@given(st.lists(st.sampled_from(HAPPENINGS), max_size=30))
def test_any_sequence_moves_forward_and_acts_on_the_ledger_at_most_once(happenings: list[str]) -> None:
    status, ledger_actions = "queued", []
    for h in happenings:
        step = state.advance(status, h)  # type: ignore[arg-type]
        if step is None:
            continue
        assert ORDER[step.status] > ORDER[status] or (status == "completed" and step.status == "expired")
        if step.ledger:
            ledger_actions.append(step.ledger)
        status = step.status
    assert len(ledger_actions) <= 1


def test_terminal_statuses_accept_nothing_but_retention() -> None:
    for status in ("failed", "cancelled", "expired"):
        assert all(state.advance(status, h) is None for h in HAPPENINGS)  # type: ignore[arg-type]
    assert state.advance("completed", "retention").status == "expired"  # type: ignore[union-attr]
    assert state.advance("completed", "done") is None
    assert state.advance("completed", "cancel") is None


def test_the_table() -> None:
    assert state.advance("queued", "accepted").status == "processing"  # type: ignore[union-attr]
    assert state.advance("processing", "done").ledger == "settle"  # type: ignore[union-attr]
    for h in ("failed", "cancel", "deadline"):
        assert state.advance("processing", h).ledger == "void"  # type: ignore[arg-type,union-attr]
        assert state.advance("queued", h).ledger == "void"  # type: ignore[arg-type,union-attr]
    assert state.sources("done") == ("processing",)
    assert set(state.sources("cancel")) == {"queued", "processing"}
