"""Health and limits that hold for the whole deployment, with real ``vidgate api`` and ``vidgate worker``
processes on one PostgreSQL database (and the embedded one):

- a worker facing a failing upstream opens that provider's circuit, a separate API process's models
  listing shows it, a worker started afterwards routes around it, and a success closes it again;
- a key limited to 2 requests a second, hammered through two API processes, gets no more than its
  one bucket allows; the rest are 429 in the error envelope with Retry-After;
- a key's cap on live jobs holds when its creates race through two API processes.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fakes.openai_fake import OpenAIFake
from fakes.server import FakeUpstream
from helpers.backends import migrate, rows
from helpers.gateway import GatewayProcess, wait_status
from infra.postgres import PostgresUnavailable, find_pg_bindir

try:
    find_pg_bindir()
    PG_MISSING = None
except PostgresUnavailable as exc:
    PG_MISSING = str(exc)

needs_pg = pytest.mark.skipif(PG_MISSING is not None, reason=PG_MISSING or "")
SORA = {"model": "openai/sora-2", "prompt": "a lighthouse in a storm", "duration": 4, "size": "1280x720"}
FAILOVER = {"model": "acme/failover", "prompt": "a lighthouse in a storm", "duration": 1}
LOCAL = {"model": "vidgate/procedural", "prompt": "a lighthouse", "duration": 1, "size": "128x72"}


def config(upstream: str) -> str:
    """OpenAI on the fake, its circuit open after 3 failures for longer than any test runs, and a model
    that openai serves first and the built-in renderer second."""
    return f"""
[providers.openai]
api_key = "sk-test"
base_url = "{upstream}/v1"
poll_interval_seconds = 0.2
timeout_seconds = 5
circuit_failures = 3
circuit_cooldown_seconds = 600

