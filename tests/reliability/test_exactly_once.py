"""Exactly one upstream job per gateway job, through lost answers, crashes, store outages and stops.

Against fake upstreams behind a real ``vidgate serve`` (SQLite + local files, and PostgreSQL + S3):

- a create whose answer is lost after the upstream made the job (the fake hangs past the gateway's
  timeout, or resets the connection) is an unknown outcome, not a refusal: the gateway asks the
  provider (Kling reads back by its external id, Luma and OpenAI scan their lists) and the job
  completes at that FIRST provider, made there once, never sent to the second;
- an answered 500 is a refusal taken at its word: failing over is the documented rule;
- a provider with no lookup (Alibaba's DashScope) keeps the job: it is sent to it again, never
  elsewhere, and the attempt says a duplicate there is possible;
- ``kill -9`` while the fake holds the create, then a restart: the job is looked for, found, and
  ends with one upstream job;
- a 500 or 429 from a model's only provider is tried again after a backoff, and completes;
- the object store down while outputs are stored (a file where the videos dir goes, or an S3
  endpoint that refuses connections): the jobs wait, then complete with their hold settled once,
  no second create, no second render, and nothing shown to the user names the store;
- SIGTERM to ``vidgate serve`` or ``vidgate worker`` with jobs in flight: it exits after the grace
  period, says what it handed back, leaves no lease held, and every job then completes once.

Counts are printed for the docs; no test asserts on speed.
"""

from __future__ import annotations

import os
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fakes.alibaba_fake import AlibabaFake
from fakes.fal_fake import FalFake
from fakes.kling_fake import KlingFake
from fakes.luma_fake import LumaFake
from fakes.openai_fake import OpenAIFake
from fakes.replicate_fake import ReplicateFake
from fakes.server import FakeUpstream
from helpers.backends import migrate, postgres_env, rows
from helpers.gateway import GatewayProcess, wait_status
from helpers.ledger import check_ledger
from helpers.relay import Relay

BACKENDS = [b for b in os.environ.get("VIDGATE_TEST_BACKENDS", "sqlite,postgres").split(",") if b]
GRACE_SECONDS = 1.0  # shorter than a long render, so a stop cancels some steps and hands their jobs back
TERMINAL = {"completed", "failed", "cancelled", "expired"}
# Where each fake keeps the jobs it made, and how it is configured.
STORES = {"openai": "jobs", "kling": "tasks", "luma": "generations", "replicate": "predictions",
          "alibaba": "tasks", "fal": "tasks"}  # fmt: skip
CONFIG = {
    "openai": ('api_key = "sk-test"', "/v1"),
    "kling": ('api_key = "ak-test"\nsecret_key = "sk-test"', ""),
    "luma": ('api_key = "luma-test"', "/dream-machine/v1"),
    "replicate": ('api_key = "r8_test"', "/v1"),
    "alibaba": ('api_key = "sk-ds-test"', "/api/v1"),
    "fal": ('api_key = "fal_test"', ""),
}
# Two-provider models whose first provider can look a lost create up, and one whose cannot.
KLING = {"model": "kling/kling-2.5-turbo", "duration": 5}  # kling (lookup), then replicate
LUMA = {"model": "luma/ray-2", "duration": 5}  # luma (list), then replicate
SORA = {"model": "openai/sora-2", "duration": 4, "size": "1280x720"}  # openai (list) only
WAN = {"model": "alibaba/wan-2.5", "duration": 5, "resolution": "720p"}  # alibaba (no lookup), then fal
RENDER = {"model": "vidgate/procedural", "duration": 1, "size": "160x90"}
LONG_RENDER = {"model": "vidgate/procedural", "duration": 8, "size": "1280x720"}  # seconds of work, past the grace


class Upstreams:
    def __init__(self) -> None:
        self.fakes: dict[str, Any] = {
            "openai": OpenAIFake(polls_to_complete=3),
            "kling": KlingFake(polls_to_complete=2),
            "luma": LumaFake(polls_to_complete=2),
            "replicate": ReplicateFake(polls_to_complete=2),
            "alibaba": AlibabaFake(polls_to_complete=2),
            "fal": FalFake(polls_to_complete=2),
        }
        self.servers = {name: FakeUpstream(fake.app).start() for name, fake in self.fakes.items()}

    def config(self, path: Path, timeout_seconds: float = 1.0) -> Path:
        path.write_text(
            "".join(
                f'[providers.{name}]\n{CONFIG[name][0]}\nbase_url = "{server.base_url}{CONFIG[name][1]}"\n'
                f"poll_interval_seconds = 0.2\ntimeout_seconds = {timeout_seconds}\n\n"
                for name, server in self.servers.items()
            )
        )
        return path

    def made(self, name: str, prompt: str) -> int:
        """Upstream jobs the fake made for the gateway job whose prompt is ``prompt``."""
        store = getattr(self.fakes[name], STORES[name])
        return sum(prompt in repr(item) for item in store.values())

    def clear_faults(self) -> None:
        for fake in self.fakes.values():
            fake.faults.clear()
            fake.faults.hang_seconds = 3.0

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


