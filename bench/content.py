"""``/content`` Range reads from the local store, one core, next to nginx serving the same file.

A 256 MiB file is stored as a completed job's output (a row written straight into the database, with
its real size and sha256, in the blob store's own layout), so the bench does not spend minutes on a
render; the bytes of an MP4 do not change how ranges are served. ``vidgate serve`` (worker off) and
nginx (``worker_processes 1``, ``sendfile on``, access log off) each run pinned to core 0 in turn;
``wrk`` on core 1 asks for random aligned ranges (a Lua script picks the offset of every request),
8 MiB and 64 KiB, the same script for both servers. MB is 10^6 bytes.

With ``--store s3`` (or ``both``) it also measures an object store (PostgreSQL + SeaweedFS S3, a
rendered 1280x720 output): the first 64 KiB streamed through the API, the same request answered with a
307 to a presigned URL (``VIDGATE_CONTENT_REDIRECT``), and the store serving that URL itself.

Run ``python -m bench.content [--seconds 5] [--store local|s3|both] [--json PATH]``. Needs ``nginx``
for the baseline (``apt-get install -y nginx``); without it the baseline is left empty.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.common import (
    Backends,
    Profiler,
    Result,
    _pin,
    busiest,
    cpu_seconds,
    create_key,
    descendants,
    free_port,
    non_2xx,
    parse_wrk,
    print_top,
    run_wrk,
    start_server,
    stop_server,
    table,
    tempdir,
)
from bench.inflight import _wait_statuses

SIZE = 256 << 20
CASES = ((8 << 20, 4, "8 MiB"), (64 << 10, 16, "64 KiB"))  # range length, connections, label
TARGET_MBS = 400.0
TARGET_RPS = 1500.0
TARGET_VS_NGINX = 0.5
_S3_JOB = {"model": "vidgate/procedural", "prompt": "content bench", "duration": 4, "size": "1280x720"}

_LUA = """
local size, len = {size}, {length}
local slots = math.floor(size / len)
math.randomseed(7)
request = function()
  local off = math.random(0, slots - 1) * len
  wrk.headers["Range"] = "bytes=" .. off .. "-" .. (off + len - 1)
  return wrk.format(nil)
