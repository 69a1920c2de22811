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
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

ADMIN = "bench-admin"


@dataclass(frozen=True, slots=True)
class Row:
    route: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pin(cores: str) -> list[str]:
    return ["taskset", "-c", cores] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def start_server(data_dir: Path, port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "VIDGATE_ADMIN_KEY": ADMIN, **(env or {})}
    args = [
        *_pin("0"),
        sys.executable,
        "-m",
        "vidgate.cli.main",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    proc = subprocess.Popen(
        args, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    for _ in range(300):
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the server did not start")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=20)


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


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    return float(m.group(1)) * _UNITS[m.group(2)]


def wrk(
    url: str, seconds: int, connections: int, headers: dict[str, str] | None = None, rate: int | None = None
) -> Row:
    args = [*_pin("1"), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return Row(route=url.split("127.0.0.1")[1].split("/", 1)[1], requests_per_second=rps, p50_ms=p50, p99_ms=p99)


CREATE_BODY = '{"model":"vidgate/procedural","prompt":"bench","duration":1,"size":"64x64"}'


def wrk_create(base: str, key: str, seconds: int, connections: int, workdir: Path) -> Row:
    script = workdir / "create.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{CREATE_BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        f'wrk.headers["Authorization"] = "Bearer {key}"\n'
    )
    args = [*_pin("1"), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    out = subprocess.run([*args, f"{base}/v1/videos"], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        raise RuntimeError(f"{non2xx.group(1)} creates failed during the benchmark")
    return Row(route="POST v1/videos", requests_per_second=rps, p50_ms=p50, p99_ms=p99)


def backend_env(backend: str, stack: contextlib.ExitStack) -> dict[str, str]:
    """Nothing for SQLite; for PostgreSQL a throwaway server and S3 store (the test suite's own)."""
    if backend == "sqlite":
        return {}
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from infra.postgres import PostgresServer
    from infra.seaweed import SeaweedS3

    pg = PostgresServer().start()
    stack.callback(pg.stop)
    s3 = SeaweedS3().start()
    stack.callback(s3.stop)
    env = {**s3.env(), "VIDGATE_DATABASE_URL": pg.create_database("bench"), "VIDGATE_BLOB_URL": f"s3://{s3.bucket}/b"}
    subprocess.run(
        [sys.executable, "-m", "vidgate.cli.main", "migrate"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    return env


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
