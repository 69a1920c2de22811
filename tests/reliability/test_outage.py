"""Outages of PostgreSQL and of the S3 store under a running ``vidgate api`` + ``vidgate worker``.

An outage is a freeze (SIGSTOP of every server process, SIGCONT after): connections stay open and
nothing answers, the hardest case for timeouts. During it the API must answer quickly (each
request returns within seconds: 503 in the error envelope with Retry-After where it needs the
frozen service, normally where it does not), ``/readyz`` is 503, ``/healthz`` stays 200, and the
worker backs off without dying. After it, the jobs that were in flight and new ones complete,
nothing is lost and the ledger balances. The servers are this module's own, so no other test
sees the outage. 8 s outages here, 30 s with ``make soak`` (VIDGATE_SOAK=1).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.backends import migrate, postgres_env, rows
from helpers.gateway import GatewayProcess, wait_status
from helpers.ledger import check_ledger

SOAK = os.environ.get("VIDGATE_SOAK") == "1"
OUTAGE_SECONDS = 30.0 if SOAK else 8.0
ANSWER_WITHIN = 12.0  # a pool acquire or connect (5 s) plus one command (5 s), and slack
RENDER = {"model": "vidgate/procedural", "prompt": "outage", "duration": 1, "size": "160x90"}
LONG_RENDER = {"model": "vidgate/procedural", "prompt": "outage long", "duration": 10, "size": "640x360"}

pytestmark = pytest.mark.skipif(
    "postgres" not in os.environ.get("VIDGATE_TEST_BACKENDS", "sqlite,postgres"), reason="PostgreSQL + S3 only"
)


def family(pid: int) -> list[int]:
    """``pid`` and its children: PostgreSQL's backends each run in a session of their own."""
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(entry))
    return [pid, *kids]


def freeze(pid: int, sig: signal.Signals) -> None:
    for p in family(pid):
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


@dataclass
class Probe:
    name: str
    started: float  # seconds after the outage began
    seconds: float
    status: int
    body: Any
    retry_after: str | None


@dataclass
class Deployment:
    api: GatewayProcess
    worker: GatewayProcess
    pg: Any
    s3: Any
    key: str
    jobs: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    from infra.postgres import PostgresServer
    from infra.seaweed import SeaweedS3

    pg, s3 = PostgresServer().start(), SeaweedS3().start()
    root = tmp_path_factory.mktemp("outage")
    env = {**postgres_env(pg, s3, "outage"), "VIDGATE_SIGNING_SECRET": "outage-secret"}
    migrate(env)
    api = GatewayProcess(root / "api", env=env, command="api", log_name="api", args=("--workers", "1")).start()
    worker = GatewayProcess(root / "worker", env=env, command="worker", log_name="worker").start()
    try:
        yield Deployment(api, worker, pg, s3, api.new_key("outage", balance=100.0))
    finally:
        api.kill()
        worker.kill()
        s3.stop()
        pg.stop()


def probe_during(dep: Deployment, pid: int, targets: dict[str, tuple[str, str, dict[str, Any]]]) -> list[Probe]:
    """Freeze ``pid`` for the outage while one thread per target keeps calling the API."""
    probes: list[Probe] = []
    lock = threading.Lock()
    stop = threading.Event()
    began = time.monotonic()

    def loop(name: str, method: str, path: str, kwargs: dict[str, Any]) -> None:
        n = 0
        with httpx.Client(base_url=dep.api.base_url, headers={"Authorization": f"Bearer {dep.key}"}, timeout=60) as c:
            while not stop.is_set():
                n += 1
                extra = {"headers": {"Idempotency-Key": f"{name}-{began}-{n}"}} if method == "POST" else {}
                t = time.monotonic()
                r = c.request(method, path, **kwargs, **extra)
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
                with lock:
                    probes.append(
                        Probe(name, t - began, time.monotonic() - t, r.status_code, body, r.headers.get("retry-after"))
                    )
                if method == "POST" and r.status_code == 202:
                    dep.jobs.append(r.json()["id"])
                time.sleep(0.2)

    threads = [threading.Thread(target=loop, args=(n, *t), daemon=True) for n, t in targets.items()]
    freeze(pid, signal.SIGSTOP)
    try:
        for th in threads:
            th.start()
        time.sleep(OUTAGE_SECONDS)
    finally:
        freeze(pid, signal.SIGCONT)
    resumed = time.monotonic() - began
    stop.set()
    for th in threads:
        th.join(timeout=ANSWER_WITHIN * 2)
    assert not any(th.is_alive() for th in threads), "a request hung past the outage"
    for p in probes:
        p.started -= resumed  # negative: started during the outage
    return probes


