"""How job throughput grows with worker processes, on PostgreSQL + S3 (the scale-out deployment).

One ``vidgate api`` and N ``vidgate worker`` processes share a throwaway PostgreSQL and SeaweedFS;
the bench queues the same batch of small renders for each N and times until all are completed.
On a 2-core machine the renders themselves bound the gain past two workers; the table says so.
Run ``python -m bench.workers [--jobs 80] [--max-workers 4] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.http import ADMIN, _free_port, backend_env

BODY = {"model": "vidgate/procedural", "prompt": "workers", "duration": 1, "size": "128x72"}


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "vidgate.cli.main", *args],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=20)


async def batch(base: str, key: str, jobs: int) -> float:
    """Queue ``jobs`` renders at once and time until every one is completed."""
    auth = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as client:
        started = time.perf_counter()
        created = await asyncio.gather(*(client.post("/v1/videos", json={**BODY, "seed": i}) for i in range(jobs)))
        ids = {r.json()["id"] for r in created}
        while ids:
            page = await client.get("/v1/videos", params={"status": "completed", "limit": 100})
            ids -= {v["id"] for v in page.json()["data"]}
            failed = await client.get("/v1/videos", params={"status": "failed", "limit": 1})
            if failed.json()["data"]:
                raise RuntimeError(f"a bench job failed: {failed.json()['data'][0]['error']}")
            await asyncio.sleep(0.1)
        return time.perf_counter() - started


def run(jobs: int, max_workers: int) -> list[dict[str, float]]:
    results = []
    with tempfile.TemporaryDirectory(prefix="vidgate-bench-") as tmp, contextlib.ExitStack() as stack:
        env = {
            **backend_env("postgres", stack),
            "VIDGATE_ADMIN_KEY": ADMIN,
            "VIDGATE_DATA_DIR": tmp,
            "VIDGATE_DEFAULT_BALANCE_USD": "1000",
            "VIDGATE_RENDER_PARALLEL": "1",
        }
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        api = spawn(["api", "--port", str(port), "--workers", "1"], env)
        stack.callback(stop, api)
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        key = httpx.post(
            base + "/v1/admin/keys", json={"name": "workers"}, headers={"Authorization": f"Bearer {ADMIN}"}
        )
        key.raise_for_status()
        for n in range(1, max_workers + 1):
            workers = [spawn(["worker"], env) for _ in range(n)]
            try:
                time.sleep(1.5)  # let them connect before the batch lands
                seconds = asyncio.run(batch(base, key.json()["key"], jobs))
            finally:
                for w in workers:
                    stop(w)
            results.append(
                {"workers": n, "jobs": jobs, "seconds": round(seconds, 2), "jobs_per_second": jobs / seconds}
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=80)
    parser.add_argument("--max-workers", type=int, default=4)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = run(args.jobs, args.max_workers)
    base = results[0]["jobs_per_second"]
    print(f"{'workers':>7} {'jobs':>5} {'seconds':>8} {'jobs/s':>7} {'vs 1':>5}   (cores: {os.cpu_count()})")
    for r in results:
        print(
            f"{r['workers']:>7} {r['jobs']:>5} {r['seconds']:>8.2f} {r['jobs_per_second']:>7.1f} "
            f"{r['jobs_per_second'] / base:>5.2f}"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
