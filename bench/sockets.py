"""2,000 concurrent websockets: how long a committed job change takes to reach every socket.

Jobs run on the OpenAI fake (its own process), whose polls raise progress step by step: every poll
the worker sees is a committed ``video.progress`` event, then ``video.completed`` closes the sockets.
The fake is paused (polls answer without advancing) while the sockets connect, so no event is
missed or counted before every socket has its snapshot. Latency per message: the client's receive
time minus the event's ``events.created_at`` (epoch ms, taken in the transaction that commits it).
The client is one asyncio process on core 1 (``websockets``, fd limit raised).

Baseline: one socket per job on a few jobs, the same server, just before.
Embedded: one ``vidgate serve`` (SQLite) holds all 2,000 sockets. Across processes: PostgreSQL + S3,
two ``vidgate api --workers 1`` (1,000 sockets each) and a ``vidgate worker``; events reach the API
processes by LISTEN/NOTIFY.

Run ``python -m bench.sockets [--sockets 2000] [--backend sqlite|postgres|both] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

from bench.common import (
    Backends,
    FakeProcess,
    Profiler,
    Result,
    busiest,
    cpu_seconds,
    create_key,
    descendants,
    free_port,
    pinned,
    print_top,
    raise_fd_limit,
    spawn,
    start_server,
    stop_server,
    summary_ms,
    table,
    tempdir,
)
from bench.inflight import BODY, _wait_statuses

TARGET_MS = {"sqlite": 100.0, "postgres": 500.0}
POLLS = 12  # polls to complete: ten progress events and a completion per job
INTERVAL = 0.5


async def _watch(
    url: str, key: str, limit: asyncio.Semaphore, got: list[tuple[float, str]], ready: list[int], closed: list[int]
) -> None:
    async with limit:  # bounds the connects in progress, not the sockets open
        ws = await websockets.connect(
            url,
            additional_headers={"Authorization": f"Bearer {key}"},
            open_timeout=120,
            ping_interval=None,
            max_size=None,
            close_timeout=5,
        )
        await ws.recv()  # the snapshot
    ready[0] += 1
    try:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                now = time.time() * 1000
                message = orjson.loads(raw)
                if message["type"] == "job.updated":
                    got.append((now, message["id"]))
        if ws.close_code == 1000:
            closed[0] += 1
    finally:
        await ws.close()


async def _phase(
    bases: list[str],
    key: str,
    jobs: list[str],
    per_job: int,
    fake: FakeProcess,
    servers: list[int],
    timeout: float = 120,
    profile: Path | None = None,
) -> tuple[list[tuple[float, str]], dict[str, Any]]:
    """Open ``per_job`` sockets on each job (spread over ``bases``), unpause the fake, collect every update."""
    got: list[tuple[float, str]] = []
    ready, closed = [0], [0]
    limit = asyncio.Semaphore(64)
    total = len(jobs) * per_job
    urls = [
        bases[n % len(bases)].replace("http://", "ws://") + f"/v1/async/video/{job}/ws"
        for job in jobs
        for n in range(per_job)
    ]
    started = time.monotonic()
    tasks = [asyncio.ensure_future(_watch(u, key, limit, got, ready, closed)) for u in urls]
    while ready[0] < total:
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise RuntimeError(f"a socket failed: {failed[0].exception()!r}")
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"only {ready[0]} of {total} sockets opened")
        await asyncio.sleep(0.05)
    connect_s = time.monotonic() - started
    server_pids = [p for pid in servers for p in descendants(pid)]
    server_cpu, client_cpu, t0 = sum(map(cpu_seconds, server_pids)), time.process_time(), time.monotonic()
    prof = Profiler(busiest(servers[0]), 4, profile) if profile else None
    await asyncio.to_thread(fake.pause, False)
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    elapsed = time.monotonic() - t0
    server_share = (sum(map(cpu_seconds, server_pids)) - server_cpu) / elapsed
    client_share = (time.process_time() - client_cpu) / elapsed
    for t in pending:
        t.cancel()
    errors = [repr(t.exception()) for t in done if t.exception() is not None]
    return got, {
        "sockets": total,
        "connect_seconds": round(connect_s, 2),
        "closed_by_server": closed[0],
        "unfinished": len(pending),
        "errors": errors[:3],
        "messages": len(got),
        "events_seconds": round(elapsed, 2),
        "server_cpu_share": round(server_share, 2),
        "server_cpu_us_per_message": round(server_share * elapsed / max(1, len(got)) * 1e6, 1),
        "client_cpu_share": round(client_share, 2),
        "profile": await asyncio.to_thread(prof.top) if prof else [],
    }


def _event_times(where: Backends | Path, env: dict[str, str]) -> dict[str, int]:
    sql = "SELECT id, created_at FROM events"
    if isinstance(where, Path):
        conn = sqlite3.connect(where)
        try:
            return dict(conn.execute(sql).fetchall())
        finally:
            conn.close()
    return {r[0]: int(r[1]) for r in where.query(env, sql)}


def _create_paused(base: str, key: str, n: int, fake: FakeProcess) -> list[str]:
    fake.pause(True)
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        ids = []
        for _ in range(n):
            r = client.post("/v1/videos", json=BODY)
            r.raise_for_status()
            ids.append(r.json()["id"])
    _wait_statuses(base, key, ids, {"processing"}, timeout=60)
    return ids


def run_backend(
    backend: str,
    tmp: Path,
    backends: Backends | None,
    *,
    sockets: int,
    jobs: int,
    baseline_jobs: int,
    profile: bool = False,
) -> Result:
    raise_fd_limit(4 * sockets + 1024)
    fake = FakeProcess(polls_to_complete=POLLS, cores="1", log=tmp / f"{backend}-fake.log")
    procs: list[Any] = []
    try:
        env = {
            "VIDGATE_CONFIG": str(fake.providers_toml(tmp / f"{backend}-providers.toml", poll_interval=INTERVAL)),
            "VIDGATE_MAX_WEBSOCKETS_PER_KEY": str(10 * sockets),
            "VIDGATE_MAX_IN_FLIGHT_PER_CLIENT": str(10 * sockets),  # every socket comes from one address
            "VIDGATE_DEFAULT_BALANCE_USD": "1e6",
        }
        if backend == "sqlite":
            port = free_port()
            data = tmp / "sqlite-data"
            procs.append(start_server(data, port, env, cores="0", log=tmp / "sqlite-serve.log"))
            bases = [f"http://127.0.0.1:{port}"]
            where: Backends | Path = data / "vidgate.db"
        else:
            assert backends is not None
            env.update(backends.env("sockets"))
            bases = []
            for i in range(2):
                port = free_port()
                procs.append(
                    start_server(
                        tmp / f"pg-api{i}", port, env, command="api", args=("--workers", "1"), cores="",
                        log=tmp / f"pg-api{i}.log",
                    )
                )  # fmt: skip
                bases.append(f"http://127.0.0.1:{port}")
            procs.append(spawn(["worker", "--data-dir", str(tmp / "pg-worker")], env, log=tmp / "pg-worker.log"))
            where = backends
            time.sleep(1.5)
        key = create_key(bases[0], "sockets", balance=1e6)
        per_job = max(1, sockets // jobs)
        with pinned({1}):
            small = _create_paused(bases[0], key, baseline_jobs, fake)
            servers = [p.pid for p in procs]
            got_base, info_base = asyncio.run(_phase(bases, key, small, 1, fake, servers))
            big = _create_paused(bases[0], key, jobs, fake)
            pyspy = tmp / f"{backend}-server.pyspy" if profile else None
            got, info = asyncio.run(_phase(bases, key, big, per_job, fake, servers, profile=pyspy))
        created = _event_times(where, env)
    finally:
        for proc in reversed(procs):
            stop_server(proc)
        fake.stop()
    lat = [t - created[e] for t, e in got if e in created]
    lat_base = [t - created[e] for t, e in got_base if e in created]
    s, b = summary_ms(lat), summary_ms(lat_base)
    print_top(f"websocket server during the {sockets:,}-socket phase ({backend})", info["profile"])
    healthy = info["unfinished"] == 0 and not info["errors"] and info["closed_by_server"] == info["sockets"]
    label = "embedded (serve, SQLite), one process" if backend == "sqlite" else "PostgreSQL, 2 api + worker"
    return Result(
        row="11" if backend == "sqlite" else "11 (scale)",
        name=f"websocket commit → message p99, {info['sockets']:,} sockets, {label}",
        value=s["p99_ms"],
        unit="ms",
        baseline=b["p99_ms"],
        baseline_name=f"{baseline_jobs} sockets, one per job",
        target=f"< {TARGET_MS[backend]:g} ms",
        met=healthy and s["p99_ms"] < TARGET_MS[backend],
        details={"main": {**info, **s, "jobs": jobs, "per_job": per_job}, "baseline": {**info_base, **b}},
    )


def run(
    backends: Backends | None = None,
    *,
    sockets: int = 2000,
    jobs: int = 50,
    which: str = "both",
    profile: bool = False,
) -> list[Result]:
    results = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempdir("sockets")))
        for backend in ["sqlite", "postgres"] if which == "both" else [which]:
            if backend == "postgres" and backends is None:
                backends = stack.enter_context(Backends())
            results.append(
                run_backend(backend, tmp, backends, sockets=sockets, jobs=jobs, baseline_jobs=10, profile=profile)
            )
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--profile", action="store_true", help="py-spy the server during the big phase")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = run(sockets=args.sockets, jobs=args.jobs, which=args.backend, profile=args.profile)
    print(table(results))
    for r in results:
        print(r.row, json.dumps(r.details))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2))


if __name__ == "__main__":
    main()
