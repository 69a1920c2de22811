"""Routing through the running gateway: order, only, ignore, failover and its limits, attempts.

The per-provider behaviour (each adapter end to end, failures, poll faults, cancel) is in
``test_gateway_providers.py``; these tests need a fleet where Veo 3.1 has exactly two providers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from helpers.gateway import GatewayProcess, wait_status

from providers.wiring import Fleet


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Fleet]:
    fleet = Fleet(("openai", "google", "runway", "fal"))
    yield fleet
    fleet.stop()


@pytest.fixture(scope="module")
def routed(upstreams: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("routed")
    gw = GatewayProcess(root / "gw", env={"VIDGATE_CONFIG": str(upstreams.config(root / "providers.toml"))}).start()
    yield gw
    gw.stop()


@pytest.fixture
def client(routed: GatewayProcess, upstreams: Fleet) -> Iterator[httpx.Client]:
    upstreams.reset()
    with routed.client(routed.new_key("routing", balance=100.0)) as c:
        yield c


def create(client: httpx.Client, body: dict[str, Any], status: int = 202) -> dict[str, Any]:
    r = client.post("/v1/videos", json={"prompt": "a paper boat on a rainy street", **body})
    assert r.status_code == status, r.text
    return r.json()


def test_failover_on_429_but_not_on_a_timeout(client: httpx.Client, upstreams: Fleet) -> None:
    upstreams["google"].faults.add("create", "429")
    job = create(client, {"model": "google/veo-3.1", "duration": 8})
    assert wait_status(client, job["id"], {"completed", "failed"}, timeout=30)["provider"] == "fal"
    # A create that times out after it was sent may have made the job: it is an unknown outcome, not a
    # refusal. fal offers no lookup, so the job stays with fal and is sent to it again, never to google.
    upstreams["fal"].faults.hang_seconds = 3.0
    upstreams["fal"].faults.add("create", "timeout")
    google_before = len(upstreams["google"].requests)
    job = create(client, {"model": "google/veo-3.1", "duration": 8, "provider": {"order": ["fal", "google"]}})
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=30)
    assert done["status"] == "completed" and done["provider"] == "fal", done
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [("fal", "unknown"), ("fal", "accepted")]
    assert "offers no lookup" in done["attempts"][0]["message"]
    assert not any(r.method == "POST" for r in upstreams["google"].requests[google_before:])


@pytest.mark.parametrize(
    ("routing", "expected"),
    [
        ({"order": ["fal", "google"]}, "fal"),
        ({"order": ["google", "fal"]}, "google"),
        ({"only": ["fal"]}, "fal"),
        ({"ignore": ["google"]}, "fal"),
        ({"only": ["google", "fal"], "ignore": ["fal"]}, "google"),
    ],
)
def test_order_only_ignore(client: httpx.Client, routing: dict, expected: str) -> None:
    job = create(client, {"model": "google/veo-3.1", "duration": 8, "provider": routing})
    assert job["provider"] == expected
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=30)
    assert done["provider"] == expected and [a["provider"] for a in done["attempts"]] == [expected]


def test_when_every_candidate_refuses_for_now_the_plan_is_tried_again(client: httpx.Client, upstreams: Fleet) -> None:
    """Refusals that may pass (503, 502) are not the end: the whole plan runs again after a backoff."""
    upstreams["google"].faults.add("create", "503")
    upstreams["fal"].faults.add("create", "502")
    job = create(client, {"model": "google/veo-3.1", "duration": 8})
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed" and done["provider"] == "google", done
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [
        ("google", "rejected"),
        ("fal", "rejected"),
        ("google", "accepted"),
    ]
    assert done["billing"]["state"] == "settled"


def test_no_fallback_when_disallowed(client: httpx.Client, upstreams: Fleet) -> None:
    upstreams["google"].faults.add("create", "503")
    fal_before = len(upstreams["fal"].requests)
    job = create(client, {"model": "google/veo-3.1", "duration": 8, "provider": {"allow_fallbacks": False}})
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [("google", "rejected"), ("google", "accepted")]
    assert not any(r["method"] == "POST" for r in upstreams["fal"].requests[fal_before:])


def test_no_candidate_at_create_is_503(client: httpx.Client, gateway: GatewayProcess) -> None:
    r = client.post(
        "/v1/videos",
        json={
            "model": "google/veo-3.1",
            "prompt": "x",
            "duration": 8,
            "sample_count": 2,
            "provider": {"only": ["fal"]},
        },
    )
    assert r.status_code == 503 and r.json()["error"]["code"] == "no_provider_available"
    assert "sample_count" in r.json()["error"]["message"]
    with gateway.client(gateway.new_key()) as plain:
        r = plain.post("/v1/videos", json={"model": "minimax/hailuo-2.3", "prompt": "x"})
        assert r.status_code == 503 and "not configured" in r.json()["error"]["message"]


def test_expired_result_url_fails_the_job(client: httpx.Client, upstreams: Fleet) -> None:
    upstreams["fal"].expire_outputs = True
    job = create(client, {"model": "kling/kling-2.1-master", "duration": 5})
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=30)
    assert done["status"] == "failed" and done["error"]["code"] == "output_unavailable"
