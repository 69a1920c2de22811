"""What the benchmarks share: servers and pinning, ``wrk``, a fixed-rate load generator, fakes, results.

Every figure a benchmark reports is paired with a baseline measured in the same run on the same
machine (``Result.baseline``), because the machine is small and often shared: absolute numbers
move with the load, ratios much less. Only loopback (127.0.0.1) is ever used.

Each concern has its module (``report``, ``machine``, ``processes``, ``backends``, ``wrk``,
``loadgen``, ``webhook_receiver``, ``fake_upstream``); this one names them all, so a benchmark
imports what it needs from ``bench.common``.

``python -m bench.common fake --port N`` runs the OpenAI fake from ``tests/fakes`` under Granian in
its own process, with a recorder in front of it (``FakeProcess``): every request's arrival time,
method, path and ``Idempotency-Key``, readable at ``GET /_bench/log``.
"""

from __future__ import annotations

import json

from bench.backends import Backends, backend_env
from bench.fake_upstream import FAKE_KEY, FakeProcess, _serve_fake
from bench.loadgen import Load, closed_loop, http_request, open_loop
from bench.machine import (
    Profiler,
    busiest,
    cpu_seconds,
    descendants,
    fast_tmp,
    loadavg,
    machine,
    print_top,
    raise_fd_limit,
    rss_mb,
    wait_for_quiet,
)
from bench.processes import (
    ADMIN,
    ROOT,
    _free_port,
    _pin,
    bench_env,
    create_key,
    free_port,
    pinned,
    spawn,
    start_server,
    stop_server,
    tempdir,
    wait_healthy,
)
from bench.report import Result, fmt, percentile, summary_ms, table
from bench.webhook_receiver import WEBHOOK_SECRET, WebhookReceiver
from bench.wrk import Row, non_2xx, parse_wrk, run_wrk, wrk

__all__ = [
    "ADMIN",
    "FAKE_KEY",
    "ROOT",
    "WEBHOOK_SECRET",
    "Backends",
    "FakeProcess",
    "Load",
    "Profiler",
    "Result",
    "Row",
    "WebhookReceiver",
    "_free_port",
    "_pin",
    "backend_env",
    "bench_env",
    "busiest",
    "closed_loop",
    "cpu_seconds",
    "create_key",
    "descendants",
    "fast_tmp",
    "fmt",
    "free_port",
    "http_request",
    "loadavg",
    "machine",
    "non_2xx",
    "open_loop",
    "parse_wrk",
    "percentile",
    "pinned",
    "print_top",
    "raise_fd_limit",
    "rss_mb",
    "run_wrk",
    "spawn",
    "start_server",
    "stop_server",
    "summary_ms",
    "table",
    "tempdir",
    "wait_for_quiet",
    "wait_healthy",
    "wrk",
]


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="bench helpers")
    sub = parser.add_subparsers(dest="cmd", required=True)
    fake = sub.add_parser("fake", help="serve the recorded OpenAI fake")
    fake.add_argument("--port", type=int, required=True)
    sub.add_parser("machine", help="print the machine description")
    args = parser.parse_args(argv)
    if args.cmd == "fake":
        _serve_fake(args.port)
    else:
        print(json.dumps(machine(), indent=2))


if __name__ == "__main__":
    main()
