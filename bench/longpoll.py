"""Row 14 (group ``longpoll``): how a client follows one job: requests per job, and change → client latency.

Three ways on the embedded gateway (``vidgate serve``, SQLite, the built-in provider, pinned to
core 0; clients on core 1), each following the same jobs (a render of about two seconds, with ten
progress steps and a completion):

- plain polling: ``GET /v1/videos/{id}`` at the pace ``poll_after_seconds`` asks for (1 s at least);
- long polling: a first GET, then ``?wait=25`` with ``If-None-Match`` on the tag last seen;
- the websocket ``/v1/async/video/{id}/ws``.

Each change is a row of the events table: its commit time and the job's status and progress. Its
latency is the time from that commit to the first answer the client received that shows the job at
least that far along (same clock: one machine). Requests per job count HTTP requests (a websocket
is one, plus the messages it carried, in the details).

Run ``python -m bench.longpoll [--jobs N] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets

from bench.common import (
    Result,
    create_key,
    free_port,
    percentile,
    pinned,
    start_server,
    stop_server,
    table,
    tempdir,
)

JOB = {"model": "vidgate/procedural", "prompt": "long poll bench", "duration": 8, "size": "640x360"}
RANK = {"queued": 0, "processing": 1, "completed": 2, "failed": 2, "cancelled": 2, "expired": 2}
HOLD_SECONDS = 25
Seen = list[tuple[float, tuple[int, int]]]  # (ms received, (status rank, progress)) per answer


def _mark(video: dict[str, Any]) -> tuple[int, int]:
    return RANK[video["status"]], int(video.get("progress") or 0)


def _done(video: dict[str, Any]) -> bool:
    return RANK[video["status"]] == 2


async def _plain(http: httpx.AsyncClient, job_id: str, seen: Seen) -> int:
    requests = 0
    while True:
        r = await http.get(f"/v1/videos/{job_id}")
        requests += 1
        video = r.json()
        seen.append((time.time() * 1000, _mark(video)))
        if _done(video):
            return requests
        await asyncio.sleep(max(1, video.get("poll_after_seconds") or 1))


async def _long(http: httpx.AsyncClient, job_id: str, seen: Seen) -> int:
    requests, tag, video = 0, None, None
    while True:
        if tag is None:
            r = await http.get(f"/v1/videos/{job_id}")
        else:
            r = await http.get(
                f"/v1/videos/{job_id}", params={"wait": HOLD_SECONDS}, headers={"If-None-Match": tag}, timeout=60
            )
        requests += 1
        if r.status_code == 200:
            video, tag = r.json(), r.headers["etag"]
            seen.append((time.time() * 1000, _mark(video)))
        assert video is not None, r.text
        if _done(video):
            return requests


async def _socket(base: str, key: str, job_id: str, seen: Seen, messages: list[int]) -> int:
    url = base.replace("http", "ws", 1) + f"/v1/async/video/{job_id}/ws"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
        async for raw in ws:
            message = orjson.loads(raw)
            messages[0] += 1
            video = message.get("data")
            if video:
                seen.append((time.time() * 1000, _mark(video)))
                if _done(video):
                    break
    return 1


def _changes(db: Path, job_id: str) -> list[tuple[float, tuple[int, int]]]:
    """Each committed change of the job: (ms committed, (status rank, progress))."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT created_at, data FROM events WHERE job_id = ? ORDER BY id", (job_id,)).fetchall()
    finally:
        conn.close()
    out = []
    for created, data in rows:
        video = orjson.loads(data)
        out.append((float(created), _mark(video.get("data", video))))
    return out


def _latencies(changes: list[tuple[float, tuple[int, int]]], seen: Seen) -> list[float]:
    out = []
    for at, mark in changes:
        shown = [t for t, m in seen if m >= mark and t >= at]
        if shown:
            out.append(min(shown) - at)
    return out


async def _follow(
    base: str, key: str, jobs: int, how: Callable[[httpx.AsyncClient, str, Seen], Awaitable[int]], db: Path
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
        created = [(await http.post("/v1/videos", json={**JOB, "seed": n})).json()["id"] for n in range(jobs)]
        seens: list[Seen] = [[] for _ in created]
        requests = await asyncio.gather(*(how(http, j, s) for j, s in zip(created, seens, strict=True)))
    latencies = [ms for j, s in zip(created, seens, strict=True) for ms in _latencies(_changes(db, j), s)]
    return {
        "requests_per_job": sum(requests) / jobs,
        "p50_ms": round(percentile(latencies, 50), 1),
        "p99_ms": round(percentile(latencies, 99), 1),
        "changes": len(latencies),
    }


async def _measure(base: str, key: str, jobs: int, db: Path) -> dict[str, dict[str, Any]]:
    messages = [0]

    async def socket(http: httpx.AsyncClient, job_id: str, seen: Seen) -> int:
        return await _socket(base, key, job_id, seen, messages)

    out = {
        "plain": await _follow(base, key, jobs, _plain, db),
        "long": await _follow(base, key, jobs, _long, db),
        "websocket": await _follow(base, key, jobs, socket, db),
    }
    out["websocket"]["messages_per_job"] = messages[0] / jobs
    return out


def run(jobs: int = 6) -> list[Result]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempdir("longpoll") as tmp:
        data = Path(tmp) / "data"
        proc = start_server(data, port, {"VIDGATE_DEFAULT_BALANCE_USD": "1000"}, log=Path(tmp) / "serve.log")
        try:
            key = create_key(base, "bench-longpoll")
            with pinned({1}):
                got = asyncio.run(_measure(base, key, jobs, data / "vidgate.db"))
        finally:
            stop_server(proc)
    plain, long, socket = got["plain"], got["long"], got["websocket"]
    names = {"plain": "plain polling (poll_after_seconds, ≥ 1 s)", "long": "long polling (?wait=25)"}
    rows = []
    for letter, kind in (("a", "plain"), ("b", "long")):
        m = got[kind]
        rows.append(
            Result(
                row=f"14{letter}",
                name=f"follow a job by {names[kind]}: change → client p50 (p99 {m['p99_ms']:.0f} ms)",
                value=m["p50_ms"],
                unit="ms",
                baseline=socket["p50_ms"],
                baseline_name="websocket, same jobs",
                target="reported",
                met=None,
                note=f"{m['requests_per_job']:.1f} requests per job (websocket: 1, "
                f"{socket['messages_per_job']:.1f} messages; p99 {socket['p99_ms']:.0f} ms)",
                details={"plain": plain, "long": long, "websocket": socket, "jobs": jobs},
            )
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=6)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = run(args.jobs)
    print(table(results))
    for r in results[:1]:
        print(json.dumps(r.details, indent=2))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
