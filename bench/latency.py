"""The API's request path: poll and create throughput, latency at a fixed rate, and CPU per poll.

Rows 1, 2 and 4 (group ``latency``): a real ``vidgate serve`` pinned to core 0, load from core 1.
Peak requests/s come from ``wrk`` (``bench/http.py``); the baseline is ``/healthz`` on the same
server. Latency "at half of peak" comes from an open-loop generator (``common.open_loop``: asyncio
on raw keep-alive connections, requests sent at fixed times, latency counted from the *intended*
send time like wrk2), at half the GET peak just measured; ``/healthz`` at the same rate is its
baseline. Creates run on a second server with the worker off (renders would compete for core 0).

Row 3 (group ``cpu``): the ASGI app called in-process with a synthetic scope, µs of CPU per call
for ``GET /v1/videos/{id}`` against ``/healthz``, and a cProfile of the GET.

Run ``python -m bench.latency [--only latency,cpu] [--backend sqlite|postgres|both] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import time
from pathlib import Path
from typing import Any

from bench.common import (
    Backends,
    Profiler,
    Result,
    busiest,
    cpu_seconds,
    create_key,
    descendants,
    free_port,
    http_request,
    open_loop,
    pinned,
    print_top,
    start_server,
    stop_server,
    table,
    tempdir,
    wrk,
)
from bench.http import CREATE_BODY, completed_job, wrk_create

GET_TARGET = {"sqlite": 0.6, "postgres": 0.35}
ROW = {"sqlite": "1", "postgres": "2"}
P99_TARGET_MS = 10.0
CREATE_TARGET = 1000.0
CREATE_RATE = 100.0


def _fixed(port: int, request: bytes, rate: float, seconds: float) -> Any:
    with pinned({1}):
        return asyncio.run(open_loop(port, request, rate, seconds))


def http_rows(
    backend: str,
    env: dict[str, str],
    seconds: int,
    connections: int,
    workdir: Path,
    profile: bool = False,
    db_pids: list[int] | None = None,
) -> list[Result]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = workdir / backend
    healthz = http_request("GET", "/healthz", port)
    proc = start_server(data, port, env, log=workdir / f"{backend}-serve.log")
    try:
        key, job_id = completed_job(base)
        auth = {"Authorization": f"Bearer {key}"}
        wrk(f"{base}/healthz", 1, connections)  # warm-up
        hello, hello_cpu, _ = _cpu_per_request(proc.pid, lambda: wrk(f"{base}/healthz", seconds, connections), seconds)
        get, get_cpu, db_cpu = _cpu_per_request(
            proc.pid, lambda: wrk(f"{base}/v1/videos/{job_id}", seconds, connections, auth), seconds, db_pids
        )
        rate = round(get.requests_per_second / 2)
        get_req = http_request("GET", f"/v1/videos/{job_id}", port, auth)
        hello_fixed = _fixed(port, healthz, rate, seconds)
        get_fixed = _fixed(port, get_req, rate, seconds)
    finally:
        stop_server(proc)
    # Creates without a worker, so renders do not compete for the server's core.
    proc = start_server(
        data,
        port,
        {**env, "VIDGATE_WORKER_ENABLED": "0", "VIDGATE_DEFAULT_BALANCE_USD": "1e6"},
        log=workdir / f"{backend}-create.log",
    )
    try:
        key = create_key(base, "bench-create")
        create, create_cpu, _ = _cpu_per_request(
            proc.pid, lambda: wrk_create(base, key, 2 * seconds, connections, workdir), 2 * seconds
        )
        post = http_request(
            "POST",
            "/v1/videos",
            port,
            {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            CREATE_BODY.encode(),
        )
        hello_100 = _fixed(port, healthz, CREATE_RATE, seconds)
        post_100 = _fixed(port, post, CREATE_RATE, 2 * seconds)
        top = []
        if profile:  # an extra pass, so the sampling does not touch the figures above
            prof = Profiler(busiest(proc.pid), seconds, workdir / f"{backend}-create.pyspy")
            wrk_create(base, key, seconds, connections, workdir)
            top = prof.top()
            print_top(f"vidgate serve under POST /v1/videos at full load ({backend})", top)
    finally:
        stop_server(proc)
    for load in (hello_fixed, get_fixed, hello_100):
        if set(load.statuses) != {200}:
            raise RuntimeError(f"unexpected statuses under fixed load: {load.statuses}")
    if set(post_100.statuses) != {202}:
        raise RuntimeError(f"creates failed under fixed load: {post_100.statuses}")
    row = ROW[backend]
    ratio = get.requests_per_second / hello.requests_per_second
    get_p99 = get_fixed.summary()["p99_ms"]
    create_row = "4" if backend == "sqlite" else "4 (pg)"
    return [
        Result(
            row=f"{row}a",
            name=f"GET /v1/videos/{{id}} req/s, {backend}",
            value=get.requests_per_second,
            unit="req/s",
            baseline=hello.requests_per_second,
            baseline_name="/healthz",
            target=f"≥ {GET_TARGET[backend]}× /healthz",
            met=ratio >= GET_TARGET[backend],
            note=f"server CPU per request: GET {get_cpu:.0f} µs, /healthz {hello_cpu:.0f} µs",
            details={
                "get": _row(get),
                "healthz": _row(hello),
                "server_cpu_us_per_get": round(get_cpu, 1),
                "server_cpu_us_per_healthz": round(hello_cpu, 1),
                "postgres_cpu_us_per_get": round(db_cpu, 1) if db_pids else None,
                "cpu_ratio": round(hello_cpu / get_cpu, 3),
            },
        ),
        Result(
            row=f"{row}b",
            name=f"GET p99 at half of peak ({rate}/s), {backend}",
            value=get_p99,
            unit="ms",
            baseline=hello_fixed.summary()["p99_ms"],
            baseline_name="/healthz at the same rate",
            target=f"≤ {P99_TARGET_MS:g} ms",
            met=get_p99 <= P99_TARGET_MS,
            details={"get": get_fixed.summary(), "healthz": hello_fixed.summary()},
        ),
        Result(
            row=f"{create_row}a",
            name=f"POST /v1/videos creates/s ({2 * seconds} s), {backend}",
            value=create.requests_per_second,
            unit="req/s",
            baseline=hello.requests_per_second,
            baseline_name="/healthz",
            target=f"≥ {CREATE_TARGET:,.0f}/s",
            met=create.requests_per_second >= CREATE_TARGET,
            note=f"server CPU per create: {create_cpu:.0f} µs",
            details={"create": _row(create), "server_cpu_us_per_create": round(create_cpu, 1), "profile": top},
        ),
        Result(
            row=f"{create_row}b",
            name=f"POST p99 at {CREATE_RATE:g}/s, {backend}",
            value=post_100.summary()["p99_ms"],
            unit="ms",
            baseline=hello_100.summary()["p99_ms"],
            baseline_name=f"/healthz at {CREATE_RATE:g}/s",
            target=f"≤ {P99_TARGET_MS:g} ms",
            met=post_100.summary()["p99_ms"] <= P99_TARGET_MS,
            details={"post": post_100.summary(), "healthz": hello_100.summary()},
        ),
    ]


def _cpu_per_request(pid: int, run: Any, seconds: float, others: list[int] | None = None) -> tuple[Any, float, float]:
    """Run a wrk pass; also the server's CPU µs per request (a busy machine disturbs it less than req/s),
    and the CPU µs per request of ``others`` (PostgreSQL's processes, which share the two cores)."""
    pids, extra = descendants(pid), [p for o in others or [] for p in descendants(o)]
    before, before_extra = sum(map(cpu_seconds, pids)), sum(map(cpu_seconds, extra))
    row = run()
    n = row.requests_per_second * seconds
    used, used_extra = sum(map(cpu_seconds, pids)) - before, sum(map(cpu_seconds, extra)) - before_extra
    return row, used / n * 1e6, used_extra / n * 1e6


def _row(row: Any) -> dict[str, float]:
    return {"requests_per_second": row.requests_per_second, "p50_ms": row.p50_ms, "p99_ms": row.p99_ms}


def run_http(
    backends: Backends | None = None,
    *,
    seconds: int = 5,
    connections: int = 32,
    which: str = "both",
    profile: bool = False,
) -> list[Result]:
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        if backends is None and which != "sqlite":
            backends = stack.enter_context(Backends())
        tmp = Path(stack.enter_context(tempdir("latency")))
        for backend in ["sqlite", "postgres"] if which == "both" else [which]:
            env = backends.env("latency") if backend == "postgres" and backends is not None else {}
            db_pids = backends.postgres_pids() if backend == "postgres" and backends is not None else None
            results += http_rows(backend, env, seconds, connections, tmp, profile, db_pids)
    return results


# ---- row 3: CPU per GET, in process -----------------------------------------------------------


async def _in_process(calls: int, batches: int, profile_calls: int) -> dict[str, Any]:
    from vidgate.gateway.api.poll import PollFastPath
    from vidgate.gateway.app import create_app
    from vidgate.gateway.settings import load_settings

    with tempdir("cpu") as tmp:
        app = create_app(load_settings(data_dir=tmp), run_worker=True)
        async with app.router.lifespan_context(app):
            g = app.state.gateway
            key = await g.keys.create("bench", 10_000_000)
            row, _ = await g.jobs.create(key.id, CREATE_BODY.encode(), idempotency_key=None, request_id="req_bench")
            for _ in range(600):
                if (await g.jobs.row(key.id, row.id)).status == "completed":
                    break
                await asyncio.sleep(0.05)
            else:
                raise RuntimeError("the in-process job did not complete")

            def scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
                return {
                    "type": "http",
                    "asgi": {"version": "3.0", "spec_version": "2.4"},
                    "http_version": "1.1",
                    "method": "GET",
                    "scheme": "http",
                    "path": path,
                    "raw_path": path.encode(),
                    "query_string": b"",
                    "root_path": "",
                    "headers": [(b"host", b"127.0.0.1:8080"), *headers],
                    "client": ("127.0.0.1", 40000),
                    "server": ("127.0.0.1", 8080),
                    "extensions": {},
                }

            statuses: list[int] = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            get_scope = scope(f"/v1/videos/{row.id}", [(b"authorization", f"Bearer {key.key}".encode())])
            hello_scope = scope("/healthz", [])

            async def loop(s: dict[str, Any], n: int) -> tuple[float, float]:
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(n):
                    await app({**s, "state": {}}, receive, send)
                return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6

            await loop(get_scope, 500)  # warm-up
            await loop(hello_scope, 500)
            layer = app.middleware_stack
            while not isinstance(layer, PollFastPath):  # the middleware that keeps the poll's rendered bodies
                layer = layer.app
            cache = layer.cache

            async def uncached(s: dict[str, Any], n: int) -> tuple[float, float]:
                """The GET with its body rendered every time, as on the first poll of each job version."""
                wall, cpu = time.perf_counter(), time.process_time()
                for _ in range(n):
                    cache.clear()
                    await app({**s, "state": {}}, receive, send)
                return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6

            best: dict[str, list[float]] = {"get": [1e9, 1e9], "hello": [1e9, 1e9], "uncached": [1e9, 1e9]}
            for _ in range(batches):  # alternating, best of each: a busy machine slows both alike
                for name, s, run in (("get", get_scope, loop), ("hello", hello_scope, loop),
                                     ("uncached", get_scope, uncached)):  # fmt: skip
                    wall, cpu = await run(s, calls)
                    best[name] = [min(best[name][0], wall), min(best[name][1], cpu)]
            if set(statuses) != {200}:
                raise RuntimeError(f"in-process calls answered {set(statuses)}")
            breakdown = await _breakdown(g, key.key, key.id, row.id, calls)
            profiler = cProfile.Profile()
            profiler.enable()
            await loop(get_scope, profile_calls)
            profiler.disable()
    return {"best": best, "profile": _top(profiler, profile_calls), "breakdown": breakdown}


async def _breakdown(g: Any, key: str, owner: str, job_id: str, n: int) -> dict[str, float]:
    """CPU µs of each step of the GET on its own (best of three loops), without a profiler's overhead."""
    from vidgate.gateway.api.http import json_response

    header = f"Bearer {key}"
    row = await g.jobs.row(owner, job_id)
    video = g.jobs.view(row)

    async def auth() -> None:
        await g.keys.throttle(await g.keys.authenticate(header))

    async def read() -> None:
        await g.jobs.row(owner, job_id)

    async def view() -> None:
        g.jobs.view(row)

    async def respond() -> None:
        json_response(video)

    out = {}
    for name, step in (("auth (cached key)", auth), ("read the row", read), ("render the view", view),
                       ("encode + Response", respond)):  # fmt: skip
        best = 1e9
        for _ in range(3):
            cpu = time.process_time()
            for _ in range(n):
                await step()
            best = min(best, (time.process_time() - cpu) / n * 1e6)
        out[name] = round(best, 2)
    return out


def _top(profiler: cProfile.Profile, calls: int, n: int = 18) -> list[dict[str, Any]]:
    """The functions with the most own time per GET (µs, under cProfile, which inflates small calls)."""
    stats = pstats.Stats(profiler)
    rows = []
    for (file, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{_short(file)}:{line}({func})" if line else func
        rows.append(
            {
                "function": where,
                "calls_per_get": round(ncalls / calls, 2),
                "own_us": round(tottime / calls * 1e6, 2),
                "cumulative_us": round(cumtime / calls * 1e6, 2),
            }
        )
    rows.sort(key=lambda r: r["own_us"], reverse=True)
    return rows[:n]


def _short(file: str) -> str:
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in file:
            return file.split(marker, 1)[1]
    return os.path.basename(file)


def print_profile(profile: list[dict[str, Any]]) -> None:
    print("cProfile of GET /v1/videos/{id} in process, per call (top by own time):")
    print(f"{'own µs':>8} {'cum µs':>8} {'calls':>6}  function")
    for r in profile:
        print(f"{r['own_us']:>8.2f} {r['cumulative_us']:>8.2f} {r['calls_per_get']:>6g}  {r['function']}")


def run_cpu(*, calls: int = 3000, batches: int = 5, profile_calls: int = 3000, verbose: bool = True) -> list[Result]:
    with pinned({0}):
        out = asyncio.run(_in_process(calls, batches, profile_calls))
    get_wall, get_cpu = out["best"]["get"]
    hello_wall, hello_cpu = out["best"]["hello"]
    uncached_wall, uncached_cpu = out["best"]["uncached"]
    if verbose:
        print_profile(out["profile"])
        print("CPU µs per step of the GET, each timed alone:", out["breakdown"])
    return [
        Result(
            row="3",
            name="CPU per GET /v1/videos/{id}, ASGI in process",
            value=get_cpu,
            unit="µs",
            baseline=hello_cpu,
            baseline_name="/healthz in process",
            target="≤ 40 µs and ≤ 3× /healthz",
            met=get_cpu <= 40 and get_cpu <= 3 * hello_cpu,
            note=f"process_time; the same GET rendering its body every time: {uncached_cpu:.1f} µs",
            details={
                "get_wall_us": round(get_wall, 2),
                "get_cpu_us": round(get_cpu, 2),
                "healthz_wall_us": round(hello_wall, 2),
                "healthz_cpu_us": round(hello_cpu, 2),
                "get_uncached_wall_us": round(uncached_wall, 2),
                "get_uncached_cpu_us": round(uncached_cpu, 2),
                "breakdown_us": out["breakdown"],
                "calls_per_batch": calls,
                "batches": batches,
                "profile": out["profile"],
            },
        )
    ]


GROUPS = {"latency": "rows 1, 2, 4", "cpu": "row 3"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="latency,cpu", help="latency (rows 1, 2, 4), cpu (row 3)")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="py-spy the server during an extra create run")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results: list[Result] = []
    only = args.only.split(",")
    if "latency" in only:
        results += run_http(seconds=args.seconds, which=args.backend, profile=args.profile)
    if "cpu" in only:
        results += run_cpu()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2, default=str))


if __name__ == "__main__":
    main()
