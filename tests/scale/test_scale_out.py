"""Two API and two worker processes on PostgreSQL + S3: 200 jobs, a worker killed halfway, nothing lost."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from helpers.backends import migrate, postgres_env, rows
from helpers.gateway import GatewayProcess
from helpers.ledger import check_ledger

JOBS = 200
BODY = {"model": "vidgate/procedural", "prompt": "scale", "duration": 1, "size": "128x72"}


async def watch(url: str, key: str, seen: list[dict[str, Any]]) -> int:
    """Collect every message of one job's socket until the server closes it; returns the close code."""
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=20) as ws:
        try:
            async for raw in ws:
                seen.append(orjson.loads(raw))
        except websockets.ConnectionClosed:
            pass
        return ws.close_code or 0


def test_two_apis_two_workers_200_jobs_worker_killed(tmp_path: Path, pg_server: Any, s3_server: Any) -> None:
    env = {
        **postgres_env(pg_server, s3_server, "scale_out"),
        "VIDGATE_MAX_WEBSOCKETS_PER_KEY": "1000",
        "VIDGATE_SIGNING_SECRET": "scale-out",
    }
    migrate(env)
    apis = [
        GatewayProcess(tmp_path / f"api{i}", env=env, command="api", log_name="api", args=("--workers", "1"))
        for i in range(2)
    ]
    workers = [GatewayProcess(tmp_path / f"worker{i}", env=env, command="worker", log_name="worker") for i in range(2)]
    for p in (*apis, *workers):
        p.start()
    try:
        key = apis[0].new_key("scale", balance=100.0)
        summary = asyncio.run(drive(apis, workers, key))
    finally:
        for p in (*apis, *workers):
            p.kill()
    ids = summary["ids"]
    gw = apis[0]
    statuses = dict(rows(gw, "SELECT id, status FROM jobs"))
    assert [statuses[i] for i in ids] == ["completed"] * JOBS
    kinds = rows(gw, "SELECT job_id, kind, COUNT(*) FROM ledger WHERE job_id IS NOT NULL GROUP BY job_id, kind")
    per_job: dict[str, dict[str, int]] = {}
    for job_id, kind, n in kinds:
        per_job.setdefault(job_id, {})[kind] = n
    assert all(per_job[i] == {"hold": 1, "charge": 1, "release": 1} for i in ids)
    completed_events = dict(
        rows(gw, "SELECT job_id, COUNT(*) FROM events WHERE type = 'video.completed' GROUP BY job_id")
    )
    assert all(completed_events[i] == 1 for i in ids)
    check_ledger(gw)
    # Both API processes pushed every job's terminal change to their sockets, and closed them with 1000.
    for api_index in (0, 1):
        for job_id in ids:
            messages = summary["seen"][api_index][job_id]
            assert messages and messages[-1]["data"]["status"] == "completed", (api_index, job_id, messages[-1:])
            assert summary["codes"][api_index][job_id] == 1000
    updates = [sum(1 for m in summary["seen"][a][j] if m["type"] == "job.updated") for a in (0, 1) for j in ids]
    assert sum(updates) >= JOBS  # most jobs were watched live, not only from a terminal snapshot
    print(
        f"\n200 jobs in {summary['seconds']:.1f}s, worker killed after {summary['done_at_kill']} completed; "
        f"{summary['takeover']} jobs were held by the killed worker; {sum(updates)} pushed updates"
    )


async def drive(apis: list[GatewayProcess], workers: list[GatewayProcess], key: str) -> dict[str, Any]:
    started = time.monotonic()
    auth = {"Authorization": f"Bearer {key}"}
    seen: list[dict[str, list[dict[str, Any]]]] = [{}, {}]
    codes: list[dict[str, int]] = [{}, {}]
    sockets: list[asyncio.Task[None]] = []

    async def follow(api_index: int, job_id: str) -> None:
        url = apis[api_index].base_url.replace("http", "ws") + f"/v1/async/video/{job_id}/ws"
        seen[api_index][job_id] = []
        codes[api_index][job_id] = await watch(url, key, seen[api_index][job_id])

    ids: list[str] = []
    async with httpx.AsyncClient(headers=auth, timeout=30) as client:
        for n in range(JOBS):
            r = await client.post(apis[n % 2].base_url + "/v1/videos", json={**BODY, "seed": n})
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            ids.append(job_id)
            sockets += [asyncio.create_task(follow(0, job_id)), asyncio.create_task(follow(1, job_id))]
        done_at_kill, takeover = 0, 0
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            page = (
                await client.get(apis[0].base_url + "/v1/videos", params={"status": "completed", "limit": 100})
            ).json()
            done_at_kill = len(page["data"])
            if done_at_kill >= 40:
                break
            await asyncio.sleep(0.1)
        victim = f"worker-{workers[0].proc.pid}-%"  # type: ignore[union-attr]
        held = await asyncio.to_thread(rows, apis[0], "SELECT id FROM jobs WHERE lease_owner LIKE ?", victim)
        takeover = len(held)
        workers[0].kill()
        await asyncio.wait_for(asyncio.gather(*sockets), timeout=240)
    return {
        "ids": ids,
        "seen": seen,
        "codes": codes,
        "seconds": time.monotonic() - started,
        "done_at_kill": done_at_kill,
        "takeover": takeover,
    }