def recover(dep: Deployment, checks: dict[str, str]) -> float:
    """Seconds after the outage until every check path answers 200."""
    t = time.monotonic()
    with httpx.Client(base_url=dep.api.base_url, headers={"Authorization": f"Bearer {dep.key}"}, timeout=30) as c:
        while time.monotonic() - t < 60:
            if all(c.get(path).status_code == 200 for path in checks.values()):
                return time.monotonic() - t
            time.sleep(0.05)
    raise AssertionError("the API did not recover within 60 s")


def assert_unavailable(p: Probe, what: str) -> None:
    assert p.status == 503, (p.name, p.status, p.body)
    err = p.body["error"]
    assert err["code"] == "service_unavailable" and err["details"]["unavailable"] in (what, "database or object store")
    assert p.retry_after and err["request_id"], p


def summary(probes: list[Probe]) -> str:
    out = []
    by_name: dict[str, list[Probe]] = defaultdict(list)
    for p in probes:
        by_name[p.name].append(p)
    for name, ps in by_name.items():
        statuses = dict(Counter(p.status for p in ps))
        out.append(f"{name} {statuses} max {max(p.seconds for p in ps):.1f}s")
    return "; ".join(out)


def start_jobs(dep: Deployment, n_long: int, n_short: int) -> list[str]:
    with dep.api.client(dep.key) as c:
        ids = []
        for i in range(n_long + n_short):
            r = c.post("/v1/videos", json={**(LONG_RENDER if i < n_long else RENDER), "seed": i})
            assert r.status_code == 202, r.text
            ids.append(r.json()["id"])
        # Outage while the long renders run.
        wait_status(c, ids[0], {"processing", "completed"}, timeout=30)
    dep.jobs += ids
    return ids


def finish(dep: Deployment) -> dict[str, int]:
    with dep.api.client(dep.key) as c:
        done = [wait_status(c, i, {"completed", "failed", "cancelled", "expired"}, timeout=120) for i in dep.jobs]
    statuses = Counter(d["status"] for d in done)
    assert statuses == {"completed": len(dep.jobs)}, statuses
    kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for job_id, kind, n in rows(
        dep.api, "SELECT job_id, kind, COUNT(*) FROM ledger WHERE job_id IS NOT NULL GROUP BY job_id, kind"
    ):
        kinds[job_id][kind] = n
    assert all(kinds[i] == {"hold": 1, "charge": 1, "release": 1} for i in dep.jobs)
    check_ledger(dep.api)
    assert dep.worker.proc is not None and dep.worker.proc.poll() is None, "the worker died"
    return dict(statuses)


