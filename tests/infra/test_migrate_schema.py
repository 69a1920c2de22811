"""Schema upgrades on PostgreSQL with the real command: concurrent ``vidgate migrate`` runs, and
processes that refuse a database at another schema than their release's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fakes.server import free_port

from infra.postgres import PostgresUnavailable, find_pg_bindir
from vidgate.gateway.storage.migrate import HEAD, known_revisions, migrate

try:
    find_pg_bindir()
    PG_MISSING = None
except PostgresUnavailable as exc:
    PG_MISSING = str(exc)

pytestmark = pytest.mark.skipif(PG_MISSING is not None, reason=PG_MISSING or "")


def vidgate(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vidgate.cli.main", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        _, err = proc.communicate()
        raise AssertionError(f"{proc.args} kept running:\n{err[-2000:]}") from None
    return proc.returncode, err


def test_concurrent_migrates_both_succeed(pg_server: Any, tmp_path: Path) -> None:
    """Two ``vidgate migrate`` at once on an empty database: one upgrades, the other waits and finds
    nothing to do; neither fails on a table the other just made."""
    for round_ in range(3):
        dsn = pg_server.create_database(f"race_{os.getpid()}_{round_}")
        env = {"VIDGATE_DATABASE_URL": dsn, "VIDGATE_DATA_DIR": str(tmp_path / f"r{round_}")}
        procs = [vidgate("migrate", env=env) for _ in range(2)]
        results = [finish(p) for p in procs]
        assert [rc for rc, _ in results] == [0, 0], [err for _, err in results]
        assert pg_server.psql("SELECT version_num FROM alembic_version", dbname=dsn.rsplit("/", 1)[1]).strip() == HEAD


def test_processes_refuse_an_older_schema_until_migrated(pg_server: Any, tmp_path: Path) -> None:
    dsn = pg_server.create_database(f"older_{os.getpid()}")
    previous = known_revisions()[-2]
    migrate(dsn, revision=previous)
    env = {"VIDGATE_DATABASE_URL": dsn, "VIDGATE_SIGNING_SECRET": "schema-test", "VIDGATE_DATA_DIR": str(tmp_path)}
    wanted = f"error: database schema is at {previous}, this release needs {HEAD}: run vidgate migrate"
    for args in (("serve", "--port", str(free_port())), ("api", "--port", str(free_port())), ("worker",)):
        rc, err = finish(vidgate(*args, env=env))
        assert rc == 1 and err.strip() == wanted, err
        print(f"\n{args[0]}: {err.strip()}")
    jobs = finish(vidgate("jobs", "list", env=env))  # the database commands check it too
    assert jobs[0] == 1 and jobs[1].strip() == wanted
    assert finish(vidgate("migrate", env=env))[0] == 0
    rc, err = finish(vidgate("jobs", "list", "--json", env=env))
    assert rc == 0, err
