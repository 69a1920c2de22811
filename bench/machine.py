"""The machine the benchmarks run on: its load, processes' memory and CPU, py-spy profiles, limits and scratch space."""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": sys.version.split()[0],
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }


def wait_for_quiet(max_load: float, timeout: float) -> float:
    """Wait up to ``timeout`` s for the 1-minute load average to drop below ``max_load``; the load then."""
    deadline = time.monotonic() + timeout
    while loadavg() >= max_load and time.monotonic() < deadline:
        time.sleep(2)
    return loadavg()


def rss_mb(pid: int) -> float:
    """Resident set size of one process (VmRSS), in MiB; 0 when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    m = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(m.group(1)) / 1024 if m else 0.0


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busiest(pid: int) -> int:
    """The process under ``pid`` (itself included) that has used the most CPU: Granian's worker, say."""
    return max(descendants(pid), key=cpu_seconds)


class Profiler:
    """``py-spy record`` on one process for a while, in the background; ``top()`` summarises it.

    Own time is the sampled share of stacks whose innermost frame is the function; cumulative is the
    share of stacks the function appears in at all. No-op (``top()`` empty) without py-spy.
    """

    def __init__(self, pid: int, seconds: float, out: Path, rate: int = 100) -> None:
        self.out = out
        exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.proc: subprocess.Popen[bytes] | None = None
        if Path(exe).exists():
            self.proc = subprocess.Popen(
                [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate),
                 "--format", "raw", "--nonblocking", "--gil", "--output", str(out)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip

    def top(self, n: int = 15) -> list[dict[str, Any]]:
        if self.proc is None:
            return []
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return []
        if not self.out.exists():
            return []
        own: Counter[str] = Counter()
        cumulative: Counter[str] = Counter()
        total = 0
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = [_frame(f) for f in stack.split(";")]
            total += int(count)
            own[frames[-1]] += int(count)
            for f in set(frames):
                cumulative[f] += int(count)
        if not total:
            return []
        return [
            {
                "function": f,
                "own_pct": round(100 * c / total, 1),
                "cumulative_pct": round(100 * cumulative[f] / total, 1),
            }
            for f, c in own.most_common(n)
        ]


def _frame(raw: str) -> str:
    """``func (/long/path/site-packages/pkg/mod.py:123)`` → ``func (pkg/mod.py)``: one entry per function."""
    m = re.match(r"(.*?) \((.*?)(?::\d+)?\)$", raw)
    if not m:
        return raw
    path = m.group(2)
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{m.group(1)} ({path})"


def print_top(title: str, top: list[dict[str, Any]]) -> None:
    if not top:
        return
    print(f"{title} (py-spy, share of samples):")
    print(f"{'own %':>6} {'cum %':>6}  function")
    for r in top:
        print(f"{r['own_pct']:>6.1f} {r['cumulative_pct']:>6.1f}  {r['function']}")


def raise_fd_limit(wanted: int = 65536) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fast_tmp(min_free_gib: float = 4.0) -> str | None:
    """/dev/shm when it has room (disk writes on these VMs are slow), else the default temp dir."""
    with contextlib.suppress(OSError):
        st = os.statvfs("/dev/shm")
        if st.f_bavail * st.f_frsize >= min_free_gib * (1 << 30) and os.access("/dev/shm", os.W_OK):
            return "/dev/shm"
    return None
