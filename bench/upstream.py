"""Group ``upstream`` (rows 6, 7, 12): the worker against a fake upstream, timed from the outside.

The upstream is ``tests/fakes/openai_fake.OpenAIFake`` in its own process (``FakeProcess``), which
records the arrival time of every request it gets (its ``Idempotency-Key`` is the job id on a
create). Times in the database are epoch milliseconds taken when the row was written; every process
is on this machine, so one clock.

- 7: jobs created at a fixed pace (after a few warm-up jobs, whose first submit opens the worker's
  connection; reported apart); for each, the fake's arrival time of its create minus the job's
  ``jobs.created_at``. Embedded (``vidgate serve`` on SQLite) and at scale (PostgreSQL + S3, one
  ``vidgate api`` and one ``vidgate worker``). Baseline: a create sent straight to the fake.
- 12: the same jobs carry a webhook for ``video.completed``; a loopback receiver records arrivals;
  first arrival minus ``jobs.completed_at``. Baseline: a POST sent straight to the receiver.
- 6: one job the fake never finishes; the fake's polls for it are counted over a window with no
  client, then over an equal window in which a client polls ``GET /v1/videos/{id}`` 1,000 times.


``python -m bench.inflight --only upstream`` runs the group alone.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    FAKE_KEY,
    WEBHOOK_SECRET,
    Backends,
    FakeProcess,
    Result,
    WebhookReceiver,
    create_key,
    free_port,
    percentile,
    spawn,
    start_server,
    stop_server,
    summary_ms,
    tempdir,
)

BODY: dict[str, Any] = {"model": "openai/sora-2", "prompt": "a paper boat on a rainy street", "duration": 4}
SUBMIT_TARGET_MS = {"sqlite": 20.0, "postgres": 250.0}
WEBHOOK_TARGET_MS = 500.0
WARM_UP = 5


def _paced_creates(base: str, key: str, n: int, rate: float, body: dict[str, Any]) -> list[str]:
    ids = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        t0 = time.monotonic()
        for i in range(n):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            r = client.post("/v1/videos", json=body)
            if r.status_code != 202:
                raise RuntimeError(f"create answered {r.status_code}: {r.text[:300]}")
            ids.append(r.json()["id"])
    return ids


def _wait_statuses(base: str, key: str, ids: list[str], statuses: set[str], timeout: float) -> dict[str, Any]:
    left, last = set(ids), {}
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        while left and time.monotonic() < deadline:
            for job_id in list(left):
                last[job_id] = client.get(f"/v1/videos/{job_id}").json()
                if last[job_id]["status"] in statuses:
                    left.discard(job_id)
            if left:
                time.sleep(0.2)
    if left:
        sample = last[next(iter(left))]
        raise RuntimeError(f"{len(left)} jobs did not reach {statuses}; one is {sample.get('status')}: {sample}")
    return last


def _slowest(values: list[float], n: int = 5) -> list[list[float]]:
    """The ``n`` largest values with their position in the run (job number, ms): when the stalls came."""
    return [[i, round(v, 1)] for i, v in sorted(enumerate(values), key=lambda e: e[1], reverse=True)[:n]]


def _direct_floor(url: str, n: int, **kwargs: Any) -> float:
    """p50 ms of a request sent straight to a loopback peer: the floor under the gateway's hop."""
    times = []
    with httpx.Client(timeout=10) as client:
        for _ in range(n + 3):
            started = time.perf_counter()
            client.post(url, **kwargs)
            times.append((time.perf_counter() - started) * 1000)
    return percentile(times[3:], 50)


def _job_times(db: Backends | Path, env: dict[str, str], ids: list[str]) -> dict[str, tuple[int, int | None]]:
    wanted = set(ids)
    if isinstance(db, Path):
        conn = sqlite3.connect(db)
        try:
            rows = conn.execute("SELECT id, created_at, completed_at FROM jobs").fetchall()
        finally:
            conn.close()
    else:
        rows = [
            (r[0], int(r[1]), int(r[2]) if r[2] else None)
            for r in db.query(env, "SELECT id, created_at, completed_at FROM jobs")
        ]
    return {r[0]: (r[1], r[2]) for r in rows if r[0] in wanted}


