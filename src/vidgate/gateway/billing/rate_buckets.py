"""Per-key request rate across every API process: one token bucket per key in PostgreSQL.

Each take is one statement: refill by the time since the bucket's stamp (the database's clock, the
same for every process), take a token if there is a whole one, and answer what is left. A process
remembers the last answer, and a bucket that cannot hold a token yet even refilled since is refused
here without a round trip: the bucket is only ever lower than that, as other processes only take
from it. So a key hammering past its limit costs the database nothing more.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from vidgate.gateway.storage.db import Database, Q

_NOW = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
_REFILLED = (
    "LEAST(CAST(:burst AS DOUBLE PRECISION), "
    "b.tokens + GREATEST(0, EXCLUDED.stamp - b.stamp) * CAST(:rate AS DOUBLE PRECISION) / 1000.0)"
)
_TAKE_SQL = (
    f"INSERT INTO rate_buckets AS b (key_id, tokens, stamp, taken) "
    f"VALUES (:key, CAST(:burst AS DOUBLE PRECISION) - 1, {_NOW}, 1) "
    f"ON CONFLICT (key_id) DO UPDATE SET "
    f"tokens = {_REFILLED} - CASE WHEN {_REFILLED} >= 1 THEN 1 ELSE 0 END, "
    f"taken = CASE WHEN {_REFILLED} >= 1 THEN 1 ELSE 0 END, "
    f"stamp = GREATEST(b.stamp, EXCLUDED.stamp) "
    f"RETURNING tokens, taken"
)
_TAKE = Q(_TAKE_SQL, pg=_TAKE_SQL)  # PostgreSQL only: SQLite serves one process, with an in-process bucket
# The bucket refilled to now by the same rule as a take, read without taking (nor writing) anything.
_LEVEL_SQL = (
    f"SELECT LEAST(CAST(:burst AS DOUBLE PRECISION), "
    f"tokens + GREATEST(0, {_NOW} - stamp) * CAST(:rate AS DOUBLE PRECISION) / 1000.0) AS tokens "
    f"FROM rate_buckets WHERE key_id = :key"
)
_LEVEL = Q(_LEVEL_SQL, pg=_LEVEL_SQL)
MAX_REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class _Seen:
    """The bucket as the last take left it: ``tokens`` at ``at`` (this process's clock) at most."""

    tokens: float
    at: float
    rate: float
    burst: float


class SharedRateLimiter:
    """Token buckets in the ``rate_buckets`` table, shared by every process on the database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._seen: dict[str, _Seen] = {}

    async def take(self, key: str, rate: float, burst: int) -> float:
        """Take one token from ``key``'s bucket: 0 when taken, else the seconds until one is there."""
        burst = max(1, burst)
        sent = time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and seen.rate == rate and seen.burst == burst:
            # Taken from since, never refilled faster: at most this many tokens are there now.
            most = min(burst, seen.tokens + (sent - seen.at) * rate)
            if most < 1:
                return (1 - most) / rate
        row = await self.db.fetchone(_TAKE, {"key": key, "rate": float(rate), "burst": float(burst)})
        assert row is not None  # an upsert with RETURNING answers one row
        tokens = float(row["tokens"])
        if len(self._seen) >= MAX_REMEMBERED:
            self._seen.clear()
        # Stamped when the statement was sent, before the database read its clock: an over-estimate.
        self._seen[key] = _Seen(tokens, sent, rate, burst)
        return 0.0 if row["taken"] else (1 - tokens) / rate

    async def level(self, key: str, rate: float, burst: int) -> float:
        """The tokens in ``key``'s bucket now, by the database's clock; a key never throttled has a full one."""
        burst = max(1, burst)
        row = await self.db.fetchone(_LEVEL, {"key": key, "rate": float(rate), "burst": float(burst)})
        return float(burst) if row is None else max(0.0, float(row["tokens"]))