@dataclass
class Deployment:
    kind: str
    gw: GatewayProcess
    env: dict[str, str]
    key: str
    relay: Relay | None = None


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    ups = Upstreams()
    yield ups
    ups.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def dep(
    request: pytest.FixtureRequest, upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    kind = request.param
    root = tmp_path_factory.mktemp(f"exactly-once-{kind}")
    env = {
        "VIDGATE_CONFIG": str(upstreams.config(root / "providers.toml")),
        "VIDGATE_STEP_RETRY_SECONDS": "0.5",
        "VIDGATE_WORKER_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
        "VIDGATE_SIGNING_SECRET": "exactly-once-secret",
    }
    relay = None
    if kind == "postgres":
        pg, s3 = request.getfixturevalue("pg_server"), request.getfixturevalue("s3_server")
        env.update(postgres_env(pg, s3, f"once_{os.getpid()}"))
        relay = Relay(int(s3.endpoint.rsplit(":", 1)[1]))
        env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{relay.port}"  # the store, through a switch
        migrate(env)
    gw = GatewayProcess(root / "gw", env=env).start()
    try:
        yield Deployment(kind, gw, env, gw.new_key("exactly-once", balance=1000.0), relay)
    finally:
        gw.stop()
        if relay is not None:
            relay.close()


@pytest.fixture
def api(dep: Deployment, upstreams: Upstreams) -> Iterator[httpx.Client]:
    upstreams.clear_faults()
    with dep.gw.client(dep.key) as client:
        yield client
    check_ledger(dep.gw)


def create(api: httpx.Client, body: dict[str, Any]) -> tuple[str, str]:
    """A job with a prompt no other job shares; its id and that prompt."""
    prompt = f"exactly once {uuid.uuid4().hex[:12]}"
    r = api.post("/v1/videos", json={**body, "prompt": prompt})
    assert r.status_code == 202, r.text
    return r.json()["id"], prompt


def outcomes(job: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["provider"], a["outcome"]) for a in job.get("attempts") or []]


def held_once(gw: GatewayProcess, job_id: str, settled: bool = True) -> None:
    kinds = Counter(k for (k,) in rows(gw, "SELECT kind FROM ledger WHERE job_id = ?", job_id))
    assert kinds == ({"hold": 1, "charge": 1, "release": 1} if settled else {"hold": 1, "release": 1}), kinds


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def leases_held(gw: GatewayProcess) -> int:
    return rows(gw, "SELECT COUNT(*) FROM jobs WHERE lease_owner IS NOT NULL")[0][0]


# ---- lost create answers -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["accept-hang", "accept-reset"])
@pytest.mark.parametrize(("first", "body"), [("kling", KLING), ("luma", LUMA), ("openai", SORA)])
def test_a_lost_create_answer_is_found_at_the_first_provider(
    dep: Deployment, api: httpx.Client, upstreams: Upstreams, first: str, body: dict[str, Any], kind: str
) -> None:
    upstreams.fakes[first].faults.add("create", kind)
    job_id, prompt = create(api, body)
    done = wait_status(api, job_id, TERMINAL, timeout=90)
    assert done["status"] == "completed" and done["provider"] == first, done
    assert upstreams.made(first, prompt) == 1
    assert upstreams.made("replicate", prompt) == 0
    assert outcomes(done) == [(first, "accepted")]
    assert "found at" in done["attempts"][0]["message"]
    held_once(dep.gw, job_id)
    print(f"\n[{dep.kind}] {first} {kind}: completed at {first}, upstream jobs {first} 1, replicate 0")


def test_an_answered_500_is_a_refusal_and_fails_over(dep: Deployment, api: httpx.Client, upstreams: Upstreams) -> None:
    """The rule: an answered 5xx is taken at its word, even where the upstream made the job anyway."""
    upstreams.fakes["kling"].faults.add("create", "accept-500")
    job_id, prompt = create(api, KLING)
    done = wait_status(api, job_id, TERMINAL, timeout=90)
    assert done["status"] == "completed" and done["provider"] == "replicate", done
    assert outcomes(done) == [("kling", "rejected"), ("replicate", "accepted")]
    assert done["attempts"][0]["status_code"] == 500
    assert (upstreams.made("kling", prompt), upstreams.made("replicate", prompt)) == (1, 1)
    held_once(dep.gw, job_id)


