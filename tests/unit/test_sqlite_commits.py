"""SQLite transactions begun in the same turn of the loop share one COMMIT, each in its own savepoint."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from vidgate.gateway.storage.db import Q, SqliteDatabase

_CREATE = "CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)"
_PUT = Q("INSERT INTO t (k, v) VALUES (:k, :v)")
_ALL = Q("SELECT k FROM t ORDER BY k")


async def _db(tmp_path: Path) -> SqliteDatabase:
    conn = sqlite3.connect(tmp_path / "t.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(_CREATE)
    conn.close()
    return SqliteDatabase(tmp_path / "t.db")


async def _put(db: SqliteDatabase, key: str, fail: bool = False) -> None:
    async with db.transaction() as tx:
        await tx.execute(_PUT, {"k": key, "v": 1})
        if fail:
            raise ValueError(key)


def _committed(path: Path) -> list[str]:
    """What another connection (another process, say) sees: only what was committed."""
    conn = sqlite3.connect(path / "t.db")
    try:
        return [k for (k,) in conn.execute("SELECT k FROM t ORDER BY k")]
    finally:
        conn.close()


async def test_concurrent_transactions_commit_once_each_visible_after(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    try:
        commits = 0
        original = db._commit

        def counting() -> None:
            nonlocal commits
            commits += db._batch is not None
            original()

        db._commit = counting  # type: ignore[method-assign]
        await asyncio.gather(*(_put(db, f"k{i:02}") for i in range(20)))
        assert _committed(tmp_path) == [f"k{i:02}" for i in range(20)]
        assert 1 <= commits < 20  # grouped: far fewer commits than transactions
        await _put(db, "alone")  # a transaction on its own still commits, one turn later
        assert "alone" in _committed(tmp_path)
    finally:
        await db.close()


async def test_a_failing_member_rolls_back_alone(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    try:
        results = await asyncio.gather(_put(db, "a"), _put(db, "b", fail=True), _put(db, "c"), return_exceptions=True)
        assert results[0] is None and isinstance(results[1], ValueError) and results[2] is None
        assert _committed(tmp_path) == ["a", "c"]
        with pytest.raises(sqlite3.IntegrityError):  # a constraint failure is that member's own error
            await _put(db, "a")
        await _put(db, "d")
        assert _committed(tmp_path) == ["a", "c", "d"]
    finally:
        await db.close()


async def test_a_cancelled_member_does_not_cancel_the_others(tmp_path: Path) -> None:
    db = await _db(tmp_path)
    try:
        first = asyncio.ensure_future(_put(db, "x"))
        second = asyncio.ensure_future(_put(db, "y"))
        await asyncio.sleep(0)  # both are inside the batch, waiting for its commit
        first.cancel()
        assert await second is None
        with pytest.raises(asyncio.CancelledError):
            await first
        assert _committed(tmp_path) == ["x", "y"]  # its work was in the batch and committed with it
    finally:
        await db.close()
