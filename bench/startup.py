"""API process start-up time and idle memory, next to a hello-world app on the same server.

``vidgate api --workers 1`` (SQLite, no job worker) is started three times; start-up is the time from
``Popen`` to the first ``200`` from ``/healthz``. After a few requests (a key created, a list, polls of
``/healthz``) and a second of quiet, RSS (VmRSS) is read for Granian's worker process (the one that
runs the app) and for the whole process tree. The baseline is a bare ASGI hello-world app started
the same way (Granian, one worker, same options), so the ratio is what vidgate itself adds.
``python -X importtime -c "import vidgate.gateway.app"`` says which imports the start-up pays for.

Run ``python -m bench.startup [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    ROOT,
    Result,
    _pin,
    bench_env,
    create_key,
    descendants,
    free_port,
    rss_mb,
    stop_server,
    table,
    tempdir,
)

RSS_TARGET_MB = 60.0
START_TARGET_S = 1.0
RUNS = 3


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The baseline: the smallest ASGI app Granian can serve (lifespan and one response)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "http":
        body = b'{"status":"ok"}'
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _serve_hello(port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    # The options vidgate.cli.main._serve uses, with the hello app.
    Granian(
        "bench.startup:hello_app",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        log_access=False,
        websockets=True,
        backlog=2048,
    ).serve()


def _start(argv: list[str], port: int, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], float]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*_pin("0"), sys.executable, *argv],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    with httpx.Client(timeout=0.5) as client:
        while True:
            try:
                if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    return proc, time.perf_counter() - started
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.perf_counter() - started > 60:
                raise RuntimeError(f"{argv} did not start")
            time.sleep(0.005)


def _memory(proc: subprocess.Popen[bytes]) -> dict[str, float]:
    pids = descendants(proc.pid)
    sizes = {pid: rss_mb(pid) for pid in pids}
    workers = [pid for pid in pids if pid != proc.pid]
    worker = max(workers, key=lambda p: sizes[p]) if workers else proc.pid
    return {"worker_mb": sizes[worker], "tree_mb": sum(sizes.values()), "processes": len(pids)}


def measure(kind: str, tmp: Path) -> dict[str, Any]:
    starts, memory = [], []
    data = tmp / "data"
    for _ in range(RUNS):
        port = free_port()
        if kind == "vidgate":
            argv = ["-m", "vidgate.cli.main", "api", "--workers", "1", "--port", str(port), "--data-dir", str(data)]
        else:
            argv = ["-m", "bench.startup", "hello", "--port", str(port)]
        env = {**bench_env(), "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        proc, seconds = _start(argv, port, env)
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=10) as client:
                if kind == "vidgate":
                    key = create_key(base, "startup")
                    auth = {"Authorization": f"Bearer {key}"}
                    for _ in range(5):
                        client.get("/v1/videos", headers=auth).raise_for_status()
                        client.get("/v1/videos/models", headers=auth).raise_for_status()
                for _ in range(20):
                    client.get("/healthz").raise_for_status()
            time.sleep(1.0)
            memory.append(_memory(proc))
        finally:
            stop_server(proc)
        starts.append(seconds)
    return {
        "start_seconds": starts,
        "start_median_s": statistics.median(starts),
        "worker_mb": statistics.median(m["worker_mb"] for m in memory),
        "tree_mb": statistics.median(m["tree_mb"] for m in memory),
        "processes": memory[-1]["processes"],
    }


def importtime(module: str = "vidgate.gateway.app", top: int = 12) -> dict[str, Any]:
    """``-X importtime``: the total for ``module`` and the imports that cost the most (cumulative, µs)."""
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stderr
    entries = []
    for line in out.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            entries.append((int(m.group(1)), int(m.group(2)), len(m.group(3)) - 1, m.group(4)))
    total = next((c for _, c, _, name in entries if name == module), sum(s for s, _, _, _ in entries))
    # Packages imported at the first two levels, by what they cost with everything they pull in.
    shallow = sorted((e for e in entries if e[2] <= 2), key=lambda e: e[1], reverse=True)[:top]
    wall = {}
    for label, code in (("python -c pass", "pass"), (f"python -c 'import {module}'", f"import {module}")):
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
            runs.append(time.perf_counter() - started)
        wall[label] = round(min(runs), 3)
    return {
        "total_ms": round(total / 1000, 1),
        "top": [
            {"module": n, "cumulative_ms": round(c / 1000, 1), "self_ms": round(s / 1000, 1)} for s, c, _, n in shallow
        ],
        "wall_s": wall,
    }


def run() -> list[Result]:
    with tempdir("startup") as tmp_name:
        tmp = Path(tmp_name)
        hello = measure("hello", tmp)
        ours = measure("vidgate", tmp)
    imports = importtime()
    print(f"python -X importtime: import vidgate.gateway.app = {imports['total_ms']} ms cumulative; heaviest:")
    for e in imports["top"]:
        print(f"  {e['cumulative_ms']:>8.1f} ms  {e['module']}")
    print("  wall:", imports["wall_s"])
    details = {"vidgate": ours, "hello": hello, "importtime": imports}
    return [
        Result(
            row="13a",
            name="API idle RSS, Granian worker process (vidgate api --workers 1)",
            value=ours["worker_mb"],
            unit="MB",
            baseline=hello["worker_mb"],
            baseline_name="hello-world app, same server",
            target=f"≤ {RSS_TARGET_MB:g} MB",
            met=ours["worker_mb"] <= RSS_TARGET_MB,
            note="MB here is MiB (VmRSS)",
            details=details,
        ),
        Result(
            row="13b",
            name=f"API idle RSS, whole process tree ({ours['processes']} processes)",
            value=ours["tree_mb"],
            unit="MB",
            baseline=hello["tree_mb"],
            baseline_name="hello-world app, same server",
            target="reported",
            met=None,
            details=details,
        ),
        Result(
            row="13c",
            name="API start-up: process start → first 200 from /healthz (median of 3)",
            value=ours["start_median_s"],
            unit="s",
            baseline=hello["start_median_s"],
            baseline_name="hello-world app, same server",
            target=f"≤ {START_TARGET_S:g} s",
            met=ours["start_median_s"] <= START_TARGET_S,
            details=details,
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    if argv is None and sys.argv[1:2] == ["hello"]:
        port = int(sys.argv[sys.argv.index("--port") + 1])
        _serve_hello(port)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = run()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2))


if __name__ == "__main__":
    main()