def test_a_provider_without_lookup_keeps_the_job(dep: Deployment, api: httpx.Client, upstreams: Upstreams) -> None:
    upstreams.fakes["alibaba"].faults.add("create", "accept-hang")
    job_id, prompt = create(api, WAN)
    done = wait_status(api, job_id, TERMINAL, timeout=90)
    assert done["status"] == "completed" and done["provider"] == "alibaba", done
    assert outcomes(done) == [("alibaba", "unknown"), ("alibaba", "accepted")]
    message = done["attempts"][0]["message"]
    assert "offers no lookup" in message and "duplicate" in message, message
    assert upstreams.made("fal", prompt) == 0
    duplicates = upstreams.made("alibaba", prompt)
    assert duplicates == 2  # the lost one and the one sent again: the possible duplicate, said so
    held_once(dep.gw, job_id)
    print(
        f"\n[{dep.kind}] alibaba (no lookup) accept-hang: completed at alibaba, fal creates 0, "
        f"alibaba jobs {duplicates} (the documented duplicate)"
    )


def test_kill_9_during_the_create_then_restart_makes_one_upstream_job(
    dep: Deployment, api: httpx.Client, upstreams: Upstreams
) -> None:
    openai = upstreams.fakes["openai"]
    openai.faults.hang_seconds = 120.0
    openai.faults.add("create", "accept-hang")
    # Until the kill, the gateway waits on the held create for longer than this test can take to get
    # there; the restart reads the usual short timeout back.
    config = Path(dep.env["VIDGATE_CONFIG"])
    dep.gw.stop()
    upstreams.config(config, timeout_seconds=120.0)
    dep.gw.start()
    try:
        job_id, prompt = create(api, SORA)
        # The fake has made the job and holds the answer back: the gateway is mid-create.
        eventually(
            lambda: ("create", "accept-hang") in openai.faults.applied and upstreams.made("openai", prompt) == 1,
            "the fake to hold the create",
        )
        dep.gw.kill()
        (attempts,) = rows(dep.gw, "SELECT attempts FROM jobs WHERE id = ?", job_id)[0]
        assert [a["outcome"] for a in orjson.loads(attempts)] == ["submitting"]
    finally:
        dep.gw.kill()
        upstreams.config(config)
        dep.gw.start()
    done = wait_status(api, job_id, TERMINAL, timeout=90)
    assert done["status"] == "completed" and done["provider"] == "openai", done
    assert upstreams.made("openai", prompt) == 1
    assert outcomes(done) == [("openai", "accepted")]
    held_once(dep.gw, job_id)
    print(f"\n[{dep.kind}] kill -9 mid-create, restart: upstream jobs 1, submitted twice 0")


@pytest.mark.parametrize("fault", ["500", "429"])
def test_a_single_provider_refusal_is_tried_again(
    dep: Deployment, api: httpx.Client, upstreams: Upstreams, fault: str
) -> None:
    upstreams.fakes["openai"].faults.add("create", fault)
    job_id, prompt = create(api, SORA)
    done = wait_status(api, job_id, TERMINAL, timeout=90)
    assert done["status"] == "completed", done
    assert outcomes(done) == [("openai", "rejected"), ("openai", "accepted")]
    assert done["attempts"][0]["status_code"] == int(fault)
    assert upstreams.made("openai", prompt) == 1
    held_once(dep.gw, job_id)


# ---- the object store down while outputs are stored ----------------------------------------------


def store_down(dep: Deployment) -> Callable[[], None]:
    """Take the job's object store away; the function returned brings it back."""
    if dep.relay is not None:
        dep.relay.down()
        return dep.relay.restore
    videos = dep.gw.data_dir / "blobs" / "videos"
    away = videos.with_name("videos.away")
    videos.mkdir(parents=True, exist_ok=True)
    videos.rename(away)
    videos.write_bytes(b"")  # a file where the directory goes: every store fails

    def restore() -> None:
        videos.unlink()
        away.rename(videos)

    return restore


def store_failures(gw: GatewayProcess, job_id: str) -> int:
    (raw,) = rows(gw, "SELECT attempts FROM jobs WHERE id = ?", job_id)[0]
    attempts = orjson.loads(raw or "[]")
    return int(attempts[-1].get("store_failures", 0)) if attempts else 0


