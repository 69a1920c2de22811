"""Requests/s and latency of ``GET /v1/videos/{id}`` next to a bare route on the same server and stack.

A real ``vidgate serve`` runs pinned to core 0 and ``wrk`` to core 1, against loopback only. The
baseline is ``/healthz``: the same server, app, middleware and error handling, but no auth, no
database read and no encoding, so the ratio is what the poll itself costs.
It then measures ``POST /v1/videos`` (validate, price, hold, insert, event) with the worker off.
Run ``python -m bench.http [--backend sqlite|postgres|both] [--seconds 5] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import httpx

from bench.common import (  # re-exported: bench.workers and others import them from here
    ADMIN,
    Row,
    _free_port,
    backend_env,
    non_2xx,
    parse_wrk,
    run_wrk,
    start_server,
    stop_server,
    wrk,
)

__all__ = ["ADMIN", "Row", "_free_port", "backend_env", "completed_job", "start_server", "stop_server", "wrk"]


def completed_job(base: str) -> tuple[str, str]:
    """A key and one completed job to poll."""
    key = httpx.post(
        f"{base}/v1/admin/keys", json={"name": "bench"}, headers={"Authorization": f"Bearer {ADMIN}"}
    ).json()["key"]
    auth = {"Authorization": f"Bearer {key}"}
    job = httpx.post(
        f"{base}/v1/videos",
        headers=auth,
        json={"model": "vidgate/procedural", "prompt": "bench", "duration": 1, "size": "64x64"},
    ).json()
    for _ in range(600):
        if httpx.get(f"{base}/v1/videos/{job['id']}", headers=auth).json()["status"] == "completed":
            return key, job["id"]
        time.sleep(0.05)
    raise RuntimeError("the bench job did not complete")


CREATE_BODY = '{"model":"vidgate/procedural","prompt":"bench","duration":1,"size":"64x64"}'


def wrk_create(base: str, key: str, seconds: int, connections: int, workdir: Path) -> Row:
    script = workdir / "create.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{CREATE_BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    out = run_wrk(f"{base}/v1/videos", seconds, connections, script=script)
    if failed := non_2xx(out):
        raise RuntimeError(f"{failed} creates failed during the benchmark")
    row = parse_wrk(out, "POST v1/videos")
    return row


def run(seconds: int, connections: int, backend: str = "sqlite") -> list[Row]:
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="vidgate-bench-") as tmp, contextlib.ExitStack() as stack:
        env = backend_env(backend, stack)
        proc = start_server(Path(tmp), port, env)
        try:
            key, job_id = completed_job(base)
            wrk(f"{base}/healthz", 1, connections)  # warm-up
            hello = wrk(f"{base}/healthz", seconds, connections)
            get = wrk(f"{base}/v1/videos/{job_id}", seconds, connections, {"Authorization": f"Bearer {key}"})
        finally:
            stop_server(proc)
        # Creates without a worker, so renders do not compete for the server's core.
        proc = start_server(
            Path(tmp), port, {**env, "VIDGATE_WORKER_ENABLED": "0", "VIDGATE_DEFAULT_BALANCE_USD": "1e6"}
        )
        try:
            key = httpx.post(
                f"{base}/v1/admin/keys", json={"name": "bench-create"}, headers={"Authorization": f"Bearer {ADMIN}"}
            ).json()["key"]
            create = wrk_create(base, key, seconds, connections, Path(tmp))
        finally:
            stop_server(proc)
    return [hello, get, create]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict[str, list[Row]] = {}
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        results[backend] = run(args.seconds, args.connections, backend)
    print(f"{'backend':<9} {'route':<44} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'vs hello':>8}")
    for backend, rows in results.items():
        hello = rows[0]
        for row in rows:
            ratio = row.requests_per_second / hello.requests_per_second
            route = row.route if not row.route.startswith("v1/videos/vid_") else "GET v1/videos/{id}"
            print(
                f"{backend:<9} {route:<44} {row.requests_per_second:>10.0f} {row.p50_ms:>8.2f} "
                f"{row.p99_ms:>8.2f} {ratio:>8.2f}"
            )
    if args.json:
        args.json.write_text(json.dumps({b: [asdict(r) for r in rows] for b, rows in results.items()}, indent=2))


if __name__ == "__main__":
    main()
