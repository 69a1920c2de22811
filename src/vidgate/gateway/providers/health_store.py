"""The shared provider-health table: what this process saw, written on a change, and what every
process wrote, read back and kept for a moment.

A worker notes each upstream call's outcome in memory and, every ``SYNC_SECONDS`` (at once when a
circuit opens here), writes the providers whose record that changes in one transaction, then
reads the whole table, so routing in every worker passes over a circuit any of them opened. An
API process only reads, at most once per ``READ_SECONDS``, for the models listing. Its own
unwritten outcomes always count in this process's view, so with no database (or between writes)
the circuit breaker still works as one process's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import msgspec

from vidgate.gateway.ids import now_ms
from vidgate.gateway.providers.health import HealthRecord, Outcomes, merge, worth_writing
from vidgate.gateway.storage.db import Database, Q, Row

log = logging.getLogger("vidgate.providers")

SYNC_SECONDS = 2.0  # how often a worker writes its outcomes and reads everyone's
READ_SECONDS = 2.0  # how stale the models listing's view may be
SUCCESS_REFRESH_MS = 30_000  # a healthy provider's last success is written at most this often

_ALL = Q(
    "SELECT provider, failures, last_error, last_success_at, last_failure_at, open_until, updated_at "
    "FROM provider_health"
)
_ENSURE = Q(
    "INSERT INTO provider_health (provider, state, failures, open_until, updated_at) "
    "VALUES (:provider, 'healthy', 0, 0, :now) ON CONFLICT (provider) DO NOTHING"
)
_ONE = Q(
    "SELECT provider, failures, last_error, last_success_at, last_failure_at, open_until, updated_at "
    "FROM provider_health WHERE provider = :provider",
    pg="SELECT provider, failures, last_error, last_success_at, last_failure_at, open_until, updated_at "
    "FROM provider_health WHERE provider = :provider FOR UPDATE",
)
_WRITE = Q(
    "UPDATE provider_health SET state = :state, failures = :failures, last_error = :last_error, "
    "last_success_at = :last_success_at, last_failure_at = :last_failure_at, open_until = :open_until, "
    "updated_at = :updated_at WHERE provider = :provider"
)

Policy = Callable[[str], tuple[int, int]]  # provider → (failures that open its circuit, cooldown in ms)


def _record(row: Row) -> HealthRecord:
    return HealthRecord(
        provider=row["provider"],
        failures=row["failures"],
        last_error=row["last_error"],
        last_success_at=row["last_success_at"],
        last_failure_at=row["last_failure_at"],
        open_until=row["open_until"],
        updated_at=row["updated_at"],
    )


class SharedHealth:
    """This process's view of every provider's health: the shared records, with its own news on top."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.db: Database | None = None
        self.records: dict[str, HealthRecord] = {}
        self.pending: dict[str, Outcomes] = {}
        self.writing: dict[str, Outcomes] = {}  # taken from ``pending`` by the write under way
        self.read_at = 0.0  # loop time of the last read of the table
        self._lock: asyncio.Lock | None = None  # one read or write of the table at a time
        self._wake: asyncio.Event | None = None

    def attach(self, db: Database) -> None:
        self.db = db

    def saw(self, name: str, ok: bool, error: str | None = None) -> None:
        """Note one upstream call's outcome; a circuit it opens here is written without waiting."""
        now = now_ms()
        was_open = self.view(name, now).is_open(now)
        self.pending.setdefault(name, Outcomes()).add(ok, now, error)
        if self._wake is not None and was_open != self.view(name, now).is_open(now):
            self._wake.set()

    def view(self, name: str, now: int | None = None) -> HealthRecord:
        now = now_ms() if now is None else now
        record = self.records.get(name) or HealthRecord(provider=name)
        seen = self.pending.get(name)
        if (writing := self.writing.get(name)) is not None:
            seen = writing if seen is None else writing.then(seen)
        if seen is None or seen.empty:
            return record
        threshold, cooldown_ms = self.policy(name)
        return merge(record, seen, now=now, threshold=threshold, cooldown_ms=cooldown_ms)

    def open_circuits(self) -> frozenset[str]:
        now = now_ms()
        names = {*self.records, *self.pending, *self.writing}
        return frozenset(n for n in names if self.view(n, now).is_open(now))

    async def refresh(self, max_age: float = READ_SECONDS) -> None:
        """Read the table again if the last read is older than ``max_age`` seconds."""
        if self.db is None:
            return
        async with self._locked():
            if asyncio.get_running_loop().time() - self.read_at >= max_age:  # else read while this one waited
                await self._read()

    async def sync(self) -> None:
        """Write what this process saw where it changes the shared record, then read every record."""
        if self.db is None:
            return
        async with self._locked():
            now = now_ms()
            self.writing = {
                n: seen
                for n, seen in self.pending.items()
                if worth_writing(self.records.get(n), seen, now=now, refresh_ms=SUCCESS_REFRESH_MS)
            }
            for name in self.writing:
                del self.pending[name]  # outcomes from here on are the next write's
            try:
                if self.writing:
                    await self._write(self.writing, now)
            except BaseException:
                for name, seen in self.writing.items():  # kept for the next try, before what came since
                    self.pending[name] = seen.then(self.pending.get(name) or Outcomes())
                raise
            finally:
                self.writing = {}
            await self._read()

    def _locked(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def run(self, stop: asyncio.Event) -> None:
        """Sync every ``SYNC_SECONDS`` (sooner when a circuit opens or closes here) until ``stop``, and once more."""
        self._wake = asyncio.Event()
        failures = 0
        while not stop.is_set():
            try:
                await self.sync()
                failures = 0
            except Exception as exc:  # the database is down: outcomes wait in memory for the next try
                failures += 1
                if failures == 1:
                    log.warning("provider health not shared (%s: %s); retrying", type(exc).__name__, exc)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop, self._wake), timeout=SYNC_SECONDS)
        with contextlib.suppress(Exception):
            await self.sync()

    async def _write(self, due: dict[str, Outcomes], now: int) -> None:
        assert self.db is not None
        written: dict[str, HealthRecord] = {}
        async with self.db.transaction() as tx:
            for name in sorted(due):  # one lock order for every worker: no deadlock between two writes
                await tx.execute(_ENSURE, {"provider": name, "now": now})
                row = await tx.fetchone(_ONE, {"provider": name})
                current = _record(row) if row is not None else HealthRecord(provider=name)
                threshold, cooldown_ms = self.policy(name)
                merged = merge(current, due[name], now=now, threshold=threshold, cooldown_ms=cooldown_ms)
                await tx.execute(_WRITE, {**msgspec.structs.asdict(merged), "state": merged.state(now)})
                written[name] = merged
        self.records.update(written)

    async def _read(self) -> None:
        assert self.db is not None
        rows = await self.db.fetchall(_ALL)
        self.records = {r["provider"]: _record(r) for r in rows}
        self.read_at = asyncio.get_running_loop().time()


async def _first(*events: asyncio.Event) -> None:
    """Return once any of ``events`` is set."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