[models."acme/failover"]
name = "Failover"
durations = [1]
resolutions = ["360p"]
aspect_ratios = ["16:9"]
default_resolution = "360p"
default_aspect_ratio = "16:9"
providers = [{{ name = "openai", model = "sora-2" }}, {{ name = "vidgate", model = "procedural-v1" }}]
pricing = {{ per_second = 1000 }}
"""


def eventually(check: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def openai_healthy(api: httpx.Client) -> bool:
    listed = {m["id"]: m for m in api.get("/v1/videos/models").json()["data"]}
    return next(p["healthy"] for p in listed["openai/sora-2"]["providers"] if p["name"] == "openai")


def health_row(gw: GatewayProcess) -> tuple[Any, ...] | None:
    found = rows(gw, "SELECT state, failures, last_error FROM provider_health WHERE provider = 'openai'")
    return found[0] if found else None


@pytest.fixture
def fake() -> Iterator[tuple[OpenAIFake, FakeUpstream]]:
    openai = OpenAIFake(polls_to_complete=2)
    with FakeUpstream(openai.app) as upstream:
        yield openai, upstream


def pg_env(pg: Any, tmp_path: Path, name: str, **extra: str) -> dict[str, str]:
    """A fresh migrated database; outputs in one directory every process on this machine shares."""
    env = {
        "VIDGATE_DATABASE_URL": pg.create_database(f"{name}_{os.getpid()}"),
        "VIDGATE_BLOB_URL": f"file://{tmp_path / 'blobs'}",
        "VIDGATE_SIGNING_SECRET": "shared-health",
        **extra,
    }
    migrate(env)
    return env


def break_open(api: httpx.Client, openai: OpenAIFake) -> None:
    """Creates the upstream refuses with 503 (each retried later), until 3 failures in a row open the
    circuit; then the jobs are cancelled, so nothing more is sent to it."""
    openai.faults.add("create", "503", times=10_000)
    ids = []
    for _ in range(3):
        r = api.post("/v1/videos", json=SORA)
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    eventually(lambda: not openai_healthy(api), "openai to show unhealthy")
    for job_id in ids:
        assert api.post(f"/v1/videos/{job_id}/cancel").status_code == 200
        assert wait_status(api, job_id, {"cancelled"})["status"] == "cancelled"


@needs_pg
def test_a_workers_open_circuit_is_seen_by_the_api_and_every_worker(
    tmp_path: Path, pg_server: Any, fake: tuple[OpenAIFake, FakeUpstream]
) -> None:
    openai, upstream = fake
    (tmp_path / "config.toml").write_text(config(upstream.base_url))
    env = pg_env(pg_server, tmp_path, "health", VIDGATE_CONFIG=str(tmp_path / "config.toml"))
    api_proc = GatewayProcess(tmp_path / "api", env=env, command="api", log_name="api", args=("--workers", "1"))
    first = GatewayProcess(tmp_path / "w1", env=env, command="worker", log_name="worker")
    second = GatewayProcess(tmp_path / "w2", env=env, command="worker", log_name="worker")
    procs = [api_proc.start(), first.start()]
    try:
        key = api_proc.new_key("health", balance=100.0)
        with api_proc.client(key) as api:
            assert openai_healthy(api)
            break_open(api, openai)  # the API process calls no upstream: it shows what the worker wrote
            state, failures, last_error = health_row(api_proc) or ("", 0, "")
            assert state == "open" and failures >= 3 and last_error == "Rejected 503", (state, failures, last_error)

            first.stop()  # a worker that never saw a failure itself, from here on
            procs.append(second.start())
            tried = len(openai.faults.applied)
            r = api.post("/v1/videos", json=FAILOVER)
            assert r.status_code == 202, r.text
            done = wait_status(api, r.json()["id"], {"completed", "failed"}, timeout=120)
            assert done["status"] == "completed", done
            (attempts,) = rows(api_proc, "SELECT attempts FROM jobs WHERE id = ?", done["id"])[0]
            assert [a["provider"] for a in orjson.loads(attempts)] == ["vidgate"]
            assert len(openai.faults.applied) == tried  # openai was passed over, not tried and refused

            openai.faults.clear()  # the upstream recovers; its only model still goes to it
            r = api.post("/v1/videos", json=SORA)
            assert r.status_code == 202, r.text
            eventually(lambda: openai_healthy(api), "the API to show openai healthy again")
            assert (health_row(api_proc) or ())[:2] == ("healthy", 0)
            assert wait_status(api, r.json()["id"], {"completed", "failed"}, timeout=120)["status"] == "completed"
    finally:
        for p in procs:
            p.stop()


def test_embedded_health_is_the_same_record(tmp_path: Path, fake: tuple[OpenAIFake, FakeUpstream]) -> None:
    """``vidgate serve`` on SQLite writes the same table, and another process on the file reads it."""
    openai, upstream = fake
    (tmp_path / "config.toml").write_text(config(upstream.base_url))
    env = {"VIDGATE_CONFIG": str(tmp_path / "config.toml")}
    serve = GatewayProcess(tmp_path / "gw", env=env).start()
    reader = None
    try:
        key = serve.new_key("embedded", balance=100.0)
        with serve.client(key) as api:
            break_open(api, openai)
            eventually(lambda: (health_row(serve) or ("",))[0] == "open", "the circuit in the table")
        reader = GatewayProcess(tmp_path / "gw", env=env, command="api", log_name="api", args=("--workers", "1"))
        reader.start()
        with reader.client(key) as api:
            assert not openai_healthy(api)
    finally:
        if reader is not None:
            reader.stop()
        serve.stop()


async def hammer(urls: list[str], key: str, job_id: str, seconds: float) -> tuple[list[httpx.Response], float]:
    """Requests as fast as 3 connections per API process go, alternating lists and polls, for ``seconds``."""
    answers: list[httpx.Response] = []
    started = time.monotonic()

    async def one_connection(base: str, n: int) -> None:
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
            i = n
            while time.monotonic() - started < seconds:
                path = "/v1/videos" if i % 2 else f"/v1/videos/{job_id}"
                answers.append(await c.get(path))
                i += 1

    await asyncio.gather(*(one_connection(u, n) for u in urls for n in range(3)))
    return answers, time.monotonic() - started


@contextmanager
def api_processes(tmp_path: Path, env: dict[str, str], count: int = 2) -> Iterator[list[GatewayProcess]]:
    """``count`` API processes (one worker each) on the same database, stopped on the way out."""
    apis = [
        GatewayProcess(tmp_path / f"api{i}", env=env, command="api", log_name="api", args=("--workers", "1"))
        for i in range(count)
    ]
    for p in apis:
        p.start()
    try:
        yield apis
    finally:
        for p in apis:
            p.stop()


@needs_pg
def test_a_keys_rate_is_one_bucket_across_api_processes(tmp_path: Path, pg_server: Any) -> None:
    env = pg_env(pg_server, tmp_path, "rate")
    with api_processes(tmp_path, env) as apis:
        key = apis[0].new_key("hammer", balance=10.0)
        with apis[0].client(key) as api:
            job_id = api.post("/v1/videos", json=LOCAL).json()["id"]
        with apis[0].admin() as admin:
            r = admin.patch(
                f"/v1/admin/keys/{apis[0].key_id(key)}/limits", json={"rate_per_second": 2, "rate_burst": 2}
            )
            assert r.status_code == 200, r.text
        time.sleep(2.5)  # past the key cache of the process that just created the job
        answers, elapsed = asyncio.run(hammer([a.base_url for a in apis], key, job_id, 3.0))
        accepted = [r for r in answers if r.status_code == 200]
        refused = [r for r in answers if r.status_code != 200]
        bound = 2 + 2 * elapsed + 1  # the burst, what refills while it lasts, and one at the boundary
        print(f"\n{len(answers)} requests in {elapsed:.1f} s: {len(accepted)} accepted (bound {bound:.1f})")
        assert len(answers) > 4 * bound  # hammered: far more sent than may pass
        assert 3 <= len(accepted) <= bound, (len(accepted), bound)
        for r in refused:
            assert r.status_code == 429, r.text
            error = r.json()["error"]
            assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limited"), error
            assert "2 requests a second" in error["message"] and error["request_id"] == r.headers["x-request-id"]
            assert r.headers["retry-after"] == "1", r.headers  # a token is never more than half a second away


@needs_pg
def test_a_keys_live_job_cap_holds_across_api_processes(tmp_path: Path, pg_server: Any) -> None:
    env = pg_env(pg_server, tmp_path, "cap")
    with api_processes(tmp_path, env) as apis:
        key = apis[0].new_key("capped", balance=10.0)
        with apis[0].admin() as admin:
            r = admin.patch(f"/v1/admin/keys/{apis[0].key_id(key)}/limits", json={"max_concurrent_jobs": 3})
            assert r.status_code == 200, r.text

        async def race() -> list[httpx.Response]:
            clients = [
                httpx.AsyncClient(base_url=a.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
                for a in apis
            ]
            try:
                return await asyncio.gather(
                    *(clients[i % 2].post("/v1/videos", json={**LOCAL, "seed": i}) for i in range(16))
                )
            finally:
                for c in clients:
                    await c.aclose()

        answers = asyncio.run(race())  # no worker runs: every accepted job stays live
        codes = sorted(r.status_code for r in answers)
        assert codes == [202] * 3 + [429] * 13, (codes, [r.text for r in answers if r.status_code not in (202, 429)])
        for r in answers:
            if r.status_code == 429:
                assert r.json()["error"]["code"] == "rate_limited" and r.headers["retry-after"] == "5"
        live = rows(apis[0], "SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'processing')")
        assert live == [(3,)]
