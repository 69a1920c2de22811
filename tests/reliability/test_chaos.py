"""Chaos: processes SIGKILLed and restarted at random moments while jobs render and webhooks go out.

SQLite: the one ``vidgate serve`` process is killed (its whole process group) and restarted on the
same data dir and port. PostgreSQL + S3: two ``vidgate api`` and two ``vidgate worker`` processes,
one of them killed and restarted at a time. Meanwhile about 60 small renders are created (with an
Idempotency-Key, retried through the outages), a third of them with a webhook to a loopback
receiver that refuses a fifth of first attempts. What must hold: every job is created once and
ends exactly once (one terminal event), every hold is settled or voided once, the ledger balances,
every webhook event is acknowledged, and none twice unless a kill fell between the receiver's 2xx
and the gateway recording it (an at-least-once system cannot tell then; the test reports those).
``make soak`` (VIDGATE_SOAK=1) runs 400 jobs through 40 kills.
"""

from __future__ import annotations

import base64
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.server import FakeUpstream
from helpers.backends import migrate, postgres_env, rows
from helpers.gateway import GatewayProcess
from helpers.ledger import check_ledger
from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from vidgate.gateway.events.webhooks import LEASE_MS

SOAK = os.environ.get("VIDGATE_SOAK") == "1"
BACKENDS = [b for b in os.environ.get("VIDGATE_TEST_BACKENDS", "sqlite,postgres").split(",") if b]
JOBS = 400 if SOAK else 60
KILLS = 40 if SOAK else 6
SEED = 424242
SECRET = "whsec_" + base64.b64encode(b"chaos-webhook-secret-32-bytes-ok").decode()
TERMINAL = ("video.completed", "video.failed", "video.cancelled", "video.expired")
ENV = {
    "VIDGATE_WEBHOOK_BACKOFF_BASE_SECONDS": "0.05",
    "VIDGATE_SIGNING_SECRET": "chaos-signing-secret",
    "VIDGATE_MAX_WEBSOCKETS_PER_KEY": "1000",
}


@dataclass
class Receiver:
    """A loopback webhook receiver: verifies every signature, refuses some first attempts with 500."""

    rng: random.Random = field(default_factory=lambda: random.Random(SEED + 1))
    acks: list[tuple[str, float]] = field(default_factory=list)  # (webhook-id, when) of every 2xx answer
    refused: Counter[str] = field(default_factory=Counter)
    bad_signatures: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            headers = dict(request.headers)
            try:
                Webhook(SECRET).verify(body, headers)
            except Exception:
                with self.lock:
                    self.bad_signatures += 1
                return Response(status_code=400)
            event_id = headers["webhook-id"]
            with self.lock:
                first = event_id not in self.refused and all(e != event_id for e, _ in self.acks)
                if first and self.rng.random() < 0.2:
                    self.refused[event_id] += 1
                    return Response(status_code=500)
                self.acks.append((event_id, time.monotonic()))
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


@dataclass
class Cluster:
    kind: str
    apis: list[GatewayProcess]
    victims: list[tuple[str, GatewayProcess]]
    kills: list[tuple[str, float]] = field(default_factory=list)  # (victim, when)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for _, proc in self.victims:
            proc.start()

    def stop(self) -> None:
        for _, proc in self.victims:
            proc.kill()

    def ensure_up(self) -> None:
        for _, proc in self.victims:
            if proc.proc is None or proc.proc.poll() is not None:
                proc.start()


def sqlite_cluster(root: Path) -> Cluster:
    serve = GatewayProcess(root / "serve", env=ENV)
    return Cluster("sqlite", [serve], [("serve", serve)])


def postgres_cluster(root: Path, pg: Any, s3: Any) -> Cluster:
    env = {**ENV, **postgres_env(pg, s3, f"chaos_{os.getpid()}")}
    migrate(env)
    apis = [
        GatewayProcess(root / f"api{i}", env=env, command="api", log_name="api", args=("--workers", "1"))
        for i in range(2)
    ]
    workers = [GatewayProcess(root / f"worker{i}", env=env, command="worker", log_name="worker") for i in range(2)]
    return Cluster(
        "postgres", apis, [("api0", apis[0]), ("api1", apis[1]), ("worker0", workers[0]), ("worker1", workers[1])]
    )


