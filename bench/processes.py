"""Server processes: free ports, CPU pinning, starting and stopping ``vidgate`` and making API keys."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.machine import fast_tmp

ROOT = Path(__file__).resolve().parent.parent
ADMIN = "bench-admin"


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


def tempdir(prefix: str, *, fast: bool = False) -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix=f"vidgate-bench-{prefix}-", dir=fast_tmp() if fast else None)
