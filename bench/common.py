"""What the benchmarks share: servers and pinning, ``wrk``, a fixed-rate load generator, fakes, results.

Every figure a benchmark reports is paired with a baseline measured in the same run on the same
machine (``Result.baseline``), because the machine is small and often shared: absolute numbers
move with the load, ratios much less. Only loopback (127.0.0.1) is ever used.

``python -m bench.common fake --port N`` runs the OpenAI fake from ``tests/fakes`` under Granian in
its own process, with a recorder in front of it (``FakeProcess``): every request's arrival time,
method, path and ``Idempotency-Key``, readable at ``GET /_bench/log``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "bench-admin"
FAKE_KEY = "sk-bench"
WEBHOOK_SECRET = "whsec_" + "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2g="  # base64 of 30 bytes


# ---- results ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    """One line of the table: a measured value, its same-run baseline, the target and whether it was met."""

    row: str
    name: str
    value: float | None
    unit: str
    target: str
    met: bool | None
    baseline: float | None = None
    baseline_name: str = ""
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.baseline:
            return None
        return self.value / self.baseline

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_name": self.baseline_name,
            "ratio": self.ratio,
            "target": self.target,
            "met": self.met,
            "note": self.note,
            "details": self.details,
        }


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".strip()


def table(results: list[Result]) -> str:
    """The results as one Markdown table (also readable in a terminal)."""
    lines = [
        "| # | measure | value | baseline (same run) | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        base = f"{fmt(r.baseline, r.unit)} ({r.baseline_name})" if r.baseline is not None else r.baseline_name or "-"
        ratio = f"{r.ratio:.2f}×" if r.ratio is not None else "-"
        met = {True: "yes", False: "**no**", None: "-"}[r.met]
        lines.append(f"| {r.row} | {r.name} | {fmt(r.value, r.unit)} | {base} | {ratio} | {r.target} | {met} |")
    return "\n".join(lines)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50), 3),
        "p99_ms": round(percentile(values, 99), 3),
        "max_ms": round(max(values), 3) if values else math.nan,
    }


# ---- the machine ------------------------------------------------------------------------------


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


# ---- processes --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


free_port = _free_port


def _pin(cores: str) -> list[str]:
    return ["taskset", "-c", cores] if cores and shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


@contextlib.contextmanager
def pinned(cores: set[int]) -> Iterator[None]:
    """Run the calling thread (the bench's event loop) on ``cores`` for a while."""
    before = os.sched_getaffinity(0)
    usable = cores & before if (os.cpu_count() or 1) > 1 else before
    os.sched_setaffinity(0, usable or before)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def bench_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "VIDGATE_ADMIN_KEY": ADMIN, "PYTHONUNBUFFERED": "1", **(extra or {})}


def spawn(
    args: list[str], env: dict[str, str] | None = None, *, cores: str = "", log: Path | None = None
) -> subprocess.Popen[bytes]:
    """``python -m vidgate.cli.main ARGS`` in its own session (so the whole group can be stopped)."""
    out = log.open("ab") if log is not None else subprocess.DEVNULL
    try:
        return subprocess.Popen(
            [*_pin(cores), sys.executable, "-m", "vidgate.cli.main", *args],
            env=bench_env(env),
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            start_new_session=True,
            cwd=ROOT,
        )
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


