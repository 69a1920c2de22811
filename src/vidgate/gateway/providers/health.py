"""Provider health: a circuit breaker per provider, kept as one record that every process shares. Pure.

Each worker notes what its upstream calls did (``Outcomes``) and now and then folds them into the
shared record (``merge``): consecutive failures add up across workers, and enough of them in a row
open the circuit for a cooldown, so routing everywhere passes the provider over until then; a
success anywhere closes it. Times are epoch milliseconds, the same on every process.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from vidgate.gateway.providers.base import ProviderError, Rejected

State = Literal["healthy", "failing", "open"]


class HealthRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One provider's shared health. ``last_error`` names the error's class, never what it said."""

    provider: str
    failures: int = 0
    last_error: str | None = None
    last_success_at: int | None = None
    last_failure_at: int | None = None
    open_until: int = 0
    updated_at: int = 0

    def is_open(self, now: int) -> bool:
        return self.open_until > now

    def state(self, now: int) -> State:
        if self.is_open(now):
            return "open"
        return "failing" if self.failures else "healthy"


class Outcomes(msgspec.Struct, kw_only=True):
    """What one process saw of a provider's calls since it last wrote them to the shared record."""

    failures: int = 0  # in a row, after the last success seen here
    succeeded: bool = False
    last_error: str | None = None
    last_success_at: int | None = None
    last_failure_at: int | None = None

    def add(self, ok: bool, now: int, error: str | None = None) -> None:
        if ok:
            self.failures, self.succeeded, self.last_success_at = 0, True, now
        else:
            self.failures += 1
            self.last_error, self.last_failure_at = error, now

    def then(self, later: Outcomes) -> Outcomes:
        """These outcomes followed by ``later``'s, as one."""
        return Outcomes(
            failures=later.failures if later.succeeded else self.failures + later.failures,
            succeeded=self.succeeded or later.succeeded,
            last_error=later.last_error or self.last_error,
            last_success_at=_latest(self.last_success_at, later.last_success_at),
            last_failure_at=_latest(self.last_failure_at, later.last_failure_at),
        )

    @property
    def empty(self) -> bool:
        return not self.succeeded and not self.failures


def merge(record: HealthRecord, seen: Outcomes, *, now: int, threshold: int, cooldown_ms: int) -> HealthRecord:
    """The shared record once ``seen`` is folded in.

    A success closes the circuit unless a failure reported since (by another process) is newer
    than it; failures after it count on from there, and at ``threshold`` in a row the circuit opens
    until ``cooldown_ms`` after the last one (each further failure pushes that on).
    """
    failures, open_until = record.failures, record.open_until
    if seen.succeeded and (seen.last_success_at or 0) >= (record.last_failure_at or 0):
        failures, open_until = 0, 0
    failures += seen.failures
    if seen.failures and failures >= threshold:
        open_until = max(open_until, (seen.last_failure_at or now) + cooldown_ms)
    return HealthRecord(
        provider=record.provider,
        failures=failures,
        last_error=seen.last_error or record.last_error,
        last_success_at=_latest(record.last_success_at, seen.last_success_at),
        last_failure_at=_latest(record.last_failure_at, seen.last_failure_at),
        open_until=open_until,
        updated_at=now,
    )


def worth_writing(record: HealthRecord | None, seen: Outcomes, *, now: int, refresh_ms: int) -> bool:
    """Whether ``seen`` changes the shared record enough to write it: any failure, or a success that
    closes a circuit, ends a run of failures or refreshes a ``last_success_at`` older than ``refresh_ms``.
    Successes on a healthy provider, the usual case, are otherwise not written at all."""
    if seen.failures:
        return True
    if not seen.succeeded:
        return False
    if record is None or record.failures or record.open_until:
        return True
    return now - (record.last_success_at or 0) >= refresh_ms


def error_class(error: ProviderError | None) -> str:
    """What the shared record says of a failure: the kind of error and the upstream's status code,
    which can carry no secret and no part of the upstream's answer."""
    if error is None:
        return "error"
    name = type(error).__name__
    return f"{name} {error.status_code}" if error.status_code else name


def counts_against(error: ProviderError | None) -> bool:
    """A definite refusal of one request (bad input, moderation) says nothing of the provider's health."""
    return not (isinstance(error, Rejected) and not error.retryable)


def _latest(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else max(a, b)
