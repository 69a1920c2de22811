"""The worker against a fake upstream: submit latency, polls, webhooks and 10,000 jobs in flight.

Every upstream here is ``tests/fakes/openai_fake.OpenAIFake`` in its own process (``FakeProcess``),
which records the arrival time of every request it gets (its ``Idempotency-Key`` is the job id on a
create), so the gateway is timed from the outside. Times in the database are epoch milliseconds
taken when the row was written; every process is on this machine, so one clock.

Group ``upstream`` (rows 6, 7, 12):
- 7: jobs created at a fixed pace (after a few warm-up jobs, whose first submit opens the worker's
  connection; reported apart); for each, the fake's arrival time of its create minus the job's
  ``jobs.created_at``. Embedded (``vidgate serve`` on SQLite) and at scale (PostgreSQL + S3, one
  ``vidgate api`` and one ``vidgate worker``). Baseline: a create sent straight to the fake.
- 12: the same jobs carry a webhook for ``video.completed``; a loopback receiver records arrivals;
  first arrival minus ``jobs.completed_at``. Baseline: a POST sent straight to the receiver.
- 6: one job the fake never finishes; the fake's polls for it are counted over a window with no
  client, then over an equal window in which a client polls ``GET /v1/videos/{id}`` 1,000 times.

Group ``inflight`` (row 8): 10,000 jobs the fake never finishes, one standalone ``vidgate worker``
(SQLite) polling each every 5 s: the worker's peak RSS, and the lateness of its polls (``lateness``:
a job is due 5 s after the fake accepted it, then 5 s after each poll; a poll still missing at the
end counts as end minus due). 100 jobs first give the baseline, then the rest are created at once;
once the worker has submitted them all (the ramp, reported apart with its own lateness), it is
watched for ``--observe`` seconds while it tracks all of them.

Run ``python -m bench.inflight [--only upstream,inflight] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    FAKE_KEY,
    WEBHOOK_SECRET,
    Backends,
    FakeProcess,
    Profiler,
    Result,
    WebhookReceiver,
    busiest,
    cpu_seconds,
    create_key,
    free_port,
    percentile,
    print_top,
    rss_mb,
    spawn,
    start_server,
    stop_server,
    summary_ms,
    table,
    tempdir,
)

BODY: dict[str, Any] = {"model": "openai/sora-2", "prompt": "a paper boat on a rainy street", "duration": 4}
SUBMIT_TARGET_MS = {"sqlite": 20.0, "postgres": 250.0}
WEBHOOK_TARGET_MS = 500.0
INFLIGHT_RSS_MB = 300.0
WARM_UP = 5
INFLIGHT_LATE_S = 1.0
RAMP_LIMIT_S = 90.0  # how long row 8 waits for the worker to submit every job before it watches anyway


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


# ---- row 8: 10,000 jobs in flight on one worker ---------------------------------------------------


async def _create_jobs(data: Path, config: Path, n: int, owner: str | None = None) -> tuple[float, str]:
    """``n`` jobs through the job service in this process (validate, price, hold, insert, event)."""
    import orjson

    from vidgate.gateway.services import Gateway
    from vidgate.gateway.settings import load_settings

    settings = load_settings(data_dir=data, config=str(config), default_balance_usd=1e9)
    gateway = await Gateway.open(settings)
    try:
        if owner is None:
            owner = (await gateway.keys.create("inflight", round(1e9 * 1e6))).id
        body = orjson.dumps(BODY)
        started = time.perf_counter()
        for _ in range(n):
            await gateway.jobs.create(owner, body, idempotency_key=None, request_id="req_bench")
        return time.perf_counter() - started, owner
    finally:
        await gateway.close()


def lateness(
    log: list[tuple[float, str, str, str | None]], natives: dict[str, str], interval_ms: float, start: float, end: float
) -> tuple[list[float], int]:
    """Lateness (ms) of every poll that fell due in ``[start, end)``: when it came minus when it was due.

    A job is due ``interval`` after the fake accepted it, then ``interval`` after each poll. A poll
    still missing at ``end`` counts as ``end - due``, a lower bound, so a worker that falls behind
    is not flattered by the polls it never made. Also returns how many of those were missing.
    """
    accepted: dict[str, float] = {}
    polls: dict[str, list[float]] = defaultdict(list)
    for t, method, path, key in log:
        if method == "POST" and path == "/v1/videos" and key in natives:
            accepted.setdefault(natives[key], t)
        elif method == "GET" and path.startswith("/v1/videos/video_"):
            polls[path.rsplit("/", 1)[1]].append(t)
    out, missing = [], 0
    for native, at in accepted.items():
        due = at + interval_ms
        for t in sorted(polls.get(native, ())):
            if start <= due < end:
                out.append(t - due)
            due = t + interval_ms
        if start <= due < end - 1000:  # fell due a second or more before the end, never came
            out.append(end - due)
            missing += 1
    return out, missing


def _settled_rss(pid: int, timeout: float = 20.0) -> float:
    """RSS once the process has finished starting: two readings a second apart within 1 MiB."""
    deadline = time.monotonic() + timeout
    last = rss_mb(pid)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = rss_mb(pid)
        if abs(now - last) < 1.0:
            return now
        last = now
    return last


def _natives(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT id, native_id FROM jobs WHERE native_id IS NOT NULL").fetchall())
    finally:
        conn.close()


def run_inflight(
    *, jobs: int = 10_000, interval: float = 5.0, observe: float = 20.0, profile: bool = False
) -> list[Result]:
    """Row 8: ``jobs / 100`` jobs for a baseline, then the rest, on one worker; RSS and poll lateness."""
    few = max(1, jobs // 100)
    with tempdir("inflight") as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        data = tmp / "data"
        fake = stack.enter_context(FakeProcess(polls_to_complete=10**9, cores="1", log=tmp / "fake.log"))
        config = fake.providers_toml(tmp / "providers.toml", poll_interval=interval)
        env = {"VIDGATE_CONFIG": str(config), "VIDGATE_DEFAULT_BALANCE_USD": "1e9"}
        # An all-in-one server once, only to migrate the database (the standalone worker does not).
        stop_server(start_server(data, free_port(), {**env, "VIDGATE_WORKER_ENABLED": "0"}, cores=""))
        worker = spawn(["worker", "--data-dir", str(data)], env, cores="0", log=tmp / "worker.log")
        stack.callback(stop_server, worker)
        idle_rss = _settled_rss(worker.pid)
        samples: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(rss_mb(worker.pid))
                stop.wait(0.5)

        threading.Thread(target=sample, daemon=True).start()
        stack.callback(stop.set)
        # Phase 1, the baseline: a few jobs, two and a half intervals.
        t_few = time.time() * 1000
        _, owner = asyncio.run(_create_jobs(data, config, few))
        time.sleep(interval * 0.5)  # submitted by now; what follows is polls alone
        steady0, steady_cpu0 = time.time() * 1000, cpu_seconds(worker.pid)
        time.sleep(interval * 2)
        steady1, steady_cpu = time.time() * 1000, cpu_seconds(worker.pid) - steady_cpu0
        # Phase 2: the rest arrive at once; the worker submits them (the ramp), then ``observe``
        # seconds of tracking all of them (the steady state the row is about).
        t_many = time.time() * 1000
        created_s, _ = asyncio.run(_create_jobs(data, config, jobs - few, owner))
        ramp_deadline = time.monotonic() + RAMP_LIMIT_S
        seen, posts = 0, 0
        while posts < jobs and time.monotonic() < ramp_deadline:
            time.sleep(0.5)
            fresh = fake.log(since=seen)
            seen += len(fresh)
            posts += sum(1 for _, m, p, _ in fresh if m == "POST" and p == "/v1/videos")
        t_steady = time.time() * 1000
        fake_pid = busiest(fake.proc.pid)  # Granian's worker process, which serves the fake
        cpu0, fake0, w0 = cpu_seconds(worker.pid), cpu_seconds(fake_pid), time.monotonic()
        prof = Profiler(worker.pid, 10, tmp / "worker.pyspy") if profile else None
        time.sleep(observe)
        cpu_share = (cpu_seconds(worker.pid) - cpu0) / (time.monotonic() - w0)
        fake_share = (cpu_seconds(fake_pid) - fake0) / (time.monotonic() - w0)
        t_end = time.time() * 1000
        stop.set()
        log = fake.log()
        natives = _natives(data / "vidgate.db")
        top = prof.top() if prof else []
    base, _ = lateness(log, natives, interval * 1000, t_few, t_many)
    ramp, _ = lateness(log, natives, interval * 1000, t_many, t_steady)
    late, missing = lateness(log, natives, interval * 1000, t_steady, t_end)
    submitted = sum(1 for _, m, p, _ in log if m == "POST" and p == "/v1/videos")
    polled = sum(1 for t, m, _, _ in log if m == "GET" and t_steady <= t < t_end)
    steady_polls = sum(1 for t, m, _, _ in log if m == "GET" and steady0 <= t < steady1)
    cpu_ms_per_poll = 1000 * steady_cpu / steady_polls if steady_polls else None
    peak = max(samples, default=0.0)
    window_s = (t_end - t_steady) / 1000
    details = {
        "jobs": jobs,
        "baseline_jobs": few,
        "poll_interval_s": interval,
        "create_seconds_in_process": round(created_s, 1),
        "ramp_s": round((t_steady - t_many) / 1000, 1),
        "ramp_lateness": summary_ms(ramp),
        "observed_s": round(window_s, 1),
        "submitted_by_end": submitted,
        "polls_in_window": polled,
        "polls_per_second": round(polled / window_s, 1),
        "polls_due_never_made": missing,
        "idle_rss_mb": round(idle_rss, 1),
        "peak_rss_mb": round(peak, 1),
        "lateness": summary_ms(late),
        "baseline_lateness": summary_ms(base),
        "worker_cpu_share": round(cpu_share, 2),
        "fake_cpu_share": round(fake_share, 2),
        "baseline_worker_cpu_ms_per_poll": round(cpu_ms_per_poll, 2) if cpu_ms_per_poll else None,
        "jobs_one_core_can_poll_every_interval": round(interval * 1000 / cpu_ms_per_poll) if cpu_ms_per_poll else None,
        "profile": top,
    }
    if top:
        print_top(f"vidgate worker with {jobs:,} jobs in flight", top)
    late_p99 = percentile(late, 99) / 1000 if late else float("inf")
    return [
        Result(
            row="8a",
            name=f"worker RSS with {jobs:,} upstream jobs in flight ({submitted:,} submitted)",
            value=peak,
            unit="MB",
            baseline=idle_rss,
            baseline_name="the same worker idle",
            target=f"< {INFLIGHT_RSS_MB:g} MB",
            met=peak < INFLIGHT_RSS_MB,
            note="MB here is MiB (VmRSS)",
            details=details,
        ),
        Result(
            row="8b",
            name=f"lateness of scheduled polls, p99, {jobs:,} jobs every {interval:g} s, one worker, "
            f"{window_s:.0f} s once all were submitted",
            value=late_p99,
            unit="s",
            baseline=percentile(base, 99) / 1000 if base else None,
            baseline_name=f"{few} jobs in flight, p99",
            target=f"< {INFLIGHT_LATE_S:g} s",
            met=late_p99 < INFLIGHT_LATE_S and submitted >= jobs,
            details=details,
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="upstream,inflight", help="upstream (rows 6, 7, 12), inflight (row 8)")
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs in flight for row 8")
    parser.add_argument(
        "--observe", type=float, default=20.0, help="seconds row 8 watches the worker once every job is submitted"
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the worker during row 8")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    only = args.only.split(",")
    results: list[Result] = []
    if "upstream" in only:
        results += run_upstream()
    if "inflight" in only:
        results += run_inflight(jobs=args.jobs, observe=args.observe, profile=args.profile)
    print(table(results))
    for r in results:
        print(r.row, json.dumps({k: v for k, v in r.details.items() if k != "profile"}))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2))


if __name__ == "__main__":
    main()