@pytest.fixture(params=BACKENDS)
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    if request.param == "postgres":
        c = postgres_cluster(tmp_path, request.getfixturevalue("pg_server"), request.getfixturevalue("s3_server"))
    else:
        c = sqlite_cluster(tmp_path)
    c.start()
    yield c
    c.stop()


class Client:
    """Calls any live API process, retrying through connection errors and 503s while processes restart."""

    def __init__(self, cluster: Cluster, key: str) -> None:
        self.cluster = cluster
        self.headers = {"Authorization": f"Bearer {key}"}
        self.statuses: Counter[int] = Counter()
        self.connection_errors = 0
        self.rng = random.Random(SEED + 2)
        self.lock = threading.Lock()
        self.http = {
            api.base_url: httpx.Client(base_url=api.base_url, headers=self.headers, timeout=10) for api in cluster.apis
        }

    def call(self, method: str, path: str, timeout: float = 60, **kwargs: Any) -> httpx.Response:
        deadline = time.monotonic() + timeout
        while True:
            api = self.rng.choice(self.cluster.apis)
            try:
                r = self.http[api.base_url].request(method, path, **kwargs)
                with self.lock:
                    self.statuses[r.status_code] += 1
                if r.status_code != 503:
                    return r
            except httpx.TransportError:
                with self.lock:
                    self.connection_errors += 1
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path} kept failing for {timeout}s")
            time.sleep(0.1)


def create_jobs(client: Client, created: dict[int, str], hook_url: str, done: threading.Event) -> None:
    rng = random.Random(SEED + 3)
    try:
        for n in range(JOBS):
            body: dict[str, Any] = {
                "model": "vidgate/procedural",
                "prompt": f"chaos {n}",
                "seed": n,
                "duration": rng.randint(1, 4),
                "size": rng.choice(["160x90", "320x180"]),
            }
            if n % 3 == 0:
                body["webhook"] = {"url": hook_url, "secret": SECRET}
            # The same Idempotency-Key on every retry: a create whose answer a kill swallowed is not made twice.
            r = client.call("POST", "/v1/videos", json=body, headers={"Idempotency-Key": f"chaos-{n}"})
            assert r.status_code in (200, 202), r.text
            created[n] = r.json()["id"]
            time.sleep(rng.uniform(0.02, 0.15))
    finally:
        done.set()


def unfinished(client: Client) -> int:
    r = client.call("GET", "/v1/videos", params={"status": "queued,processing", "limit": 100})
    assert r.status_code == 200, r.text
    return len(r.json()["data"])


def test_kill_9_at_random_moments(cluster: Cluster) -> None:
    receiver = Receiver()
    hook_server = FakeUpstream(receiver.app()).start()
    try:
        run(cluster, receiver, f"{hook_server.base_url}/hook")
    finally:
        hook_server.stop()


