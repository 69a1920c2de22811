"""Upstream adapters through the running gateway: routing, failover, attempts, poll faults, cancel."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.fal_fake import FalFake
from fakes.google_fake import GoogleFake
from fakes.openai_fake import OpenAIFake
from fakes.runway_fake import RunwayFake
from fakes.server import FakeUpstream, small_mp4
from helpers.gateway import GatewayProcess, wait_status
from helpers.media import png_data_url


class Upstreams:
    def __init__(self) -> None:
        self.openai, self.google, self.runway, self.fal = OpenAIFake(), GoogleFake(), RunwayFake(), FalFake()
        self.servers = {
            name: FakeUpstream(getattr(self, name).app).start() for name in ("openai", "google", "runway", "fal")
        }

    def config(self, path: Path) -> Path:
        bases = {"openai": "/v1", "google": "/v1beta", "runway": "", "fal": ""}
        keys = {"openai": "sk-test", "google": "g-test", "runway": "key_test", "fal": "fal_test"}
        text = "".join(
            f'[providers.{n}]\napi_key = "{keys[n]}"\nbase_url = "{s.base_url}{bases[n]}"\n'
            f"poll_interval_seconds = 0.2\ntimeout_seconds = 2.0\n\n"
            for n, s in self.servers.items()
        )
        path.write_text(text)
        return path

    def reset(self) -> None:
        for name in self.servers:
            fake = getattr(self, name)
            fake.faults.clear()
            if hasattr(fake, "reset"):
                fake.reset()

    def stop(self) -> None:
        for s in self.servers.values():
            s.stop()


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    ups = Upstreams()
    yield ups
    ups.stop()


@pytest.fixture(scope="module")
def routed(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("routed")
    gw = GatewayProcess(root / "gw", env={"VIDGATE_CONFIG": str(upstreams.config(root / "providers.toml"))}).start()
    yield gw
    gw.stop()


@pytest.fixture
def client(routed: GatewayProcess, upstreams: Upstreams) -> Iterator[httpx.Client]:
    upstreams.reset()
    with routed.client(routed.new_key("routing", balance=100.0)) as c:
        yield c


def create(client: httpx.Client, body: dict[str, Any], status: int = 202) -> dict[str, Any]:
    r = client.post("/v1/videos", json={"prompt": "a paper boat on a rainy street", **body})
    assert r.status_code == status, r.text
    return r.json()


FIRST = [{"type": "image_url", "role": "first_frame", "image_url": {"url": png_data_url((10, 200, 30), 64, 64)}}]


@pytest.mark.parametrize(
    ("provider", "body"),
    [
        ("openai", {"model": "openai/sora-2", "duration": 4, "size": "1280x720"}),
        ("google", {"model": "google/veo-3.1-lite", "duration": 8}),
        ("runway", {"model": "runway/gen-4-turbo", "duration": 5, "input_references": FIRST}),
        ("fal", {"model": "kling/kling-2.1-master", "duration": 5}),
    ],
)
def test_each_adapter_end_to_end(client: httpx.Client, upstreams: Upstreams, provider: str, body: dict) -> None:
    job = create(client, body)
    assert job["provider"] == provider
    seen_progress = set()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cur = client.get(f"/v1/videos/{job['id']}").json()
        seen_progress.add((cur["status"], cur["progress"], cur.get("progress_source")))
        if cur["status"] in ("completed", "failed"):
            break
        time.sleep(0.05)
    assert cur["status"] == "completed", cur
    assert cur["generation_id"] and cur["attempts"][-1]["outcome"] == "accepted"
    data = client.get(cur["content_url"]).content
    assert data == small_mp4() and cur["asset"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert cur["asset"]["width"] == 64 and cur["asset"]["duration_seconds"] == 1.0
    # Held for the requested seconds, settled for the one second the upstream really produced.
    assert 0 < cur["billing"]["settled"] < job["billing"]["held"]
    if provider == "openai":
        assert any(src == "provider" and 0 < (p or 0) < 100 for _, p, src in seen_progress), seen_progress


def test_failover_on_create_503_records_attempts(client: httpx.Client, upstreams: Upstreams) -> None:
    upstreams.google.faults.add("create", "503")
    job = create(client, {"model": "google/veo-3.1", "duration": 8})
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=30)
    assert done["status"] == "completed" and done["provider"] == "fal"
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [("google", "rejected"), ("fal", "accepted")]
    assert done["attempts"][0]["status_code"] == 503


def test_failover_on_429_but_not_on_a_timeout(client: httpx.Client, upstreams: Upstreams) -> None:
    upstreams.google.faults.add("create", "429")
    job = create(client, {"model": "google/veo-3.1", "duration": 8})
    assert wait_status(client, job["id"], {"completed", "failed"}, timeout=30)["provider"] == "fal"
    # A create that times out after it was sent may have made the job: it is an unknown outcome, not a
    # refusal. fal offers no lookup, so the job stays with fal and is sent to it again, never to google.
    upstreams.fal.faults.hang_seconds = 3.0
    upstreams.fal.faults.add("create", "timeout")
    google_before = len(upstreams.google.requests)
    job = create(client, {"model": "google/veo-3.1", "duration": 8, "provider": {"order": ["fal", "google"]}})
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=30)
    assert done["status"] == "completed" and done["provider"] == "fal", done
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [("fal", "unknown"), ("fal", "accepted")]
    assert "offers no lookup" in done["attempts"][0]["message"]
    assert not any(r.method == "POST" for r in upstreams.google.requests[google_before:])


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


def test_when_every_candidate_refuses_for_now_the_plan_is_tried_again(
    client: httpx.Client, upstreams: Upstreams
) -> None:
    """Refusals that may pass (503, 502) are not the end: the whole plan runs again after a backoff."""
    upstreams.google.faults.add("create", "503")
    upstreams.fal.faults.add("create", "502")
    job = create(client, {"model": "google/veo-3.1", "duration": 8})
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed" and done["provider"] == "google", done
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [
        ("google", "rejected"),
        ("fal", "rejected"),
        ("google", "accepted"),
    ]
    assert done["billing"]["state"] == "settled"


def test_no_fallback_when_disallowed(client: httpx.Client, upstreams: Upstreams) -> None:
    upstreams.google.faults.add("create", "503")
    fal_before = len(upstreams.fal.requests)
    job = create(client, {"model": "google/veo-3.1", "duration": 8, "provider": {"allow_fallbacks": False}})
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [("google", "rejected"), ("google", "accepted")]
    assert not any(r["method"] == "POST" for r in upstreams.fal.requests[fal_before:])


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
        r = plain.post("/v1/videos", json={"model": "openai/sora-2", "prompt": "x"})
        assert r.status_code == 503 and "not configured" in r.json()["error"]["message"]


def test_upstream_failure_keeps_the_provider_message(client: httpx.Client, upstreams: Upstreams) -> None:
    upstreams.google.fail_next = "moderation"
    job = create(client, {"model": "google/veo-3.1-lite", "duration": 8})
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=30)
    assert done["status"] == "failed" and done["error"]["provider"] == "google"
    assert done["error"]["code"] == "moderation_blocked" and done["billing"]["state"] == "void"
    upstreams.openai.fail_next = "failed"
    job = create(client, {"model": "openai/sora-2", "duration": 4})
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=30)
    assert done["status"] == "failed" and done["error"]["provider"] == "openai" and done["error"]["message"]


def test_poll_faults_are_retried_without_losing_the_job(client: httpx.Client, upstreams: Upstreams) -> None:
    upstreams.openai.faults.add("poll", "503", times=2)
    upstreams.openai.faults.add("poll", "malformed")
    upstreams.openai.faults.add("poll", "429")
    job = create(client, {"model": "openai/sora-2", "duration": 4})
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed", done
    applied = [k for op, k in upstreams.openai.faults.applied if op == "poll"]
    assert applied == ["503", "503", "malformed", "429"]
    creates = [r for r in upstreams.openai.requests if r.method == "POST"]
    assert len(creates) == 1  # the job was never resubmitted


def test_cancel_reaches_the_upstream(client: httpx.Client, upstreams: Upstreams) -> None:
    upstreams.runway.polls_to_complete = 1000
    try:
        job = create(client, {"model": "runway/gen-4.5", "duration": 5})
        wait_status(client, job["id"], {"processing"}, timeout=30)
        r = client.post(f"/v1/videos/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        native = r.json()["generation_id"]

        def deleted() -> bool:
            return any(r["method"] == "DELETE" and native in r["path"] for r in upstreams.runway.requests)

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not deleted():
            time.sleep(0.05)
        assert deleted()
        assert client.get(f"/v1/videos/{job['id']}").json()["billing"]["state"] == "void"
    finally:
        upstreams.runway.polls_to_complete = 3


def test_expired_result_url_fails_the_job(client: httpx.Client, upstreams: Upstreams) -> None:
    upstreams.fal.expire_outputs = True
    job = create(client, {"model": "kling/kling-2.1-master", "duration": 5})
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=30)
    assert done["status"] == "failed" and done["error"]["code"] == "output_unavailable"
