"""Run every benchmark, print one table and write JSON: ``python -m bench [--only NAME,...] [--json PATH]``.

Groups (each also runs alone as its module, ``python -m bench.<module>``):

=========  =====================  ====================================================================
name       module                 rows
=========  =====================  ====================================================================
cpu        bench.latency          3: CPU per GET in process, with a profile
latency    bench.latency          1, 2, 4: GET and POST throughput and fixed-rate p99, SQLite and PG
listing    bench.listing          5: list pages over 1,000,000 jobs
upstream   bench.inflight         6, 7, 12: upstream calls per poll, submit latency, webhook latency
inflight   bench.inflight         8: one worker, 10,000 upstream jobs in flight
content    bench.content          9: /content Range reads against nginx
render     bench.render           10: procedural render against the ffmpeg CLI
sockets    bench.sockets          11: 2,000 websockets, commit → message latency
startup    bench.startup          13: API idle RSS and start-up time
longpoll   bench.longpoll         14: following a job: plain polls, long polls, websocket
=========  =====================  ====================================================================

Every row carries a baseline measured in the same run. Before each group the run waits (up to
``--quiet-wait`` seconds) for the 1-minute load average to fall below ``--max-load``, and records
the load before and after each group, so a figure taken on a busy machine can be told apart.
PostgreSQL and the S3 store are started once and shared by the groups that need them.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import Backends, Result, loadavg, machine, table, wait_for_quiet

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"
ORDER = ["cpu", "latency", "listing", "upstream", "inflight", "content", "render", "sockets", "startup", "longpoll"]


def _render(repeat: int = 2) -> list[Result]:
    from bench import render

    results = render.run(repeat)
    return [
        Result(
            row=f"10{'ab'[i]}",
            name=f"procedural render {r.size}, {r.seconds} s ({r.frames} frames), frames/s",
            value=r.ours_fps,
            unit="fps",
            baseline=r.ffmpeg_fps,
            baseline_name="ffmpeg CLI, same frames and x264 options",
            target="reported (the spec sets none)",
            met=None,
            details={"ours_fps": r.ours_fps, "ffmpeg_fps": r.ffmpeg_fps, "repeat": repeat},
        )
        for i, r in enumerate(results)
    ]


def groups(backends: Backends, profile: bool) -> dict[str, Callable[[], list[Result]]]:
    from bench import content, inflight, latency, listing, longpoll, sockets, startup

    return {
        "cpu": lambda: latency.run_cpu(),
        "latency": lambda: latency.run_http(backends, profile=profile),
        "listing": lambda: listing.run(),
        "upstream": lambda: inflight.run_upstream(backends),
        "inflight": lambda: inflight.run_inflight(profile=profile),
        "content": lambda: content.run(profile=profile),
        "render": _render,
        "sockets": lambda: sockets.run(backends, profile=profile),
        "startup": lambda: startup.run(),
        "longpoll": lambda: longpoll.run(),
    }


def _row_key(r: Result) -> tuple[int, str]:
    m = re.match(r"(\d+)(.*)", r.row)
    return (int(m.group(1)), m.group(2)) if m else (99, r.row)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated groups: {', '.join(ORDER)}")
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
    parser.add_argument("--max-load", type=float, default=1.0, help="wait for the load average to drop below this")
    parser.add_argument("--quiet-wait", type=float, default=10.0, help="seconds to wait for it at most, per group")
    parser.add_argument("--profile", action="store_true", help="py-spy the server or worker where a row is bound")
    args = parser.parse_args(argv)
    chosen = ORDER if not args.only else [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in chosen if g not in ORDER]
    if unknown:
        parser.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    started = time.time()
    runs: dict[str, dict[str, Any]] = {}
    results: list[Result] = []
    with Backends() as backends:
        available = groups(backends, args.profile)
        for name in [g for g in ORDER if g in chosen]:
            before = wait_for_quiet(args.max_load, args.quiet_wait)
            print(f"== {name} (load {before:.2f})", flush=True)
            t0 = time.monotonic()
            try:
                got = available[name]()
                error = None
            except Exception as exc:  # one broken group must not lose the others' figures
                traceback.print_exc()
                error = f"{type(exc).__name__}: {exc}"
                got = [Result(row=name, name=f"{name} failed", value=None, unit="", target="-", met=False, note=error)]
            runs[name] = {
                "seconds": round(time.monotonic() - t0, 1),
                "load_before": before,
                "load_after": loadavg(),
                "error": error,
            }
            results += got
            print(table(got), flush=True)
    results.sort(key=_row_key)
    print()
    print(table(results))
    missed = [r for r in results if r.met is False]
    print(f"\n{len(results)} figures, {len(missed)} missed their target; {time.time() - started:.0f} s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "groups": runs,
        "results": [r.as_dict() for r in results],
    }
    args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
