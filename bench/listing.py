"""``GET /v1/videos?limit=100`` over 1,000,000 stored jobs: a deep page costs what the first one does.

The jobs go straight into a migrated SQLite database (``executemany`` in one transaction), one owner,
with the columns the service writes (``jobs/service.py`` ``_INSERT``) plus what the worker adds on
completion: nine in ten completed with one stored output, one in ten failed with an error. Ids are
ULID-shaped and increasing (``vid_`` + 10 time + 16 counter characters), as ``new_id`` makes them.
A ``vidgate serve`` (worker off) pinned to core 0 then answers the first page, a page after an id in
the middle and one after an id near the end, sent in turn on one keep-alive connection from core 1.
The first page is the baseline; the target is every page within 2× of it.

Run ``python -m bench.listing [--jobs 1000000] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.common import (
    Result,
    bench_env,
    closed_loop,
    free_port,
    http_request,
    percentile,
    pinned,
    start_server,
    stop_server,
    table,
    tempdir,
)

JOBS = 1_000_000
PAGE = 100
ROUNDS = 100
TARGET = 2.0
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_COLUMNS = (
    "id, owner_id, model, status, provider, native_id, spec, created_at, updated_at, started_at, completed_at, "
    "deadline_at, expected_seconds, progress, progress_source, error, attempts, outputs, request_hash, request_id, "
    "quote, cost, billing_state, is_byok"
)
_INSERT = f"INSERT INTO jobs ({_COLUMNS}) VALUES ({', '.join('?' * len(_COLUMNS.split(', ')))})"


_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]  # 10 bits at a time


def _b32(value: int, width: int) -> str:
    """``value`` in ``width`` (even) Crockford base32 characters, as ULIDs spell them (lowercase)."""
    out = [_PAIRS[(value >> shift) & 1023] for shift in range(5 * (width - 2), -1, -10)]
    return "".join(out)


def job_id(ms: int, n: int) -> str:
    return f"vid_{_b32(ms, 10)}{_b32(n * 0x9E3779B97F4A7C15 % (1 << 80), 16)}"


def _spec() -> str:
    """The spec column exactly as the service stores it, for a typical create."""
    from vidgate.gateway.catalog.catalog import load_catalog
    from vidgate.gateway.catalog.validate import validate
    from vidgate.gateway.jobs.spec import encode_spec

    body = orjson.dumps(
        {"model": "vidgate/procedural", "prompt": "a lighthouse on a cliff at dusk, waves rolling in", "duration": 4}
    )
    return encode_spec(validate(body, load_catalog()))


def rows(owner: str, n: int, start_ms: int) -> Iterator[tuple[Any, ...]]:
    spec = _spec()
    error = orjson.dumps({"code": "upstream_error", "message": "the upstream job failed"}).decode()
    for i in range(n):
        created = start_ms + i
        vid = job_id(created, i)
        failed = i % 10 == 9
        attempts = f'[{{"provider":"vidgate","outcome":"accepted","at":{created // 1000}}}]'
        outputs = None
        if not failed:
            outputs = (
                f'[{{"index":0,"asset_id":"ast_{vid[4:]}","key":"videos/{vid}/0-0123456789abcdef.mp4",'
                f'"mime_type":"video/mp4","bytes":412345,"sha256":"{i:064x}","width":1280,"height":720,'
                f'"duration_seconds":4.0,"frames":96,"has_audio":false}}]'
            )
        yield (
            vid, owner, "vidgate/procedural", "failed" if failed else "completed", "vidgate", vid, spec,
            created, created + 5000, created + 100, created + 5000, created + 3_600_000, 10, 100,
            "provider", error if failed else None, attempts, outputs, f"{i:064x}", f"req_{i:016x}",
            40_000, 0 if failed else 40_000, "void" if failed else "settled", 0,
        )  # fmt: skip


def fill(db: Path, owner: str, n: int) -> float:
    """Insert ``n`` jobs; seconds taken."""
    started = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")  # 1 GB: the indexes stay in memory while they grow
        conn.execute("BEGIN")
        conn.executemany(_INSERT, rows(owner, n, int(time.time() * 1000) - n - 60_000))
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return time.perf_counter() - started


def _scan_ms(db: Path) -> dict[str, float]:
    """What other per-minute or per-scrape queries cost on this table (worker retention sweep, metrics)."""
    conn = sqlite3.connect(db)
    out = {}
    try:
        for name, sql, args in (
            (
                "retention_sweep_ms",
                "SELECT id, outputs FROM jobs WHERE status = 'completed' AND completed_at < ? "
                "ORDER BY completed_at LIMIT 100",
                (int(time.time() * 1000) - 30 * 86_400_000,),
            ),
            ("metrics_jobs_gauge_ms", "SELECT status, provider, COUNT(*) AS n FROM jobs GROUP BY status, provider", ()),
        ):
            started = time.perf_counter()
            conn.execute(sql, args).fetchall()
            out[name] = round((time.perf_counter() - started) * 1000, 1)
    finally:
        conn.close()
    return out


def run(jobs: int = JOBS, rounds: int = ROUNDS) -> list[Result]:
    with tempdir("listing", fast=True) as tmp:
        data = Path(tmp) / "data"
        made = subprocess.run(
            [sys.executable, "-m", "vidgate.cli.main", "keys", "create", "--json", "--data-dir", str(data)],
            env=bench_env(),
            check=True,
            capture_output=True,
            text=True,
        )
        key = json.loads(made.stdout.strip().splitlines()[-1])
        seconds = fill(data / "vidgate.db", key["id"], jobs)
        scans = _scan_ms(data / "vidgate.db")
        conn = sqlite3.connect(data / "vidgate.db")
        ids = [r[0] for r in conn.execute("SELECT id FROM jobs ORDER BY id DESC")]
        conn.close()
        middle, end = ids[len(ids) // 2], ids[-(PAGE + 50)]
        port = free_port()
        proc = start_server(data, port, {"VIDGATE_WORKER_ENABLED": "0"}, log=Path(tmp) / "serve.log")
        try:
            auth = {"Authorization": f"Bearer {key['key']}"}
            paths = [
                f"/v1/videos?limit={PAGE}",
                f"/v1/videos?limit={PAGE}&after={middle}",
                f"/v1/videos?limit={PAGE}&after={end}",
            ]
            with pinned({1}):
                lat = asyncio.run(closed_loop(port, [http_request("GET", p, port, auth) for p in paths], rounds))
        finally:
            stop_server(proc)
    first, mid, last = (percentile(v, 50) for v in lat)
    details = {
        "jobs": jobs,
        "insert_seconds": round(seconds, 1),
        "insert_rows_per_second": round(jobs / seconds),
        "rounds": rounds,
        "pages": {
            name: {"p50_ms": round(percentile(v, 50), 3), "p99_ms": round(percentile(v, 99), 3)}
            for name, v in zip(("first", "middle", "end"), lat, strict=True)
        },
        **scans,
    }
    return [
        Result(
            row="5a",
            name=f"GET /v1/videos?limit=100 after an id in the middle of {jobs:,} jobs (p50)",
            value=mid,
            unit="ms",
            baseline=first,
            baseline_name="first page",
            target=f"≤ {TARGET:g}× first page",
            met=mid <= TARGET * first,
            details=details,
        ),
        Result(
            row="5b",
            name=f"GET /v1/videos?limit=100 after an id near the end of {jobs:,} jobs (p50)",
            value=last,
            unit="ms",
            baseline=first,
            baseline_name="first page",
            target=f"≤ {TARGET:g}× first page",
            met=last <= TARGET * first,
            details=details,
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = run(args.jobs, args.rounds)
    print(table(results))
    print(json.dumps(results[0].details, indent=2))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2))


if __name__ == "__main__":
    main()