end
"""

_NGINX = """
user root;
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path {tmp}/nginx-body;
  proxy_temp_path {tmp}/nginx-proxy;
  fastcgi_temp_path {tmp}/nginx-fastcgi;
  uwsgi_temp_path {tmp}/nginx-uwsgi;
  scgi_temp_path {tmp}/nginx-scgi;
  types {{ video/mp4 mp4; }}
  server {{
    listen 127.0.0.1:{port};
    location /blobs/ {{ alias {root}/; }}
  }}
}}
"""


def make_output(data: Path, owner: str) -> str:
    """A completed job whose one output is a ``SIZE``-byte file in the local store; its id."""
    from vidgate.gateway.ids import new_id, now_ms

    job_id = new_id("vid")
    chunk = os.urandom(1 << 20)
    digest = hashlib.sha256()
    tmp_file = data / "tmp-output.bin"
    with tmp_file.open("wb") as fh:
        for i in range(SIZE >> 20):
            block = chunk[i:] + chunk[:i]  # not one repeated MiB
            fh.write(block)
            digest.update(block)
    sha = digest.hexdigest()
    key = f"videos/{job_id}/0-{sha[:16]}.mp4"
    dest = data / "blobs" / key
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp_file.rename(dest)
    now = now_ms()
    outputs = [
        {
            "index": 0, "asset_id": new_id("ast"), "key": key, "mime_type": "video/mp4", "bytes": SIZE,
            "sha256": sha, "width": 1920, "height": 1080, "duration_seconds": 20.0, "frames": 480,
            "has_audio": False,
        }
    ]  # fmt: skip
    spec = {
        "model": "vidgate/procedural", "prompt": "content bench", "duration": 20, "width": 1920, "height": 1080,
        "audio": False,
    }  # fmt: skip
    conn = sqlite3.connect(data / "vidgate.db", isolation_level=None)
    try:
        conn.execute(
            "INSERT INTO jobs (id, owner_id, model, status, provider, native_id, spec, created_at, updated_at, "
            "started_at, completed_at, deadline_at, expected_seconds, progress, progress_source, attempts, outputs, "
            "quote, cost, billing_state) VALUES (?, ?, 'vidgate/procedural', 'completed', 'vidgate', ?, ?, ?, ?, ?, "
            "?, ?, 30, 100, 'provider', '[]', ?, 0, 0, 'none')",
            (job_id, owner, job_id, orjson.dumps(spec).decode(), now, now, now, now, now + 3_600_000,
             orjson.dumps(outputs).decode()),
        )  # fmt: skip
    finally:
        conn.close()
    return key


def _owner(data: Path, key: str) -> str:
    from vidgate.gateway.auth import hash_key

    conn = sqlite3.connect(data / "vidgate.db")
    try:
        return conn.execute("SELECT owner_id FROM api_keys WHERE key_hash = ?", (hash_key(key),)).fetchone()[0]
    finally:
        conn.close()


def _measure(
    url: str, seconds: int, tmp: Path, server: int, headers: dict[str, str] | None = None
) -> dict[str, dict[str, float]]:
    """Each case's rate and latency, and the CPU µs per request of ``server``'s processes (a busy
    machine moves that far less than the rate)."""
    out = {}
    for length, connections, label in CASES:
        script = tmp / f"range-{length}.lua"
        script.write_text(_LUA.format(size=SIZE, length=length))
        run_wrk(url, 1, connections, headers, script)  # warm-up: the page cache, the connections
        pids = descendants(server)
        cpu = sum(map(cpu_seconds, pids))
        text = run_wrk(url, seconds, connections, headers, script)
        cpu = sum(map(cpu_seconds, pids)) - cpu
        if failed := non_2xx(text):
            raise RuntimeError(f"{failed} range requests failed on {url}")
        row = parse_wrk(text, url)
        out[label] = {
            "requests_per_second": row.requests_per_second,
            "mb_per_second": row.requests_per_second * length / 1e6,
            "p50_ms": row.p50_ms,
            "p99_ms": row.p99_ms,
            "connections": connections,
            "cpu_us_per_request": round(cpu / (row.requests_per_second * seconds) * 1e6, 1),
        }
    return out


def nginx_baseline(root: Path, key: str, seconds: int, tmp: Path) -> dict[str, dict[str, float]] | None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        print("nginx not found: no baseline for /content (apt-get install -y nginx)")
        return None
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(_NGINX.format(tmp=tmp, port=port, root=root))
    proc = subprocess.Popen(
        [*_pin("0"), nginx, "-c", str(conf), "-p", str(tmp), "-e", str(tmp / "nginx-error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        for _ in range(100):
            try:
                run_wrk(f"http://127.0.0.1:{port}/blobs/{key}", 1, 1)
                break
            except subprocess.CalledProcessError:
                time.sleep(0.1)
        return _measure(f"http://127.0.0.1:{port}/blobs/{key}", seconds, tmp, proc.pid)
    finally:
        stop_server(proc)  # type: ignore[arg-type]


def run(seconds: int = 5, profile: bool = False) -> list[Result]:
    with tempdir("content") as tmp_name:
        tmp = Path(tmp_name)
        data = tmp / "data"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        proc = start_server(data, port, {"VIDGATE_WORKER_ENABLED": "0"}, log=tmp / "serve.log")
        try:
            key = create_key(base, "content")
            blob_key = make_output(data, _owner(data, key))
            job_id = blob_key.split("/")[1]
            url, auth = f"{base}/v1/videos/{job_id}/content", {"Authorization": f"Bearer {key}"}
            ours = _measure(url, seconds, tmp, proc.pid, auth)
            top = []
            if profile:  # an extra 64 KiB pass under py-spy, after the measured ones
                prof = Profiler(busiest(proc.pid), seconds, tmp / "content.pyspy")
                length, connections, label = CASES[1]
                run_wrk(url, seconds, connections, auth, tmp / f"range-{length}.lua")
                top = prof.top()
                print_top(f"vidgate serve under {label} Range reads", top)
        finally:
            stop_server(proc)
        nginx = nginx_baseline(data / "blobs", blob_key, seconds, tmp)
    big, small = CASES[0][2], CASES[1][2]
    big_ratio = ours[big]["mb_per_second"] / nginx[big]["mb_per_second"] if nginx else None
    small_ratio = ours[small]["requests_per_second"] / nginx[small]["requests_per_second"] if nginx else None
    details = {"vidgate": ours, "nginx": nginx, "file_bytes": SIZE, "profile": top}

    def cpu_note(label: str) -> str:
        theirs = f", nginx {nginx[label]['cpu_us_per_request']:.0f} µs" if nginx else ""
        return f"server CPU per request: {ours[label]['cpu_us_per_request']:.0f} µs{theirs}"

    return [
        Result(
            row="9a",
            name=f"/content {big} Range reads, local store, one core",
            value=ours[big]["mb_per_second"],
            unit="MB/s",
            baseline=nginx[big]["mb_per_second"] if nginx else None,
            baseline_name="nginx, same file" if nginx else "nginx missing",
            target=f"≥ {TARGET_MBS:g} MB/s and ≥ {TARGET_VS_NGINX:g}× nginx",
            met=ours[big]["mb_per_second"] >= TARGET_MBS and (big_ratio is None or big_ratio >= TARGET_VS_NGINX),
            note=cpu_note(big),
            details=details,
        ),
        Result(
            row="9b",
            name=f"/content {small} Range reads, local store, one core",
            value=ours[small]["requests_per_second"],
            unit="req/s",
            baseline=nginx[small]["requests_per_second"] if nginx else None,
            baseline_name="nginx, same file" if nginx else "nginx missing",
            target=f"≥ {TARGET_RPS:,.0f} req/s and ≥ {TARGET_VS_NGINX:g}× nginx",
            met=ours[small]["requests_per_second"] >= TARGET_RPS
            and (small_ratio is None or small_ratio >= TARGET_VS_NGINX),
            note=cpu_note(small),
            details=details,
        ),
    ]


def _fixed_range(url: str, seconds: int, tmp: Path, server: int | None, headers: dict[str, str] | None = None) -> Any:
    """The first 64 KiB over and over, 16 connections: rate and, for a server of ours, CPU µs per request."""
    length, connections, _ = CASES[1]
    headers = {**(headers or {}), "Range": f"bytes=0-{length - 1}"}
    run_wrk(url, 1, connections, headers)
    pids = descendants(server) if server is not None else []
    cpu = sum(map(cpu_seconds, pids))
    text = run_wrk(url, seconds, connections, headers)
    if failed := non_2xx(text):
        raise RuntimeError(f"{failed} requests failed on {url}")
    row = parse_wrk(text, url)
    used = (sum(map(cpu_seconds, pids)) - cpu) / (row.requests_per_second * seconds) * 1e6 if pids else None
    return row, used


def run_object_store(seconds: int = 5) -> list[Result]:
    """64 KiB from an object store (PostgreSQL + SeaweedFS S3): streamed through the API, answered with a
    redirect to a presigned URL (``VIDGATE_CONTENT_REDIRECT``), and that URL served by the store itself."""
    with tempdir("content-s3") as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        env = {**stack.enter_context(Backends()).env("content"), "VIDGATE_DEFAULT_BALANCE_USD": "1e6"}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        figures: dict[str, Any] = {}
        for redirect in ("0", "1"):
            proc = start_server(tmp / "data", port, {**env, "VIDGATE_CONTENT_REDIRECT": redirect}, log=tmp / "s.log")
            try:
                if redirect == "0":
                    key = create_key(base, "content")
                    auth = {"Authorization": f"Bearer {key}"}
                    job = httpx.post(f"{base}/v1/videos", headers=auth, json=_S3_JOB, timeout=30).json()
                    _wait_statuses(base, key, [job["id"]], {"completed"}, 120)
                    url = f"{base}/v1/videos/{job['id']}/content"
                figures["stream" if redirect == "0" else "redirect"] = _fixed_range(url, seconds, tmp, proc.pid, auth)
                if redirect == "1":
                    location = httpx.get(url, headers=auth).headers["location"]
                    figures["store"] = _fixed_range(location, seconds, tmp, None)
            finally:
                stop_server(proc)
    (stream, stream_cpu), (redirect_row, redirect_cpu), (store, _) = (
        figures["stream"],
        figures["redirect"],
        figures["store"],
    )
    details = {
        name: {
            "requests_per_second": row.requests_per_second,
            "p50_ms": row.p50_ms,
            "p99_ms": row.p99_ms,
            "cpu_us": cpu,
        }
        for name, (row, cpu) in figures.items()
    }
    common = {"unit": "req/s", "target": "reported (the spec sets none)", "met": None, "details": details}
    return [
        Result(
            row="9 (s3)a",
            name="/content 64 KiB Range reads streamed from S3 through the API",
            value=stream.requests_per_second,
            baseline=store.requests_per_second,
            baseline_name="the store serving the same range by presigned URL",
            note=f"server CPU per request: {stream_cpu:.0f} µs",
            **common,
        ),
        Result(
            row="9 (s3)b",
            name="/content answered with a 307 to a presigned URL (VIDGATE_CONTENT_REDIRECT)",
            value=redirect_row.requests_per_second,
            baseline=store.requests_per_second,
            baseline_name="the store serving the 64 KiB range by presigned URL",
            note=f"server CPU per redirect: {redirect_cpu:.0f} µs",
            **common,
        ),
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="py-spy the server during an extra 64 KiB run")
    parser.add_argument("--store", choices=["local", "s3", "both"], default="local")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    results = run(args.seconds, args.profile) if args.store != "s3" else []
    if args.store != "local":
        results += run_object_store(args.seconds)
    print(table(results))
    print(json.dumps([r.details for r in results], indent=2))
    if args.json:
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2))


if __name__ == "__main__":
    main()
