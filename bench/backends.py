"""PostgreSQL and the S3 store, started once and shared by the groups that need them."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from typing import Any

from bench.processes import ROOT


class Backends:
    """A throwaway PostgreSQL and S3 store (the test suite's own), started once and shared by a run.

    Each ``env(name)`` is a fresh, migrated database and its own key prefix in the one bucket.
    """

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.pg: Any = None
        self.s3: Any = None
        self._n = 0

    def _start(self) -> None:
        if self.pg is not None:
            return
        if str(ROOT / "tests") not in sys.path:
            sys.path.insert(0, str(ROOT / "tests"))
        from infra.postgres import PostgresServer
        from infra.seaweed import SeaweedS3

        self.pg = PostgresServer().start()
        self._stack.callback(self.pg.stop)
        self.s3 = SeaweedS3().start()
        self._stack.callback(self.s3.stop)

    def env(self, name: str) -> dict[str, str]:
        self._start()
        self._n += 1
        dbname = f"{re.sub(r'[^a-z0-9_]', '_', name.lower())}_{self._n}"
        env = {
            **self.s3.env(),
            "VIDGATE_DATABASE_URL": self.pg.create_database(dbname),
            "VIDGATE_BLOB_URL": f"s3://{self.s3.bucket}/{dbname}",
        }
        subprocess.run(
            [sys.executable, "-m", "vidgate.cli.main", "migrate"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        return env

    def postgres_pids(self) -> list[int]:
        """The postmaster (its backends are its children)."""
        proc = getattr(self.pg, "_proc", None)
        return [proc.pid] if proc is not None else []

    def query(self, env: dict[str, str], sql: str) -> list[list[str]]:
        """Rows of a query on one of this run's databases, as text (psql, unaligned)."""
        dbname = env["VIDGATE_DATABASE_URL"].rsplit("/", 1)[1]
        out = self.pg.psql(sql, dbname)
        return [line.split("|") for line in out.splitlines() if line]

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Backends:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def backend_env(backend: str, stack: contextlib.ExitStack) -> dict[str, str]:
    """Nothing for SQLite; for PostgreSQL a throwaway server and S3 store (the test suite's own)."""
    if backend == "sqlite":
        return {}
    backends = stack.enter_context(Backends())
    return backends.env("bench")