def pipeline(
    backend: str, tmp: Path, backends: Backends | None, *, jobs: int, rate: float, check_polls: bool
) -> list[Result]:
    """Rows 7 and 12 (and 6 on the embedded run) on one gateway."""
    fake = FakeProcess(polls_to_complete=3, cores="1", log=tmp / f"{backend}-fake.log")
    receiver = WebhookReceiver().start()
    procs: list[Any] = []
    try:
        config = fake.providers_toml(tmp / f"{backend}-providers.toml", poll_interval=0.25)
        env = {
            "VIDGATE_CONFIG": str(config),
            "VIDGATE_ALLOW_PRIVATE_URLS": "1",
            "VIDGATE_DEFAULT_BALANCE_USD": "1e6",
            "VIDGATE_MAX_CONCURRENT_JOBS_PER_KEY": "0",
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        data = tmp / f"{backend}-data"
        if backend == "sqlite":
            procs.append(start_server(data, port, env, cores="0", log=tmp / "sqlite-serve.log"))
            where: Backends | Path = data / "vidgate.db"
        else:
            assert backends is not None
            env.update(backends.env("upstream"))
            procs.append(
                start_server(data, port, env, command="api", args=("--workers", "1"), cores="", log=tmp / "pg-api.log")
            )
            procs.append(spawn(["worker", "--data-dir", str(data)], env, log=tmp / "pg-worker.log"))
            where = backends
            time.sleep(1.5)  # the worker connects and starts listening
        key = create_key(base, "upstream", balance=1e6)
        body = {**BODY, "webhook": {"url": receiver.url, "secret": WEBHOOK_SECRET, "events": ["video.completed"]}}
        # A few jobs first, not counted: the first submit and the first delivery open their connections.
        warm = _paced_creates(base, key, WARM_UP, rate, body)
        _wait_statuses(base, key, warm, {"completed", "failed"}, timeout=120)
        ids = _paced_creates(base, key, jobs, rate, body)
        _wait_statuses(base, key, ids, {"completed", "failed"}, timeout=120)
        deadline = time.monotonic() + 60
        while len({b["data"]["id"] for _, b in receiver.received}) < len(ids) + WARM_UP and time.monotonic() < deadline:
            time.sleep(0.1)
        log = fake.log()
        times = _job_times(where, env, [*warm, *ids])
        arrivals = {k: t for t, method, path, k in log if method == "POST" and path == "/v1/videos" and k}
        cold = round(arrivals[warm[0]] - times[warm[0]][0], 1) if warm[0] in arrivals else None
        submit = [arrivals[i] - times[i][0] for i in ids if i in arrivals]
        first_hook: dict[str, float] = {}
        for arrived, hook in receiver.received:
            first_hook.setdefault(hook["data"]["id"], arrived)
        hooks = [first_hook[i] - times[i][1] for i in ids if i in first_hook and times[i][1] is not None]
        submit_floor = _direct_floor(
            f"{fake.base_url}/v1/videos",
            20,
            headers={"Authorization": f"Bearer {FAKE_KEY}"},
            files=[("prompt", (None, "floor")), ("seconds", (None, "4")), ("size", (None, "1280x720"))],
        )
        hook_floor = _direct_floor(receiver.url, 20, json={"data": {"id": "floor"}})
        results = [
            Result(
                row="7" if backend == "sqlite" else "7 (scale)",
                name=(
                    "commit of a new job → upstream submit, p99, "
                    + ("embedded (serve, SQLite)" if backend == "sqlite" else "PostgreSQL, api + worker")
                ),
                value=percentile(submit, 99),
                unit="ms",
                baseline=submit_floor,
                baseline_name="a create sent straight to the fake, p50",
                target=f"≤ {SUBMIT_TARGET_MS[backend]:g} ms",
                met=len(submit) == len(ids) and percentile(submit, 99) <= SUBMIT_TARGET_MS[backend],
                note=f"{jobs} jobs at {rate:g}/s",
                details={
                    "submit": summary_ms(submit),
                    "jobs": jobs,
                    "rate": rate,
                    "missing": len(ids) - len(submit),
                    "slowest": _slowest(submit),
                    "warm_up_jobs": WARM_UP,
                    "first_job_after_start_ms": cold,
                },
            )
        ]
        embedded = backend == "sqlite"
        results.append(
            Result(
                row="12" if embedded else "12 (scale)",
                name="terminal state → first webhook attempt, p99, "
                + ("embedded" if embedded else "PostgreSQL, api + worker"),
                value=percentile(hooks, 99),
                unit="ms",
                baseline=hook_floor,
                baseline_name="a POST sent straight to the receiver, p50",
                target=f"≤ {WEBHOOK_TARGET_MS:g} ms",
                met=len(hooks) == len(ids) and percentile(hooks, 99) <= WEBHOOK_TARGET_MS,
                details={"webhook": summary_ms(hooks), "missing": len(ids) - len(hooks), "slowest": _slowest(hooks)},
            )
        )
        if check_polls:
            results.append(_polls(base, key, fake))
        return results
    finally:
        for proc in reversed(procs):
            stop_server(proc)
        receiver.stop()
        fake.stop()


def _polls(base: str, key: str, fake: FakeProcess, window: float = 5.0, polls: int = 1000) -> Result:
    """Row 6: upstream calls per client poll, from the fake's own count over equal windows."""
    fake.configure(polls=10**9)
    (job_id,) = _paced_creates(base, key, 1, 1.0, BODY)
    job = _wait_statuses(base, key, [job_id], {"processing"}, timeout=30)[job_id]
    native = f"/v1/videos/{job['generation_id']}"
    time.sleep(1.0)

    def count(since: int, start: float, end: float) -> int:
        return sum(1 for t, m, p, _ in fake.log(since) if m == "GET" and p == native and start <= t < end)

    mark = len(fake.log())
    a0 = time.time() * 1000
    time.sleep(window)
    a1 = time.time() * 1000
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=10) as client:
        b0 = time.time() * 1000
        t0 = time.monotonic()
        for i in range(polls):
            delay = t0 + i * window / polls - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if client.get(f"/v1/videos/{job_id}").status_code != 200:
                raise RuntimeError("a client poll failed")
        remaining = t0 + window - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        b1 = time.time() * 1000
    time.sleep(0.5)
    without = count(mark, a0, a1)
    with_polls = count(mark, b0, b1) * (a1 - a0) / (b1 - b0)  # the same length of window
    extra = max(0.0, with_polls - without)
    return Result(
        row="6",
        name=f"upstream calls per client poll ({polls:,} polls in {window:g} s)",
        value=extra / polls,
        unit="calls/poll",
        baseline=float(without),
        baseline_name=f"upstream polls in {window:g} s without clients",
        target="0 (within ±1 call of the worker's own schedule)",
        met=extra <= 1.0,
        details={
            "upstream_polls_without_clients": without,
            "upstream_polls_with_clients": round(with_polls, 2),
            "client_polls": polls,
            "window_s": window,
            "worker_poll_interval_s": 0.25,
        },
    )


def run_upstream(backends: Backends | None = None, *, jobs: int = 100, rate: float = 10.0) -> list[Result]:
    results: list[Result] = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempdir("upstream")))
        results += pipeline("sqlite", tmp, None, jobs=jobs, rate=rate, check_polls=True)
        if backends is None:
            backends = stack.enter_context(Backends())
        results += pipeline("postgres", tmp, backends, jobs=jobs, rate=rate, check_polls=False)
    order = {"7": 0, "7 (scale)": 1, "6": 2, "12": 3, "12 (scale)": 4}
    return sorted(results, key=lambda r: order.get(r.row, 9))
