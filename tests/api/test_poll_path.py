"""The poll (``GET /v1/videos/{id}``) is answered beneath the framework: same bodies, errors and metrics."""

from __future__ import annotations

import time

import httpx
import pytest
from helpers.gateway import ADMIN_KEY, GatewayProcess, stable, wait_status

pytestmark = pytest.mark.both_backends
SMALL = {"model": "vidgate/procedural", "prompt": "a slow pan over hills", "duration": 1, "size": "160x90"}


def test_poll_shows_what_the_list_shows(api: httpx.Client) -> None:
    job = api.post("/v1/videos", json=SMALL).json()
    queued = api.get(f"/v1/videos/{job['id']}")
    assert queued.status_code == 200 and queued.headers["content-type"] == "application/json"
    assert int(queued.headers["content-length"]) == len(queued.content)
    assert queued.json()["status"] in ("queued", "processing", "completed")
    done = wait_status(api, job["id"], {"completed"})
    listed = next(v for v in api.get("/v1/videos", params={"limit": 100}).json()["data"] if v["id"] == job["id"])
    assert stable(done, "poll_after_seconds") == stable(listed, "poll_after_seconds")
    assert done["download_url"].startswith(f"{str(api.base_url).rstrip('/')}/v1/videos/{job['id']}/download?")
    assert done["outputs"][0]["download_url"] and done["expires_at"] > time.time()
    signed = httpx.get(done["download_url"], timeout=30)
    assert signed.status_code == 200 and len(signed.content) == done["asset"]["bytes"]


def test_poll_of_a_job_in_flight_carries_retry_after(api: httpx.Client) -> None:
    job = api.post("/v1/videos", json={**SMALL, "duration": 8, "size": "1280x720"}).json()
    r = api.get(f"/v1/videos/{job['id']}")
    body = r.json()
    if body["status"] in ("queued", "processing"):
        assert r.headers["retry-after"] == str(body["poll_after_seconds"])
        assert 1 <= body["poll_after_seconds"] <= 20
    api.post(f"/v1/videos/{job['id']}/cancel")
    cancelled = api.get(f"/v1/videos/{job['id']}")
    assert cancelled.json()["status"] in ("cancelled", "completed") and "retry-after" not in cancelled.headers


def test_poll_errors_use_the_envelope_and_echo_the_request_id(gateway: GatewayProcess, api: httpx.Client) -> None:
    job = api.post("/v1/videos", json=SMALL).json()
    url = f"{gateway.base_url}/v1/videos/{job['id']}"
    cases = {
        "no key": ({}, 401, "authentication_error"),
        "unknown key": ({"Authorization": "Bearer vg_not_a_key"}, 401, "authentication_error"),
        "admin key": ({"Authorization": f"Bearer {ADMIN_KEY}"}, 403, "permission_error"),
        "another owner": ({"Authorization": f"Bearer {gateway.new_key()}"}, 404, "invalid_request_error"),
    }
    for name, (headers, status, kind) in cases.items():
        r = httpx.get(url, headers={**headers, "X-Request-Id": f"probe-{status}"}, timeout=30)
        assert r.status_code == status, (name, r.text)
        err = r.json()["error"]
        assert err["type"] == kind, (name, err)
        assert err["request_id"] == r.headers["x-request-id"] == f"probe-{status}", name
    missing = api.get("/v1/videos/vid_00000000000000000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "video_id"
    own = api.get(url, headers={"X-Request-Id": "bad id with spaces"})
    assert own.status_code == 200 and own.headers["x-request-id"].startswith("req_")
    ids = {api.get(url).headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20


def test_poll_is_rate_limited_like_every_route(gateway: GatewayProcess) -> None:
    key = gateway.new_key(balance=1.0)
    with gateway.client(key) as api:
        job = api.post("/v1/videos", json=SMALL).json()
    with gateway.admin() as admin:
        admin.patch(f"/v1/admin/keys/{gateway.key_id(key)}/limits", json={"rate_per_second": 2, "rate_burst": 3})
    time.sleep(2.1)  # the key cache holds limits for up to 2 s
    with gateway.client(key) as api:
        started, codes = time.monotonic(), []
        while len(codes) < 40 and not any(r.status_code == 429 for r in codes):  # polls until one is refused
            codes.append(api.get(f"/v1/videos/{job['id']}"))
        elapsed = time.monotonic() - started
    limited = [r for r in codes if r.status_code == 429]
    passed = [r for r in codes if r.status_code == 200]
    # The burst, what refilled while the polls went on (however slowly they were answered), one at the boundary.
    assert limited and len(passed) + len(limited) == len(codes), [r.status_code for r in codes]
    assert 3 <= len(passed) <= 3 + 2 * elapsed + 1, (len(passed), elapsed)
    assert limited[0].json()["error"]["code"] == "rate_limited" and int(limited[0].headers["retry-after"]) >= 1