def test_a_store_outage_while_storing_loses_nothing(dep: Deployment, api: httpx.Client, upstreams: Upstreams) -> None:
    # The soak variant holds the store down for VIDGATE_STORE_OUTAGE_SECONDS (e.g. 600) in all.
    outage = float(os.environ.get("VIDGATE_STORE_OUTAGE_SECONDS", "0"))
    down_at = time.monotonic()
    restore = store_down(dep)
    try:
        remote, prompt = create(api, SORA)
        local, _ = create(api, RENDER)
        for job_id in (remote, local):
            eventually(lambda j=job_id: store_failures(dep.gw, j) >= 2, "storing to fail twice", timeout=90)
        while time.monotonic() - down_at < outage:
            for job_id in (remote, local):
                assert api.get(f"/v1/videos/{job_id}").json()["status"] == "processing"
            time.sleep(min(10.0, max(0.0, outage - (time.monotonic() - down_at))))
        for job_id in (remote, local):
            assert api.get(f"/v1/videos/{job_id}").json()["status"] == "processing"
    finally:
        restore()
    outage_seconds = time.monotonic() - down_at
    failures = {j: store_failures(dep.gw, j) for j in (remote, local)}
    # Store retries back off to about 5 minutes, so after a long outage the next try may be that far off.
    settle = 120 + (330 if outage > 60 else 0)
    done = {j: wait_status(api, j, TERMINAL, timeout=settle) for j in (remote, local)}
    lost = [j for j, v in done.items() if v["status"] != "completed"]
    assert not lost, done
    assert upstreams.made("openai", prompt) == 1
    for job_id in (remote, local):
        held_once(dep.gw, job_id)
        assert api.get(done[job_id]["content_url"]).status_code == 200
    log = dep.gw.log_path.read_text()
    assert f"job {local}: storing the render an earlier try made" in log  # stored, not rendered again
    # Nothing the user sees names the store: its host, bucket, endpoint or a path.
    secrets = [str(dep.gw.data_dir), "blobs", "/tmp", "videos/"]
    if dep.relay is not None:
        secrets += [f"127.0.0.1:{dep.relay.port}", dep.env["VIDGATE_BLOB_URL"].split("/")[2]]
    for job_id in (remote, local):
        shown = orjson.dumps([done[job_id].get("error"), done[job_id].get("attempts")]).decode()
        stored = orjson.dumps(rows(dep.gw, "SELECT error, attempts FROM jobs WHERE id = ?", job_id)).decode()
        for secret in secrets:
            assert secret not in shown and secret not in stored, (secret, shown, stored)
    print(
        f"\n[{dep.kind}] store outage of {outage_seconds:.0f} s: store failures per job "
        f"{sorted(failures.values())}; jobs completed "
        f"{len(done) - len(lost)}/{len(done)}, lost 0; upstream creates 1; renders 1; holds settled once"
    )


# ---- graceful stop -------------------------------------------------------------------------------


def sigterm(proc: GatewayProcess) -> float:
    """SIGTERM the process group; the seconds until it exited."""
    assert proc.proc is not None
    started = time.monotonic()
    os.killpg(proc.proc.pid, signal.SIGTERM)
    proc.proc.wait(timeout=GRACE_SECONDS + 60)
    return time.monotonic() - started


def handed_back(log: str) -> tuple[int, int, int, int]:
    """(finished, in flight, cancelled, handed back) from the worker's last stop line."""
    found = re.findall(
        r"stopped: (\d+) of (\d+) steps finished within the grace, (\d+) cancelled; (\d+|no) leases handed back", log
    )
    assert found, log[-3000:]
    finished, total, cancelled, leases = found[-1]
    return int(finished), int(total), int(cancelled), -1 if leases == "no" else int(leases)


def start_in_flight(api: httpx.Client, upstreams: Upstreams) -> dict[str, str]:
    """Long renders and slow upstream jobs, waited on until they are being worked."""
    upstreams.fakes["openai"].polls_to_complete = 40
    jobs = dict(create(api, LONG_RENDER) for _ in range(2))
    jobs.update(create(api, SORA) for _ in range(2))
    for job_id in jobs:
        wait_status(api, job_id, {"processing", "completed"}, timeout=60)
    return jobs


def finish_once(dep: Deployment, api: httpx.Client, upstreams: Upstreams, jobs: dict[str, str]) -> None:
    upstreams.fakes["openai"].polls_to_complete = 3
    done = {j: wait_status(api, j, TERMINAL, timeout=180) for j in jobs}
    assert {v["status"] for v in done.values()} == {"completed"}, done
    for job_id, prompt in jobs.items():
        held_once(dep.gw, job_id)
        if done[job_id]["provider"] == "openai":
            assert upstreams.made("openai", prompt) == 1


