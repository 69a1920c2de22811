"""A thin async database layer over stdlib sqlite3 (embedded) and asyncpg (at scale).

Queries are written once with ``:name`` parameters and compiled once per dialect (``Q``).
SQLite reads run on the event loop (a primary-key read costs microseconds; a thread hop costs
ten times that); writes go through one writer connection in ``BEGIN IMMEDIATE`` transactions,
serialised by a lock, with no awaits on real I/O inside them, and committed in groups.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("vidgate.db")
Row = Mapping[str, Any]
_PARAM = re.compile(r"(?<![:\w]):([a-zA-Z_][a-zA-Z0-9_]*)")


class Q:
    """One SQL text compiled for both dialects: ``:name`` for SQLite, ``$n`` for PostgreSQL."""

    __slots__ = ("columns", "names", "pg", "sqlite")

    def __init__(self, sql: str, *, pg: str | None = None) -> None:
        self.sqlite = sql
        names: list[str] = []

        def number(m: re.Match[str]) -> str:
            if m.group(1) not in names:
                names.append(m.group(1))
            return f"${names.index(m.group(1)) + 1}"

        self.pg = _PARAM.sub(number, pg or sql)
        self.names = tuple(names)
        self.columns: list[str] | None = None  # SQLite result column names, learnt on first use

    def pg_args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[n] for n in self.names]


class Tx(Protocol):
    dialect: str

    async def execute(self, q: Q, params: Mapping[str, Any] = {}) -> int: ...

    async def fetchone(self, q: Q, params: Mapping[str, Any] = {}) -> Row | None: ...

    async def fetchall(self, q: Q, params: Mapping[str, Any] = {}) -> Sequence[Row]: ...


class Database(Protocol):
    dialect: str

    async def fetchone(self, q: Q, params: Mapping[str, Any] = {}) -> Row | None: ...

    async def fetchall(self, q: Q, params: Mapping[str, Any] = {}) -> Sequence[Row]: ...

    async def fetchone_values(self, q: Q, params: Mapping[str, Any] = {}) -> Sequence[Any] | None:
        """One row as its values in the order the query selects them, with no dict built for it: for
        the hottest reads, decoded column by column (``jobs.records.JobView.from_values``)."""
        ...

    async def fetchall_values(self, q: Q, params: Mapping[str, Any] = {}) -> Sequence[Sequence[Any]]: ...

    def transaction(self) -> Any: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


def _run(conn: sqlite3.Connection, q: Q, params: Mapping[str, Any], many: bool) -> Any:
    """Rows as plain dicts, with the column names learnt once per query rather than read per row.

    ``sqlite3.Row`` looks every name up case-insensitively, column by column, which costs more than
    the query itself on the poll path.
    """
    cursor = conn.execute(q.sqlite, params)
    if cursor.description is None:
        return [] if many else None
    if q.columns is None:
        q.columns = [d[0] for d in cursor.description]
    cols = q.columns
    if many:
        return [dict(zip(cols, r, strict=True)) for r in cursor.fetchall()]
    row = cursor.fetchone()
    return None if row is None else dict(zip(cols, row, strict=True))


def _connect_sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA cache_size=-16000")
    return conn


class _SqliteTx:
    __slots__ = ("conn",)
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def execute(self, q: Q, params: Mapping[str, Any] = {}) -> int:
        return self.conn.execute(q.sqlite, params).rowcount

    async def fetchone(self, q: Q, params: Mapping[str, Any] = {}) -> Row | None:
        return _run(self.conn, q, params, False)

    async def fetchall(self, q: Q, params: Mapping[str, Any] = {}) -> Sequence[Row]:
        return _run(self.conn, q, params, True)


class _Checkpointer(threading.Thread):
    """Copies the WAL back into the database file from a thread of its own, twice a second.

    SQLite's automatic checkpoint runs inside whichever commit crosses its threshold, on the event
    loop, and stalls every request behind it for milliseconds (the p99 of creates at a steady 100/s
    was set by it); sqlite3 releases the GIL while it works, so here it costs the loop nothing.
    """

    def __init__(self, path: Path, interval: float = 0.5) -> None:
        super().__init__(name="sqlite checkpoint", daemon=True)
        self.path = path
        self.interval = interval
        self.halt = threading.Event()

    def run(self) -> None:
        conn = _connect_sqlite(self.path)
        try:
            while not self.halt.wait(self.interval):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or I/O: the next round tries again
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            conn.close()


class SqliteDatabase:
    """Embedded SQLite in WAL mode: a reader connection and one serialised writer."""

    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader = _connect_sqlite(path)
        self._writer = _connect_sqlite(path)
        self._writer.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it
        self._checkpointer = _Checkpointer(path)
        self._checkpointer.start()
        self._lock = asyncio.Lock()
        self._batch: asyncio.Future[None] | None = None

    async def fetchone(self, q: Q, params: Mapping[str, Any] = {}) -> Row | None:
        return _run(self._reader, q, params, False)

    async def fetchall(self, q: Q, params: Mapping[str, Any] = {}) -> Sequence[Row]:
        return _run(self._reader, q, params, True)

    async def fetchone_values(self, q: Q, params: Mapping[str, Any] = {}) -> Sequence[Any] | None:
        row: Sequence[Any] | None = self._reader.execute(q.sqlite, params).fetchone()
        return row

    async def fetchall_values(self, q: Q, params: Mapping[str, Any] = {}) -> Sequence[Sequence[Any]]:
        rows: list[Sequence[Any]] = self._reader.execute(q.sqlite, params).fetchall()
        return rows

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_SqliteTx]:
        """A transaction, committed together with the others begun in the same turn of the loop.

        Each one runs in its own savepoint, so a failure rolls back that one alone; the shared
        ``COMMIT`` runs once the loop has run every callback ready now, and every member waits for it
        before going on. Under load that is one commit (the costliest statement of a create) for many
        transactions; alone, a transaction commits a few microseconds later than it would have.
        """
        async with self._lock:
            conn = self._writer
            if self._batch is None:
                conn.execute("BEGIN IMMEDIATE")
                self._batch = asyncio.get_running_loop().create_future()
                asyncio.get_running_loop().call_soon(self._commit)
            batch = self._batch
            conn.execute("SAVEPOINT tx")
            try:
                yield _SqliteTx(conn)
            except BaseException:
                conn.execute("ROLLBACK TO tx")
                conn.execute("RELEASE tx")
                raise
            conn.execute("RELEASE tx")
        # Shielded: a member cancelled while it waits must not cancel the commit the others wait for.
        await asyncio.shield(batch)

    def _commit(self) -> None:
        if self._lock.locked():  # a transaction is mid-way (it awaited): commit after it
            asyncio.get_running_loop().call_soon(self._commit)
            return
        batch, self._batch = self._batch, None
        if batch is None:
            return
        try:
            self._writer.execute("COMMIT")
        except BaseException as exc:
            if self._writer.in_transaction:
                self._writer.execute("ROLLBACK")
            batch.set_exception(exc)
            batch.exception()  # retrieved here too: a batch whose members all left would warn otherwise
        else:
            batch.set_result(None)

    async def ping(self) -> None:
        self._reader.execute("SELECT 1").fetchone()

    async def close(self) -> None:
        self._checkpointer.halt.set()
        await asyncio.to_thread(self._checkpointer.join)
        self._reader.close()
        self._writer.close()


class _PgTx:
    __slots__ = ("conn",)
    dialect = "postgresql"

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def execute(self, q: Q, params: Mapping[str, Any] = {}) -> int:
        status: str = await self.conn.execute(q.pg, *q.pg_args(params))
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetchone(self, q: Q, params: Mapping[str, Any] = {}) -> Row | None:
        return await self.conn.fetchrow(q.pg, *q.pg_args(params))

    async def fetchall(self, q: Q, params: Mapping[str, Any] = {}) -> Sequence[Row]:
        return await self.conn.fetch(q.pg, *q.pg_args(params))


# Every wait on PostgreSQL is bounded (connect, pool acquire, each command), so an unreachable or
# stalled server turns into an error the API answers as 503 within seconds, never a hang; the pool
# replaces broken connections by itself once the server is back.
PG_TIMEOUT_SECONDS = 5.0


class PostgresDatabase:
    """PostgreSQL through an asyncpg pool that skips the reset query on release."""

    dialect = "postgresql"

    def __init__(self, pool: Any) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str, *, min_size: int = 2, max_size: int = 20) -> PostgresDatabase:
        import asyncpg

        class _Conn(asyncpg.Connection):  # type: ignore[misc]
            def get_reset_query(self) -> str:
                return ""

        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            connection_class=_Conn,
            statement_cache_size=512,
            timeout=PG_TIMEOUT_SECONDS,  # to connect
            command_timeout=PG_TIMEOUT_SECONDS,
        )
        return cls(pool)

    async def fetchone(self, q: Q, params: Mapping[str, Any] = {}) -> Row | None:
        async with self.pool.acquire(timeout=PG_TIMEOUT_SECONDS) as conn:
            return await conn.fetchrow(q.pg, *q.pg_args(params))

    async def fetchall(self, q: Q, params: Mapping[str, Any] = {}) -> Sequence[Row]:
        async with self.pool.acquire(timeout=PG_TIMEOUT_SECONDS) as conn:
            return await conn.fetch(q.pg, *q.pg_args(params))

    async def fetchone_values(self, q: Q, params: Mapping[str, Any] = {}) -> Sequence[Any] | None:
        async with self.pool.acquire(timeout=PG_TIMEOUT_SECONDS) as conn:
            row: Sequence[Any] | None = await conn.fetchrow(q.pg, *q.pg_args(params))  # a Record reads by position
            return row

    async def fetchall_values(self, q: Q, params: Mapping[str, Any] = {}) -> Sequence[Sequence[Any]]:
        async with self.pool.acquire(timeout=PG_TIMEOUT_SECONDS) as conn:
            rows: list[Sequence[Any]] = await conn.fetch(q.pg, *q.pg_args(params))
            return rows

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PgTx]:
        async with self.pool.acquire(timeout=PG_TIMEOUT_SECONDS) as conn, conn.transaction():
            yield _PgTx(conn)

    async def ping(self) -> None:
        async with self.pool.acquire(timeout=PG_TIMEOUT_SECONDS) as conn:
            await conn.fetchval("SELECT 1")

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self.pool.close(), timeout=2 * PG_TIMEOUT_SECONDS)
        except TimeoutError:  # the server is unreachable: drop the connections rather than hang
            self.pool.terminate()


async def open_database(url: str) -> Database:
    if url.startswith("sqlite:///"):
        return SqliteDatabase(Path(url.split("sqlite:///", 1)[1]))
    if url.startswith(("postgres://", "postgresql://")):
        return await PostgresDatabase.connect(url)
    raise ValueError(f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://…")