def test_database_outage(deployment: Deployment) -> None:
    dep = deployment
    in_flight = start_jobs(dep, n_long=3, n_short=5)
    probes = probe_during(
        dep,
        dep.pg._proc.pid,
        {
            "healthz": ("GET", "/healthz", {}),
            "readyz": ("GET", "/readyz", {}),
            "get": ("GET", f"/v1/videos/{in_flight[0]}", {}),
            "list": ("GET", "/v1/videos", {}),
            "create": ("POST", "/v1/videos", {"json": RENDER}),
        },
    )
    recovered = recover(dep, {"readyz": "/readyz", "get": f"/v1/videos/{in_flight[0]}"})
    # Answered a clear second before the database came back: a probe answered at the boundary may have been
    # checked after it, however the client's clock saw it.
    during = [p for p in probes if p.started + p.seconds < -1.0]
    assert all(p.seconds <= ANSWER_WITHIN for p in probes), summary(probes)
    assert all(p.status == 200 and p.seconds < 5 for p in probes if p.name == "healthz"), summary(probes)
    for p in during:
        if p.name == "readyz":
            assert p.status == 503 and p.seconds < 8 and p.body["error"]["details"]["database"].startswith("error")
        elif p.name != "healthz" and p.started > -OUTAGE_SECONDS + 2.5:  # the key's 2 s auth cache has lapsed
            assert_unavailable(p, "database")
    # Sent while the database was away (a loaded machine may answer only after it is back): refused, not hung.
    sent_during = [p for p in probes if p.started < 0]
    assert any(p.status == 503 and p.name in ("get", "list", "create") for p in sent_during), summary(probes)
    assert not any(p.status >= 500 and p.status != 503 for p in probes), summary(probes)
    worker_log = dep.worker.log_path.read_text()
    assert "backing off" in worker_log
    backoffs = worker_log.count("backing off")
    new = start_jobs(dep, n_long=0, n_short=3)
    statuses = finish(dep)
    print(
        f"\ndatabase outage: PostgreSQL frozen {OUTAGE_SECONDS:.0f}s with {len(in_flight)} jobs in flight; "
        f"{len(during)} requests answered during it ({summary(during)}), none hung (max "
        f"{max(p.seconds for p in probes):.1f}s); recovered {recovered:.2f}s after; worker backed off "
        f"{backoffs} times and lived; then {len(new)} new jobs; {statuses}, lost 0, ledger balanced"
    )


def test_object_store_outage(deployment: Deployment) -> None:
    dep = deployment
    with dep.api.client(dep.key) as c:
        done = next(i for i in dep.jobs if c.get(f"/v1/videos/{i}").json()["status"] == "completed")
    in_flight = start_jobs(dep, n_long=3, n_short=5)
    probes = probe_during(
        dep,
        dep.s3._proc.pid,
        {
            "healthz": ("GET", "/healthz", {}),
            "readyz": ("GET", "/readyz", {}),
            "content": ("GET", f"/v1/videos/{done}/content", {}),
            "get": ("GET", f"/v1/videos/{in_flight[0]}", {}),
            "create": ("POST", "/v1/videos", {"json": RENDER}),
        },
    )
    recovered = recover(dep, {"readyz": "/readyz", "content": f"/v1/videos/{done}/content"})
    during = [p for p in probes if p.started + p.seconds < -1.0]  # a clear second before the store came back
    assert all(p.seconds <= ANSWER_WITHIN for p in probes), summary(probes)
    for p in during:
        if p.name == "healthz":
            assert p.status == 200 and p.seconds < 5
        elif p.name == "readyz":
            assert p.status == 503 and p.seconds < 8 and p.body["error"]["details"]["blobs"].startswith("error")
        elif p.name == "content":
            assert_unavailable(p, "object store")
        else:  # the database is up: job reads and creates go on
            assert p.status in (200, 202), (p.name, p.status, p.body)
    assert any(p.name == "content" for p in during), summary(probes)
    assert not any(p.status >= 500 and p.status != 503 for p in probes), summary(probes)
    statuses = finish(dep)
    print(
        f"\nobject store outage: S3 frozen {OUTAGE_SECONDS:.0f}s with {len(in_flight)} jobs in flight; "
        f"{len(during)} requests answered during it ({summary(during)}), none hung (max "
        f"{max(p.seconds for p in probes):.1f}s); recovered {recovered:.2f}s after; {statuses}, lost 0, "
        f"ledger balanced"
    )
