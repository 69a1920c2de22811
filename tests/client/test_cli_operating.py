"""Operating with the real commands: ``vidgate api`` + ``vidgate worker --metrics-port`` on one data dir,
an upstream that refuses every create, the worker's JSON logs and metrics, and the admin commands
(``jobs list|show|requeue|fail``, ``leases``) on the jobs that piles up."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fakes.server import free_port
from helpers.gateway import GatewayProcess, wait_status

LUMA = {"model": "luma/ray-2", "prompt": "a lighthouse in fog"}
REFUSED = 'vidgate_upstream_errors_total{operation="submit",provider="luma",retryable="true"}'


@dataclass
class Deployment:
    api: GatewayProcess
    worker: GatewayProcess
    metrics: str
    key: str
    key_id: str


def wait_for(check: Any, what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("operating")
    config = root / "vidgate.toml"
    # An upstream nobody listens on: every create is refused before acceptance, and retried.
    config.write_text(f'[providers.luma]\napi_key = "luma-test"\nbase_url = "http://127.0.0.1:{free_port()}"\n')
    data = root / "data"
    port = free_port()
    env = {"VIDGATE_LOG_FORMAT": "json", "VIDGATE_STEP_RETRY_SECONDS": "1"}
    api = GatewayProcess(data, env=env, command="api", log_name="api", args=("--workers", "1", "--config", str(config)))
    worker = GatewayProcess(
        data, env=env, command="worker", log_name="worker", args=("--config", str(config), "--metrics-port", str(port))
    )
    api.start()
    worker.start()
    metrics = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _get(metrics + "/healthz") == 200, "the worker's metrics port")
        key = api.new_key("operating", balance=50.0)
        yield Deployment(api, worker, metrics, key, api.key_id(key))
    finally:
        worker.stop()
        api.stop()


def _get(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return 0


def vidgate(dep: Deployment, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vidgate.cli.main", *args, "--data-dir", str(dep.api.data_dir)],
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def one_line_error(out: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == code and len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_worker_logs_json_with_job_ids_and_serves_upstream_metrics(dep: Deployment) -> None:
    with dep.api.client(dep.key) as api:
        job = api.post("/v1/videos", json=LUMA).json()
    assert job["status"] == "queued", job

    def logged() -> dict[str, Any] | None:
        for line in dep.worker.log_path.read_text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("job_id") == job["id"]:
                    return record
        return None

    record = wait_for(logged, "a worker log record about the job")
    assert record["timestamp"] and record["level"] and record["logger"].startswith("vidgate")

    def scraped() -> str | None:
        text = httpx.get(dep.metrics + "/metrics").text
        return text if REFUSED in text else None

    text = wait_for(scraped, "the upstream error counter")
    assert "vidgate_queue_depth" in text and "vidgate_jobs" in text
    ready = httpx.get(dep.metrics + "/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "blobs": "ok"}
    missing = httpx.get(dep.metrics + "/v1/videos")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    print(
        f"\nworker log: {record}\n" + "\n".join(line for line in text.splitlines() if "upstream_errors_total{" in line)
    )


def test_jobs_list_show_requeue_fail_and_leases(dep: Deployment) -> None:
    with dep.api.client(dep.key) as api:
        job_id = api.post("/v1/videos", json=LUMA).json()["id"]
    listed = json.loads(vidgate(dep, "jobs", "list", "--owner", dep.key_id, "--status", "queued", "--json").stdout)
    assert job_id in [j["id"] for j in listed] and all(j["status"] == "queued" for j in listed)
    one_line_error(vidgate(dep, "jobs", "list", "--status", "running-ish"), 2, "unknown status")
    table = vidgate(dep, "jobs", "list", "--limit", "5")
    assert table.returncode == 0 and job_id in table.stdout

    def refused_once() -> dict[str, Any] | None:
        detail = json.loads(vidgate(dep, "jobs", "show", job_id, "--json").stdout)
        return detail if detail["attempts"] else None

    shown = wait_for(refused_once, "a refused attempt")
    assert shown["status"] == "queued" and shown["owner_id"] == dep.key_id
    assert shown["attempts"][0]["provider"] == "luma" and shown["attempts"][0]["outcome"] == "rejected"
    assert [e["kind"] for e in shown["ledger"]] == ["hold"]
    assert "byok" not in shown and "luma-test" not in json.dumps(shown)
    assert vidgate(dep, "jobs", "show", job_id).returncode == 0

    # A lease another worker holds: listed, and requeue refuses to take the job from under it.
    db = sqlite3.connect(dep.api.data_dir / "vidgate.db", timeout=30)
    until = int(time.time() * 1000) + 60_000
    with db:
        db.execute("UPDATE jobs SET lease_owner = 'worker-elsewhere', lease_until = ? WHERE id = ?", (until, job_id))
    leases = json.loads(vidgate(dep, "leases", "--json").stdout)
    assert {"id": job_id, "lease_owner": "worker-elsewhere", "lease_until": until}.items() <= next(
        j for j in leases if j["id"] == job_id
    ).items()
    assert "worker-elsewhere" in vidgate(dep, "leases").stdout
    print("\n" + one_line_error(vidgate(dep, "jobs", "requeue", job_id), 1, "being worked", "worker-elsewhere"))

    # Lapsed: requeue makes it due now with its failures reset, and sends it nowhere by itself.
    with db:
        db.execute("UPDATE jobs SET lease_until = 1, poll_failures = 7, next_run_at = ? WHERE id = ?", (until, job_id))
    requeued = vidgate(dep, "jobs", "requeue", job_id, "--json")
    assert requeued.returncode == 0, requeued.stderr
    line = json.loads(requeued.stdout)
    assert line["failures"] == 0 and line["lease_owner"] is None and line["next_run_at"] <= time.time() * 1000
    db.close()

    with dep.api.client(dep.key) as api:
        held = api.get("/v1/usage").json()["held"]
        failed = vidgate(dep, "jobs", "fail", job_id, "--reason", "luma is down for the day")
        assert failed.returncode == 0 and "hold voided" in failed.stdout, failed.stderr
        view = wait_status(api, job_id, {"failed"}, timeout=30)
        assert view["error"]["code"] == "failed_by_admin" and view["error"]["message"] == "luma is down for the day"
        assert api.get("/v1/usage").json()["held"] == pytest.approx(held - shown["quote"] / 1e6)
    after = json.loads(vidgate(dep, "jobs", "show", job_id, "--json").stdout)
    assert sorted(e["kind"] for e in after["ledger"]) == ["hold", "release"] and after["billing_state"] == "void"
    print(one_line_error(vidgate(dep, "jobs", "fail", job_id, "--reason", "again"), 1, "failed"))
    print(one_line_error(vidgate(dep, "jobs", "requeue", job_id), 1, "final"))
    print(one_line_error(vidgate(dep, "jobs", "show", "vid_nope"), 1, "no job vid_nope"))