def run(cluster: Cluster, receiver: Receiver, hook_url: str) -> None:
    rng = random.Random(SEED)
    started = time.monotonic()
    key = cluster.apis[0].new_key("chaos", balance=1000.0)
    client = Client(cluster, key)
    created: dict[int, str] = {}
    done = threading.Event()
    creator = threading.Thread(target=create_jobs, args=(client, created, hook_url, done), daemon=True)
    creator.start()
    # Kill while jobs are being created and rendered; stop once every job has ended.
    while len(cluster.kills) < KILLS:
        time.sleep(rng.uniform(0.2, 1.2))
        if done.is_set() and unfinished(client) == 0:
            break
        name, victim = rng.choice(cluster.victims)
        victim.kill()
        cluster.kills.append((name, time.monotonic()))
        time.sleep(rng.uniform(0.05, 0.5))
        victim.start()
    creator.join(timeout=300)
    assert done.is_set() and len(created) == JOBS, len(created)
    cluster.ensure_up()
    deadline = time.monotonic() + (600 if SOAK else 120)
    while unfinished(client) and time.monotonic() < deadline:
        time.sleep(0.3)
    jobs_done = time.monotonic() - started
    # A delivery in flight when its process died is retried once its lease lapses (LEASE_MS, 60 s).
    deadline = max(deadline, time.monotonic() + LEASE_MS / 1000 + 15)
    gw = cluster.apis[0]
    while time.monotonic() < deadline:
        (pending,) = rows(gw, "SELECT COUNT(*) FROM webhook_deliveries WHERE status <> 'delivered'")[0]
        if pending == 0:
            break
        time.sleep(0.3)
    seconds = time.monotonic() - started
    ids = set(created.values())

    # Created once each (idempotent retries through the kills), all ended.
    jobs = dict(rows(gw, "SELECT id, status FROM jobs"))
    assert len(ids) == JOBS and set(jobs) == ids, (len(ids), len(jobs))
    statuses = Counter(jobs.values())
    assert set(statuses) <= {"completed", "failed"}, statuses
    # Ended exactly once: one terminal event per job.
    terminal = dict(
        rows(gw, "SELECT job_id, COUNT(*) FROM events WHERE type IN (?, ?, ?, ?) GROUP BY job_id", *TERMINAL)
    )
    assert {i: terminal.get(i, 0) for i in ids} == dict.fromkeys(ids, 1)
    # Held once, settled or voided once.
    kinds: dict[str, Counter[str]] = {}
    for job_id, kind, n in rows(
        gw, "SELECT job_id, kind, COUNT(*) FROM ledger WHERE job_id IS NOT NULL GROUP BY job_id, kind"
    ):
        kinds.setdefault(job_id, Counter())[kind] = n
    for job_id, status in jobs.items():
        want = {"hold": 1, "charge": 1, "release": 1} if status == "completed" else {"hold": 1, "release": 1}
        assert kinds[job_id] == want, (job_id, status, kinds[job_id])
    check_ledger(gw)

    # Webhooks: every event delivered and acknowledged; acknowledged twice only across a kill.
    deliveries = rows(gw, "SELECT event_id, status, attempts FROM webhook_deliveries")
    assert deliveries and all(status == "delivered" for _, status, _ in deliveries), deliveries
    acked = Counter(event_id for event_id, _ in receiver.acks)
    missing = [e for e, _, _ in deliveries if acked[e] == 0]
    assert missing == [] and receiver.bad_signatures == 0, (missing, receiver.bad_signatures)
    first_ack = {}
    for event_id, when in receiver.acks:
        first_ack.setdefault(event_id, when)
    twice = {e for e, n in acked.items() if n > 1}
    across_kill = {e for e in twice if any(0 <= t - first_ack[e] <= 1.0 for _, t in cluster.kills)}
    assert twice == across_kill, sorted(twice - across_kill)
    errors = sum(n for code, n in client.statuses.items() if code >= 500 and code != 503)
    assert errors == 0, client.statuses

    by_victim = Counter(name for name, _ in cluster.kills)
    print(
        f"\nchaos [{cluster.kind}]: {JOBS} jobs ended after {jobs_done:.1f}s, webhooks settled after {seconds:.1f}s; "
        f"{JOBS} jobs with {len(cluster.kills)} SIGKILLs "
        f"({dict(by_victim)}), each restarted; jobs completed {statuses['completed']}, failed {statuses['failed']}, "
        f"lost 0, created twice 0; terminal events per job 1; ledger holds {sum(k['hold'] for k in kinds.values())}, "
        f"settles {sum(k['charge'] for k in kinds.values())}, voids {statuses['failed']}, double charges 0; "
        f"webhook events {len(deliveries)} delivered ({sum(a for _, _, a in deliveries)} attempts, "
        f"{sum(receiver.refused.values())} refused by the receiver), acknowledged twice {len(twice)} "
        f"(all across a kill); API answers {dict(sorted(client.statuses.items()))}, connection errors during "
        f"restarts {client.connection_errors}, 5xx other than 503 {errors}"
    )