def test_sigterm_to_serve_hands_the_leases_back(dep: Deployment, api: httpx.Client, upstreams: Upstreams) -> None:
    jobs = start_in_flight(api, upstreams)
    seconds = sigterm(dep.gw)
    held = leases_held(dep.gw)
    assert held == 0
    finished, total, cancelled, leases = handed_back(dep.gw.log_path.read_text())
    assert leases >= 0
    dep.gw.start()
    finish_once(dep, api, upstreams, jobs)
    print(
        f"\n[{dep.kind}] SIGTERM to serve: exited after {seconds:.1f}s (grace {GRACE_SECONDS:.0f}s); steps in "
        f"flight {total}, finished {finished}, cancelled {cancelled}; leases handed back {leases}; leases held "
        f"after exit {held}; {len(jobs)} jobs completed once after restart"
    )


def test_sigterm_to_a_worker_hands_the_leases_to_another(
    dep: Deployment, api: httpx.Client, upstreams: Upstreams
) -> None:
    """``vidgate api`` + ``vidgate worker`` on the serve's database: the stopped worker's jobs go to a second one."""
    dep.gw.stop()
    root = dep.gw.data_dir
    front = GatewayProcess(root, env=dep.env, command="api", port=dep.gw.port, log_name="api", args=("--workers", "1"))
    first = GatewayProcess(root, env=dep.env, command="worker", log_name="worker-a")
    second = GatewayProcess(root, env=dep.env, command="worker", log_name="worker-b")
    front.start()
    try:
        first.start()
        jobs = start_in_flight(api, upstreams)
        seconds = sigterm(first)
        held = leases_held(dep.gw)
        assert held == 0
        finished, total, cancelled, leases = handed_back(first.log_path.read_text())
        second.start()
        finish_once(dep, api, upstreams, jobs)
    finally:
        for proc in (second, first, front):
            proc.stop()
        dep.gw.start()
    print(
        f"\n[{dep.kind}] SIGTERM to a worker: exited after {seconds:.1f}s; steps in flight {total}, finished "
        f"{finished}, cancelled {cancelled}; leases handed back {leases}; leases held after exit {held}; "
        f"{len(jobs)} jobs completed once by the second worker"
    )


# ---- the deadline bounds every retry ---------------------------------------------------------------


@pytest.fixture(scope="module")
def short(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("exactly-once-short")
    env = {
        "VIDGATE_CONFIG": str(upstreams.config(root / "providers.toml")),
        "VIDGATE_STEP_RETRY_SECONDS": "0.5",
        "VIDGATE_DEADLINE_OVERRIDE_SECONDS": "12",
    }
    gw = GatewayProcess(root / "gw", env=env).start()
    yield gw
    gw.stop()


def test_refusals_and_lost_answers_end_at_the_deadline_with_a_clear_error(
    short: GatewayProcess, upstreams: Upstreams
) -> None:
    upstreams.clear_faults()
    openai = upstreams.fakes["openai"]
    with short.client(short.new_key("short", balance=100.0)) as api:
        # Refused every time: the plan is tried again until the deadline, then the job fails naming the tries.
        openai.faults.add("create", "503", times=1000)
        refused, prompt = create(api, SORA)
        done = wait_status(api, refused, TERMINAL, timeout=90)
        openai.faults.clear()
        assert done["status"] == "failed" and done["error"]["code"] == "no_provider_available", done
        assert "before its deadline" in done["error"]["message"] and "openai" in done["error"]["message"]
        assert len(done["error"]["attempts"]) >= 2 and upstreams.made("openai", prompt) == 0
        # A lost answer the list cannot settle (a look-alike of the same kind was made just before):
        # looked for until the deadline, sent nowhere again, then failed saying so.
        alike, _ = create(api, SORA)
        wait_status(api, alike, {"processing", "completed"}, timeout=30)
        openai.faults.add("create", "timeout")
        lost, prompt = create(api, SORA)
        done = wait_status(api, lost, TERMINAL, timeout=90)
        assert done["status"] == "failed" and done["error"]["code"] == "upstream_outcome_unknown", done
        assert upstreams.made("openai", prompt) == 0 and outcomes(done) == [("openai", "unknown")]
        for job_id in (refused, lost):
            held_once(short, job_id, settled=False)
    check_ledger(short)