def wait_healthy(base: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60.0) -> float:
    """Seconds until ``/healthz`` answers 200."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"{base} did not start within {timeout:.0f} s")


def start_server(
    data_dir: Path,
    port: int,
    env: dict[str, str] | None = None,
    *,
    command: str = "serve",
    args: tuple[str, ...] = (),
    cores: str = "0",
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """A ``vidgate serve`` (or ``api``) on 127.0.0.1:port, pinned to ``cores``, once it answers."""
    argv = [command, "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir), *args]
    proc = spawn(argv, env, cores=cores, log=log)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
    except BaseException:
        stop_server(proc)
        raise
    return proc


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def create_key(base: str, name: str = "bench", balance: float | None = None) -> str:
    body: dict[str, Any] = {"name": name}
    if balance is not None:
        body["balance"] = balance
    r = httpx.post(f"{base}/v1/admin/keys", json=body, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
    r.raise_for_status()
    return r.json()["key"]


# ---- PostgreSQL and S3 --------------------------------------------------------------------------


class Backends:
    """A throwaway PostgreSQL and S3 store (the test suite's own), started once and shared by a run.

    Each ``env(name)`` is a fresh, migrated database and its own key prefix in the one bucket.
    """

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.pg: Any = None
        self.s3: Any = None
        self._n = 0

    def _start(self) -> None:
        if self.pg is not None:
            return
        if str(ROOT / "tests") not in sys.path:
            sys.path.insert(0, str(ROOT / "tests"))
        from infra.postgres import PostgresServer
        from infra.seaweed import SeaweedS3

        self.pg = PostgresServer().start()
        self._stack.callback(self.pg.stop)
        self.s3 = SeaweedS3().start()
        self._stack.callback(self.s3.stop)

    def env(self, name: str) -> dict[str, str]:
        self._start()
        self._n += 1
        dbname = f"{re.sub(r'[^a-z0-9_]', '_', name.lower())}_{self._n}"
        env = {
            **self.s3.env(),
            "VIDGATE_DATABASE_URL": self.pg.create_database(dbname),
            "VIDGATE_BLOB_URL": f"s3://{self.s3.bucket}/{dbname}",
        }
        subprocess.run(
            [sys.executable, "-m", "vidgate.cli.main", "migrate"],
            env={**os.environ, **env},
            check=True,
            capture_output=True,
        )
        return env

    def postgres_pids(self) -> list[int]:
        """The postmaster (its backends are its children)."""
        proc = getattr(self.pg, "_proc", None)
        return [proc.pid] if proc is not None else []

    def query(self, env: dict[str, str], sql: str) -> list[list[str]]:
        """Rows of a query on one of this run's databases, as text (psql, unaligned)."""
        dbname = env["VIDGATE_DATABASE_URL"].rsplit("/", 1)[1]
        out = self.pg.psql(sql, dbname)
        return [line.split("|") for line in out.splitlines() if line]

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Backends:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def backend_env(backend: str, stack: contextlib.ExitStack) -> dict[str, str]:
    """Nothing for SQLite; for PostgreSQL a throwaway server and S3 store (the test suite's own)."""
    if backend == "sqlite":
        return {}
    backends = stack.enter_context(Backends())
    return backends.env("bench")


# ---- wrk --------------------------------------------------------------------------------------


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


# ---- a fixed-rate (open-loop) load generator ----------------------------------------------------


class _Conn(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection: a request at a time, responses framed by Content-Length."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.head_end = -1
        self.length = -1
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.length < 0:
            i = self.buf.find(b"\r\n\r\n")
            if i < 0:
                return
            head = bytes(self.buf[:i]).lower()
            self.status = int(head[9:12])
            m = head.find(b"\r\ncontent-length:")
            if m < 0:
                raise RuntimeError("the load generator needs responses with Content-Length")
            end = head.find(b"\r\n", m + 2)
            self.length = int(head[m + 17 : end if end > 0 else None])
            self.head_end = i + 4
        if len(self.buf) - self.head_end >= self.length:
            del self.buf[: self.head_end + self.length]
            self.length = -1
            waiter, self.waiter = self.waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(self.status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the server closed the connection"))

    async def request(self, data: bytes) -> int:
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(data)
        return await self.waiter


def http_request(method: str, path: str, port: int, headers: dict[str, str] | None = None, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass(slots=True)
class Load:
    rate: float
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    client_late_ms: list[float]  # how late the generator itself woke up for each request

    def summary(self) -> dict[str, Any]:
        return {
            "rate": self.rate,
            "seconds": self.seconds,
            **summary_ms(self.latencies_ms),
            "statuses": self.statuses,
            "client_wakeup_late_p99_ms": round(percentile(self.client_late_ms, 99), 3),
        }


async def open_loop(port: int, request: bytes, rate: float, seconds: float, connections: int = 16) -> Load:
    """Send ``request`` at a fixed ``rate`` for ``seconds``, wrk2-style: open loop, latency from the
    *intended* send time, so a stalled server is charged for the requests it made wait (no coordinated
    omission). Request i goes on connection i mod ``connections`` at ``t0 + i / rate``.
    """
    loop = asyncio.get_running_loop()
    conns = [(await loop.create_connection(_Conn, "127.0.0.1", port))[1] for _ in range(connections)]
    n = max(1, int(rate * seconds))
    latencies = [0.0] * n
    late = [0.0] * n
    statuses: Counter[int] = Counter()
    t0 = loop.time() + 0.05

    async def drive(c: int) -> None:
        conn = conns[c]
        for i in range(c, n, connections):
            due = t0 + i / rate
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            late[i] = max(0.0, loop.time() - due) * 1000
            statuses[await conn.request(request)] += 1
            latencies[i] = (loop.time() - due) * 1000

    try:
        await asyncio.gather(*(drive(c) for c in range(min(connections, n))))
    finally:
        for conn in conns:
            if conn.transport is not None:
                conn.transport.close()
    return Load(rate, seconds, latencies, dict(statuses), late)


async def closed_loop(port: int, requests: list[bytes], rounds: int, warmup: int = 5) -> list[list[float]]:
    """Latency of each request in ``requests``, sent in turn on one connection ``rounds`` times."""
    loop = asyncio.get_running_loop()
    conn = (await loop.create_connection(_Conn, "127.0.0.1", port))[1]
    out: list[list[float]] = [[] for _ in requests]
    try:
        for r in range(warmup + rounds):
            for i, req in enumerate(requests):
                started = loop.time()
                status = await conn.request(req)
                if status != 200:
                    raise RuntimeError(f"request {i} answered {status}")
                if r >= warmup:
                    out[i].append((loop.time() - started) * 1000)
    finally:
        assert conn.transport is not None
        conn.transport.close()
    return out


# ---- a loopback webhook receiver ----------------------------------------------------------------


class WebhookReceiver:
    """Records the arrival time (epoch ms) of every POST, with its JSON body; answers 204."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[tuple[float, dict[str, Any]]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="webhook-receiver")
        self._ready = threading.Event()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.time() * 1000
                m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                body = await reader.readexactly(int(m.group(1))) if m else b""
                with contextlib.suppress(ValueError):
                    self.received.append((arrived, json.loads(body or b"{}")))
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def start(self) -> WebhookReceiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


# ---- the OpenAI fake in its own process ---------------------------------------------------------


class FakeProcess:
    """``tests/fakes/openai_fake.OpenAIFake`` served by Granian in a child process, with a recorder.

    ``log()`` returns ``[(arrival epoch ms, method, path, idempotency key), ...]``; ``pause(True)``
    makes polls answer the job's current state without advancing it; ``configure(polls=N)`` sets
    how many polls complete a job.
    """

    def __init__(self, *, polls_to_complete: int = 3, cores: str = "1", log: Path | None = None) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        out = log.open("ab") if log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [*_pin(cores), sys.executable, "-m", "bench.common", "fake", "--port", str(self.port)],
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]),
                "BENCH_FAKE_POLLS": str(polls_to_complete),
            },
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
            start_new_session=True,
        )
        if log is not None:
            out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.base_url}/_bench/log?since=0", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the fake upstream did not start")
            time.sleep(0.05)

    def log(self, since: int = 0) -> list[tuple[float, str, str, str | None]]:
        r = httpx.get(f"{self.base_url}/_bench/log", params={"since": since}, timeout=60)
        r.raise_for_status()
        return [tuple(e) for e in r.json()]  # type: ignore[misc]

    def pause(self, on: bool) -> None:
        httpx.post(f"{self.base_url}/_bench/pause", params={"on": int(on)}, timeout=10).raise_for_status()

    def configure(self, *, polls: int) -> None:
        httpx.post(f"{self.base_url}/_bench/config", params={"polls": polls}, timeout=10).raise_for_status()

    def pids(self) -> list[int]:
        return descendants(self.proc.pid)

    def providers_toml(self, path: Path, poll_interval: float, timeout: float = 30.0) -> Path:
        path.write_text(
            "[providers.openai]\n"
            f'api_key = "{FAKE_KEY}"\n'
            f'base_url = "{self.base_url}/v1"\n'
            f"poll_interval_seconds = {poll_interval}\n"
            f"timeout_seconds = {timeout}\n"
        )
        return path

    def stop(self) -> None:
        stop_server(self.proc)  # type: ignore[arg-type]

    def __enter__(self) -> FakeProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _fake_app() -> Any:
    """The Granian factory for ``FakeProcess``: the OpenAI fake behind a recorder (runs in the child)."""
    import orjson
    from fakes.openai_fake import OpenAIFake

    fake = OpenAIFake(api_key=FAKE_KEY, polls_to_complete=int(os.environ.get("BENCH_FAKE_POLLS", "3")))
    entries: list[tuple[float, str, str, str | None]] = []
    state = {"paused": False}
    poll_path = re.compile(r"^/v1/videos/(video_[0-9a-f]+)$")

    async def reply(send: Any, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await fake.app(scope, receive, send)
        path = scope["path"]
        if path.startswith("/_bench/"):
            params = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
            if path == "/_bench/log":
                return await reply(send, 200, orjson.dumps(entries[int(params.get("since", 0)) :]))
            if path == "/_bench/pause":
                state["paused"] = params.get("on") == "1"
            elif path == "/_bench/config":
                fake.polls_to_complete = int(params["polls"])
            return await reply(send, 200, b"{}")
        key = next((v.decode() for k, v in scope["headers"] if k == b"idempotency-key"), None)
        entries.append((time.time() * 1000, scope["method"], path, key))
        m = poll_path.match(path)
        if state["paused"] and scope["method"] == "GET" and m and m.group(1) in fake.jobs:
            return await reply(send, 200, orjson.dumps(fake._video(fake.jobs[m.group(1)])))
        fake.requests.clear()  # the recorder above keeps what the benches need; this list would only grow
        return await fake.app(scope, receive, send)

    return app


def _serve_fake(port: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "bench.common:_fake_app",
        address="127.0.0.1",
        port=port,
        interface=Interfaces.ASGI,
        workers=1,
        factory=True,
        log_access=False,
        log_enabled=False,
        backlog=4096,
    ).serve()


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


def tempdir(prefix: str, *, fast: bool = False) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=f"vidgate-bench-{prefix}-", dir=fast_tmp() if fast else None)


if __name__ == "__main__":
    main()
