"""``/metrics``: request latency from this process, live-job, queue and webhook gauges from the database."""

from __future__ import annotations

import re

import httpx
import pytest
from helpers.gateway import GatewayProcess

pytestmark = pytest.mark.both_backends
SMALL = {"model": "vidgate/procedural", "prompt": "a slow pan over hills", "duration": 1, "size": "160x90"}


def _sample(gateway: GatewayProcess, name: str, **labels: str) -> float:
    text = httpx.get(f"{gateway.base_url}/metrics", timeout=30).text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}{{{wanted}}} ([0-9.e+]+)$" if labels else rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def _polls_counted(gateway: GatewayProcess, status: int) -> float:
    return _sample(gateway, "vidgate_http_request_duration_seconds_count", method="GET", status=str(status))


def test_polls_are_counted_in_metrics(gateway: GatewayProcess, api: httpx.Client) -> None:
    job = api.post("/v1/videos", json=SMALL).json()
    ok, missing = _polls_counted(gateway, 200), _polls_counted(gateway, 404)
    for _ in range(25):
        assert api.get(f"/v1/videos/{job['id']}").status_code == 200
    for _ in range(3):
        assert api.get("/v1/videos/vid_00000000000000000000000000").status_code == 404
    # Other GETs (the metrics scrape itself, the worker's nothing) may land in between; polls are counted exactly.
    assert _polls_counted(gateway, 200) - ok >= 25
    assert _polls_counted(gateway, 404) - missing >= 3


def test_live_job_gauge_counts_queued_and_processing(gateway: GatewayProcess, api: httpx.Client) -> None:
    long = {**SMALL, "duration": 20, "size": "1920x1080"}
    jobs = [api.post("/v1/videos", json=long).json()["id"] for _ in range(2)]
    # A queued job is routed when the worker takes it: until then its provider label is empty.
    text = httpx.get(f"{gateway.base_url}/metrics", timeout=30).text
    live = re.findall(
        r'^vidgate_jobs\{provider="(?:vidgate)?",status="(?:processing|queued)"\} ([0-9.e+]+)$', text, re.M
    )
    assert sum(float(n) for n in live) >= 2
    text = httpx.get(f"{gateway.base_url}/metrics", timeout=30).text
    assert 'vidgate_jobs{provider="vidgate",status="completed"}' not in text  # finished jobs are not scanned
    assert re.search(r"^vidgate_queue_depth [0-9.e+]+$", text, re.M)
    assert re.search(r"^vidgate_webhook_backlog [0-9.e+]+$", text, re.M)
    for job in jobs:
        api.post(f"/v1/videos/{job}/cancel")
