"""The worker against a fake upstream: submit latency, polls, webhooks and 10,000 jobs in flight.

Every upstream here is ``tests/fakes/openai_fake.OpenAIFake`` in its own process (``FakeProcess``),
which records the arrival time of every request it gets (its ``Idempotency-Key`` is the job id on a
create), so the gateway is timed from the outside. Times in the database are epoch milliseconds
taken when the row was written; every process is on this machine, so one clock.

Group ``upstream`` (rows 6, 7, 12; in ``bench.upstream``):
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

from bench.common import (
    FakeProcess,
    Profiler,
    Result,
    busiest,
    cpu_seconds,
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
from bench.upstream import BODY, run_upstream
from bench.upstream import _wait_statuses as _wait_statuses  # content and sockets import it from here

INFLIGHT_RSS_MB = 300.0
INFLIGHT_LATE_S = 1.0
RAMP_LIMIT_S = 90.0  # how long row 8 waits for the worker to submit every job before it watches anyway


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
