"""Streams never miss an event, and an API process that is told to stop hands its streams back.

(a) Two API processes and a worker on PostgreSQL: API B's LISTEN connection is killed again and again
for a few seconds while the jobs its streams watch finish elsewhere; every stream still gets its
terminal event and closes. (b) Resuming with ``Last-Event-ID`` or ``since=`` delivers exactly the
events after that id. (c) SIGTERM closes websockets with 1001, ends event streams and the process exits.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from helpers.backends import migrate, postgres_env, rows
from helpers.gateway import GatewayProcess, wait_status

from reliability.test_outage import family

TERMINAL = {"completed", "failed", "cancelled", "expired"}
SHORT = {"model": "vidgate/procedural", "prompt": "gaps", "duration": 1, "size": "160x90"}
MEDIUM = {"model": "vidgate/procedural", "prompt": "resume", "duration": 3, "size": "320x180"}
LONG = {"model": "vidgate/procedural", "prompt": "drain", "duration": 10, "size": "640x360"}
CUT_SECONDS = 6.0
CUT_CAP = 45.0
SETTLE_SECONDS = 60.0
STREAMS_EACH = 30  # websockets, and as many event streams: 60 in all
POSTGRES = "postgres" in os.environ.get("VIDGATE_TEST_BACKENDS", "sqlite,postgres")


def ws_url(gw: GatewayProcess, job_id: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return gw.base_url.replace("http", "ws") + f"/v1/async/video/{job_id}/ws" + (f"?{query}" if query else "")


async def follow_ws(url: str, key: str, opened: asyncio.Event | None = None) -> tuple[list[dict[str, Any]], int]:
    """Every message of one socket until it closes, and the close code."""
    seen: list[dict[str, Any]] = []
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {key}"}, open_timeout=20) as ws:
        try:
            async for raw in ws:
                seen.append(json.loads(raw))
                if opened is not None:
                    opened.set()
        except websockets.ConnectionClosed:
            pass
        return seen, ws.close_code or 0


def parse_frames(lines: list[str]) -> list[dict[str, Any]]:
    frames, frame = [], {}
    for line in lines:
        if line == "":
            if frame:
                frames.append(frame)
            frame = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            frame[name] = json.loads(value) if name == "data" else value
    if frame:
        frames.append(frame)
    return [f for f in frames if "event" in f and "data" in f]


async def follow_sse(
    client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None, opened: asyncio.Event | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """The status and the event frames of one event stream, read until the server ends it."""
    lines: list[str] = []
    async with client.stream("GET", url, headers=headers or {}) as r:
        if r.status_code != 200:
            await r.aread()
            return r.status_code, []
        async for line in r.aiter_lines():
            lines.append(line)
            if opened is not None and line.startswith("event:"):
                opened.set()
    return 200, parse_frames(lines)


def event_ids(gw: GatewayProcess, job_id: str) -> list[str]:
    return [r[0] for r in rows(gw, "SELECT id FROM events WHERE job_id = ? ORDER BY seq", job_id)]


# ---- (a) a lost LISTEN connection ---------------------------------------------------------------


def listener_names(api: GatewayProcess) -> list[str]:
    return [f"vidgate-listen-{p}" for p in family(api.proc.pid)]  # type: ignore[union-attr]


_KILL = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ANY($1::text[])"


def cut_listener(gw: GatewayProcess, api: GatewayProcess, done: threading.Event) -> int:
    """Kill ``api``'s LISTEN connection every few ms, so it is down all along, for at least
    ``CUT_SECONDS`` and until ``done`` (every job ended, so every terminal event was sent while it
    was cut); how many connections were killed."""
    import asyncpg

    names = listener_names(api)

    async def go() -> int:
        conn = await asyncpg.connect(gw.env["VIDGATE_DATABASE_URL"])
        killed, began = 0, time.monotonic()
        try:
            while time.monotonic() < began + CUT_SECONDS or not (done.is_set() or time.monotonic() > began + CUT_CAP):
                killed += await conn.fetchval(_KILL, names)
                await asyncio.sleep(0.005)
        finally:
            await conn.close()
        return killed

    return asyncio.run(go())


@pytest.fixture(scope="module")
def two_apis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProcess, GatewayProcess, str]]:
    if not POSTGRES:
        pytest.skip("PostgreSQL + S3 only")
    from infra.postgres import PostgresServer
    from infra.seaweed import SeaweedS3

    pg, s3 = PostgresServer().start(), SeaweedS3().start()
    root = tmp_path_factory.mktemp("gaps")
    env = {**postgres_env(pg, s3, "gaps"), "VIDGATE_MAX_WEBSOCKETS_PER_KEY": "1000", "VIDGATE_SIGNING_SECRET": "gaps"}
    migrate(env)
    procs = [
        GatewayProcess(root / "a", env=env, command="api", log_name="api", args=("--workers", "1")),
        GatewayProcess(root / "b", env=env, command="api", log_name="api", args=("--workers", "1")),
        GatewayProcess(root / "worker", env=env, command="worker", log_name="worker"),
    ]
    for p in procs:
        p.start()
    try:
        yield procs[0], procs[1], procs[0].new_key("gaps", balance=100.0)
    finally:
        for p in procs:
            p.kill()
        s3.stop()
        pg.stop()


def test_streams_survive_a_lost_listen_connection(two_apis: tuple[GatewayProcess, GatewayProcess, str]) -> None:
    a, b, key = two_apis
    names = listener_names(b)
    found = rows(a, "SELECT pid FROM pg_stat_activity WHERE application_name = ANY(?::text[])", names)
    assert found, "API B's LISTEN connection is not visible in pg_stat_activity"
    result, seconds = asyncio.run(watch_through_cut(a, b, key))
    missing = [k for k, (status, code) in result.items() if status not in TERMINAL or code not in (1000, 200)]
    missing += [f"hung:{n}" for n in range(2 * STREAMS_EACH - len(result))]
    cut = f"LISTEN cut for {seconds:.0f}s"
    print(f"\n{len(result)} streams on API B, {cut}: {len(missing)} missed the terminal event")
    assert not missing, missing


async def watch_through_cut(a: GatewayProcess, b: GatewayProcess, key: str) -> tuple[dict[str, tuple[str, int]], float]:
    auth = {"Authorization": f"Bearer {key}"}
    result: dict[str, tuple[str, int]] = {}
    async with httpx.AsyncClient(headers=auth, timeout=httpx.Timeout(120, connect=20)) as client:
        all_ended = threading.Event()
        began = time.monotonic()
        cut = asyncio.create_task(asyncio.to_thread(cut_listener, a, b, all_ended))
        await asyncio.sleep(0.3)  # the first kill lands before any job starts
        tasks, ids = [], []

        async def by_ws(job_id: str) -> None:
            seen, code = await follow_ws(ws_url(b, job_id), key)
            updates = [m for m in seen if m["type"] in ("job.updated", "job.snapshot")]
            result[f"ws:{job_id}"] = (updates[-1]["data"]["status"] if updates else "none", code)

        async def by_sse(job_id: str) -> None:
            status, frames = await follow_sse(client, b.base_url + f"/v1/videos/{job_id}/events")
            result[f"sse:{job_id}"] = (frames[-1]["data"]["data"]["status"] if frames else "none", status)

        for n in range(STREAMS_EACH):
            r = await client.post(a.base_url + "/v1/videos", json={**SHORT, "seed": n})
            assert r.status_code == 202, r.text
            tasks += [asyncio.create_task(by_ws(r.json()["id"])), asyncio.create_task(by_sse(r.json()["id"]))]
            ids.append(r.json()["id"])
        while not all_ended.is_set() and not cut.done():  # polled on API A, whose bus is not cut
            page = await client.get(a.base_url + "/v1/videos", params={"status": "completed", "limit": 100})
            if len({v["id"] for v in page.json()["data"]} & set(ids)) == len(ids):
                all_ended.set()
            await asyncio.sleep(0.2)
        killed = await cut
        seconds = time.monotonic() - began
        assert killed >= 2  # it came back and was cut again: a real gap, not one blip
        _, hung = await asyncio.wait(tasks, timeout=SETTLE_SECONDS)  # the safety net alone re-reads within 10 s
        for task in hung:
            task.cancel()  # a stream still open this long after its job ended: it missed the terminal event
        await asyncio.gather(*hung, return_exceptions=True)
    return result, seconds


# ---- (b) resume ---------------------------------------------------------------------------------


@pytest.mark.both_backends
def test_resume_after_an_event_id_delivers_exactly_the_rest(
    gateway: GatewayProcess, api: httpx.Client, key: str
) -> None:
    job = api.post("/v1/videos", json=MEDIUM).json()
    # Live: read the snapshot and two updates, drop the stream, resume with Last-Event-ID.
    first: list[dict[str, Any]] = []
    with api.stream("GET", f"/v1/videos/{job['id']}/events", timeout=60) as r:
        lines: list[str] = []
        for line in r.iter_lines():
            lines.append(line)
            first = parse_frames(lines)
            if len(first) >= 3 or (first and first[-1]["data"]["data"]["status"] in TERMINAL):
                break
    last_id = first[-1]["id"]
    with api.stream("GET", f"/v1/videos/{job['id']}/events", headers={"Last-Event-ID": last_id}, timeout=60) as r:
        assert r.status_code in (200, 204)
        rest = parse_frames(list(r.iter_lines())) if r.status_code == 200 else []
    table = event_ids(gateway, job["id"])
    assert [f["id"] for f in rest] == table[table.index(last_id) + 1 :]  # none missing, none twice, in order
    assert all(f["event"] == "job.updated" for f in rest)
    wait_status(api, job["id"], TERMINAL)

    # Finished: from every position, websocket since= and Last-Event-ID give exactly what follows.
    table = event_ids(gateway, job["id"])
    for k in (0, len(table) // 2, len(table) - 2):
        since = table[k]
        with api.stream("GET", f"/v1/videos/{job['id']}/events", headers={"Last-Event-ID": since}) as r:
            assert r.status_code == 200
            sse = [f["id"] for f in parse_frames(list(r.iter_lines()))]
        seen, code = asyncio.run(follow_ws(ws_url(gateway, job["id"], since=since), key))
        assert sse == table[k + 1 :] and [m["id"] for m in seen] == table[k + 1 :], (k, sse, seen)
        assert code == 1000 and all(m["type"] == "job.updated" for m in seen)
        with api.stream("GET", f"/v1/videos/{job['id']}/events", params={"since": since}) as r:
            assert [f["id"] for f in parse_frames(list(r.iter_lines()))] == table[k + 1 :]
    # Nothing after the last id: the event stream says stop (204), the socket closes with nothing sent.
    assert api.get(f"/v1/videos/{job['id']}/events", headers={"Last-Event-ID": table[-1]}).status_code == 204
    assert asyncio.run(follow_ws(ws_url(gateway, job["id"], since=table[-1]), key)) == ([], 1000)
    # An id that is not one of the job's events is refused, not silently treated as "from the start".
    r = api.get(f"/v1/videos/{job['id']}/events", params={"since": "evt_nope"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "since"
    assert asyncio.run(follow_ws(ws_url(gateway, job["id"], since="evt_nope"), key))[1] == 4400


@pytest.mark.both_backends
def test_every_message_carries_its_event_id(gateway: GatewayProcess, api: httpx.Client, key: str) -> None:
    job = api.post("/v1/videos", json=SHORT).json()
    seen, code = asyncio.run(follow_ws(ws_url(gateway, job["id"]), key))
    assert code == 1000 and seen[0]["type"] == "job.snapshot"
    table = event_ids(gateway, job["id"])
    assert all(m["id"] in table for m in seen if m["type"] in ("job.snapshot", "job.updated"))
    at = [table.index(m["id"]) for m in seen if m["type"] == "job.updated"]
    assert at == sorted(set(at)) and all(i > table.index(seen[0]["id"]) for i in at)  # in order, once each
    assert not at or at[-1] == len(table) - 1


# ---- (c) SIGTERM --------------------------------------------------------------------------------


def poll_readyz(base_url: str, stop: threading.Event, seen: list[int]) -> None:
    """Ask /readyz on one kept-alive connection until told to stop; record every status."""
    with httpx.Client(base_url=base_url, timeout=2) as c:
        while not stop.is_set():
            try:
                r = c.get("/readyz")
                seen.append(r.status_code)
                if r.status_code == 503:
                    assert r.json()["error"]["code"] == "service_unavailable"
            except httpx.HTTPError:
                seen.append(0)
            time.sleep(0.02)


@pytest.mark.parametrize("command", ["serve", "api"])
def test_sigterm_hands_streams_back(command: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    env: dict[str, str] = {}
    worker: GatewayProcess | None = None
    if command == "api":
        if not POSTGRES:
            pytest.skip("PostgreSQL + S3 only")
        pg, s3 = request.getfixturevalue("pg_server"), request.getfixturevalue("s3_server")
        env = {**postgres_env(pg, s3, f"drain_{os.getpid()}"), "VIDGATE_SIGNING_SECRET": "drain"}
        migrate(env)
        worker = GatewayProcess(tmp_path / "worker", env=env, command="worker", log_name="worker").start()
    args = ("--workers", "1") if command == "api" else ()
    gw = GatewayProcess(tmp_path / command, env=env, command=command, log_name=command, args=args).start()
    try:
        key = gw.new_key("drain", balance=100.0)
        with gw.client(key) as api:
            job = api.post("/v1/videos", json=LONG).json()
            wait_status(api, job["id"], {"processing"})
        statuses: list[int] = []
        stop = threading.Event()
        poller = threading.Thread(target=poll_readyz, args=(gw.base_url, stop, statuses), daemon=True)
        poller.start()
        outcome = asyncio.run(drain_streams(gw, key, job["id"]))
        stop.set()
        poller.join(10)
    finally:
        gw.kill()
        if worker is not None:
            worker.kill()
    (_, ws_code), (sse_status, sse_frames), exited = outcome
    print(
        f"\n{command}: websocket closed {ws_code}, event stream ended after {len(sse_frames)} frames, "
        f"exited in {exited:.1f}s; /readyz answered 503 {statuses.count(503)} times while draining"
    )
    assert ws_code == 1001
    assert sse_status == 200 and sse_frames and sse_frames[-1]["data"]["data"]["status"] not in TERMINAL
    assert exited < 90  # bounded: an open stream on a long job does not hold the process


async def drain_streams(gw: GatewayProcess, key: str, job_id: str) -> tuple[Any, Any, float]:
    ws_open, sse_open = asyncio.Event(), asyncio.Event()
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=120) as client:
        ws = asyncio.create_task(follow_ws(ws_url(gw, job_id), key, ws_open))
        sse = asyncio.create_task(follow_sse(client, gw.base_url + f"/v1/videos/{job_id}/events", opened=sse_open))
        await asyncio.wait_for(asyncio.gather(ws_open.wait(), sse_open.wait()), 30)
        began = time.monotonic()
        os.killpg(gw.proc.pid, signal.SIGTERM)  # type: ignore[union-attr]
        ws_result, sse_result = await asyncio.wait_for(asyncio.gather(ws, sse), 90)
        while gw.proc.poll() is None and time.monotonic() - began < 90:  # type: ignore[union-attr]
            await asyncio.sleep(0.1)
        return ws_result, sse_result, time.monotonic() - began
