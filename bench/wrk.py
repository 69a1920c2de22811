"""``wrk``: running it pinned, and reading its latency and error counts."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.processes import _pin


@dataclass(frozen=True, slots=True)
class Row:
    route: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    assert m, text
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str, route: str) -> Row:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    return Row(route=route, requests_per_second=rps, p50_ms=p50, p99_ms=p99)


def non_2xx(out: str) -> int:
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return int(m.group(1)) if m else 0


def run_wrk(
    url: str,
    seconds: float,
    connections: int,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
    cores: str = "1",
) -> str:
    """wrk's output (one thread, pinned to ``cores``)."""
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    args = [*_pin(cores), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
    if script is not None:
        args += ["-s", str(script)]
    return subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout


def wrk(
    url: str, seconds: int, connections: int, headers: dict[str, str] | None = None, rate: int | None = None
) -> Row:
    out = run_wrk(url, seconds, connections, headers)
    return parse_wrk(out, url.split("127.0.0.1")[1].split("/", 1)[1])
