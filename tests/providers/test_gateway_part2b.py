"""MiniMax, BytePlus (Seedance) and Alibaba (Wan) through a running gateway: bytes stored and
served, upstream failures, create-time failover (to fal where a model has it), poll-fault recovery,
cancel, and parameters a model lacks refused before any hold or upstream call."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.alibaba_fake import AlibabaFake
from fakes.byteplus_fake import BytePlusFake
from fakes.fal_fake import FalFake
from fakes.minimax_fake import MiniMaxFake
from fakes.server import FakeUpstream, small_mp4
from helpers.gateway import GatewayProcess, wait_status
from helpers.media import png_data_url

NAMES = ("minimax", "byteplus", "alibaba", "fal")
BASES = {"minimax": "", "byteplus": "/api/v3", "alibaba": "/api/v1", "fal": ""}
KEYS = {"minimax": "mm-test", "byteplus": "ark-test", "alibaba": "sk-ds-test", "fal": "fal_test"}

# One request per provider that only that provider serves first, with the fields it maps.
BODIES: dict[str, dict[str, Any]] = {
    "minimax": {"model": "minimax/hailuo-02", "duration": 6, "resolution": "768p"},
    "byteplus": {"model": "bytedance/seedance-1.0-pro", "duration": 5, "resolution": "720p", "seed": 7},
    "alibaba": {"model": "alibaba/wan-2.5", "duration": 5, "resolution": "720p", "negative_prompt": "blurry"},
}
CREATE_PATHS = {
    "minimax": "/v1/video_generation",
    "byteplus": "/api/v3/contents/generations/tasks",
    "alibaba": "/api/v1/services/aigc/video-generation/video-synthesis",
}
PROVIDERS = ("minimax", "byteplus", "alibaba")


class Upstreams:
    def __init__(self) -> None:
        self.minimax, self.byteplus, self.alibaba, self.fal = MiniMaxFake(), BytePlusFake(), AlibabaFake(), FalFake()
        self.servers = {name: FakeUpstream(getattr(self, name).app).start() for name in NAMES}

    def config(self, path: Path) -> Path:
        path.write_text(
            "".join(
                f'[providers.{n}]\napi_key = "{KEYS[n]}"\nbase_url = "{s.base_url}{BASES[n]}"\n'
                f"poll_interval_seconds = 0.2\ntimeout_seconds = 2.0\n\n"
                for n, s in self.servers.items()
            )
        )
        return path

    def reset(self) -> None:
        for name in NAMES:
            fake = getattr(self, name)
            fake.faults.clear()
            fake.faults.applied.clear()
            if hasattr(fake, "reset"):
                fake.reset()
        self.fal.expire_outputs = self.fal.fail_next = False

    def creates(self, name: str) -> list[dict[str, Any]]:
        fake = getattr(self, name)
        if name == "fal":
            return [r for r in fake.requests if r["method"] == "POST"]
        return [r for r in fake.requests if r["method"] == "POST" and r["path"] == CREATE_PATHS[name]]

    def stop(self) -> None:
        for s in self.servers.values():
            s.stop()


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    ups = Upstreams()
    yield ups
    ups.stop()


@pytest.fixture(scope="module")
def gw(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("part2b")
    proc = GatewayProcess(root / "gw", env={"VIDGATE_CONFIG": str(upstreams.config(root / "providers.toml"))})
    yield proc.start()
    proc.stop()


@pytest.fixture
def client(gw: GatewayProcess, upstreams: Upstreams) -> Iterator[httpx.Client]:
    upstreams.reset()
    with gw.client(gw.new_key("part2b", balance=100.0)) as c:
        yield c


def create(client: httpx.Client, body: dict[str, Any], status: int = 202) -> dict[str, Any]:
    r = client.post("/v1/videos", json={"prompt": "a paper boat on a rainy street", **body})
    assert r.status_code == status, r.text
    return r.json()


def finish(client: httpx.Client, job: dict[str, Any], timeout: float = 20) -> dict[str, Any]:
    return wait_status(client, job["id"], {"completed", "failed", "cancelled", "expired"}, timeout=timeout)


def wait_for(check: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_happy_path_bytes_are_stored_and_served(client: httpx.Client, upstreams: Upstreams, provider: str) -> None:
    before = len(upstreams.creates(provider))
    job = create(client, BODIES[provider])
    assert job["provider"] == provider
    done = finish(client, job)
    assert done["status"] == "completed", done
    assert done["generation_id"] and [a["outcome"] for a in done["attempts"]] == ["accepted"]
    data = client.get(done["content_url"]).content
    assert data == small_mp4() and done["asset"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert done["asset"]["width"] == 64 and done["asset"]["height"] == 64
    assert done["asset"]["duration_seconds"] == 1.0
    assert 0 < done["billing"]["settled"] < job["billing"]["held"]

    (sent,) = upstreams.creates(provider)[before:]
    body = sent["json"]
    if provider == "minimax":
        assert (body["model"], body["duration"], body["resolution"]) == ("MiniMax-Hailuo-02", 6, "768P")
    elif provider == "byteplus":
        assert body["model"] == "seedance-1-0-pro-250528"
        assert body["content"][0]["text"].endswith("--resolution 720p --ratio 16:9 --duration 5 --seed 7")
    else:
        assert body["model"] == "wan2.5-t2v-preview" and body["input"]["negative_prompt"] == "blurry"
        assert body["parameters"]["size"] == "1280*720" and body["parameters"]["duration"] == 5
        assert sent["headers"]["x-dashscope-async"] == "enable"


def test_first_frame_reaches_each_upstream(client: httpx.Client, upstreams: Upstreams) -> None:
    image = png_data_url((10, 200, 30), 64, 64)
    refs = [{"type": "image_url", "role": "first_frame", "image_url": {"url": image}}]
    jobs = {p: create(client, {**BODIES[p], "input_references": refs}) for p in PROVIDERS}
    for provider, job in jobs.items():
        assert finish(client, job)["status"] == "completed", provider
    assert upstreams.creates("minimax")[-1]["json"]["first_frame_image"] == image
    ark = upstreams.creates("byteplus")[-1]["json"]["content"]
    assert ark[1] == {"type": "image_url", "image_url": {"url": image}, "role": "first_frame"}
    wan = upstreams.creates("alibaba")[-1]["json"]
    assert wan["model"] == "wan2.5-i2v-preview" and wan["input"]["img_url"] == image
    assert wan["parameters"]["resolution"] == "720P" and "size" not in wan["parameters"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_upstream_failure_keeps_the_provider_message_and_voids(
    client: httpx.Client, upstreams: Upstreams, provider: str
) -> None:
    fake = getattr(upstreams, provider)
    fake.fail_next = True
    done = finish(client, create(client, BODIES[provider]))
    assert done["status"] == "failed" and done["error"]["provider"] == provider
    expected = {
        "minimax": "output video contains sensitive content",
        "byteplus": "The request failed because the output video may contain sensitive information.",
        "alibaba": "Output data may contain inappropriate content.",
    }[provider]
    assert done["error"]["message"] == expected and done["error"]["code"] == "moderation_blocked"
    assert done["billing"]["state"] == "void" and done["usage"]["cost"] == 0


@pytest.mark.parametrize("kind", ["429", "503"])
@pytest.mark.parametrize("provider", ["byteplus", "alibaba"])
def test_create_fault_fails_over_to_fal(client: httpx.Client, upstreams: Upstreams, provider: str, kind: str) -> None:
    getattr(upstreams, provider).faults.add("create", kind)
    fal_before = len(upstreams.creates("fal"))
    done = finish(client, create(client, BODIES[provider]))
    assert done["status"] == "completed" and done["provider"] == "fal", done
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [(provider, "rejected"), ("fal", "accepted")]
    assert done["attempts"][0]["status_code"] == int(kind)
    (sent,) = upstreams.creates("fal")[fal_before:]
    model = {
        "byteplus": "fal-ai/bytedance/seedance/v1/pro/text-to-video",
        "alibaba": "fal-ai/wan-25-preview/text-to-video",
    }
    assert sent["path"] == f"/{model[provider]}" and sent["json"]["duration"] == "5"
    assert client.get(done["content_url"]).content == small_mp4()


@pytest.mark.parametrize("fault", ["http-429", "http-502", "inband-1002"])
def test_minimax_create_fault_is_tried_again_at_minimax(
    client: httpx.Client, upstreams: Upstreams, fault: str
) -> None:
    """Hailuo has no second provider here: a refusal that may pass sends the job to it again after a backoff."""
    kind, _, code = fault.partition("-")
    if kind == "http":
        upstreams.minimax.faults.add("create", code)
    else:
        upstreams.minimax.inband("create", int(code), "rate limit exceeded(RPM)")
    done = finish(client, create(client, BODIES["minimax"]), timeout=60)
    assert done["status"] == "completed" and done["provider"] == "minimax", done
    attempts = done["attempts"]
    assert [(a["provider"], a["outcome"]) for a in attempts] == [("minimax", "rejected"), ("minimax", "accepted")]
    if kind == "http":
        assert attempts[0]["status_code"] == int(code)
    else:
        assert attempts[0]["message"] == "rate limit exceeded(RPM)"
    assert done["billing"]["state"] == "settled"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_poll_faults_are_retried_without_resubmitting(
    client: httpx.Client, upstreams: Upstreams, provider: str
) -> None:
    fake = getattr(upstreams, provider)
    fake.faults.add("poll", "503")
    fake.faults.add("poll", "malformed")
    expected = [("poll", "503"), ("poll", "malformed")]
    if provider == "minimax":
        fake.inband("poll", 1002, "rate limit exceeded")
        fake.faults.add("retrieve", "500")
        expected.append(("retrieve", "500"))
    if provider == "alibaba":
        fake.inband("poll", "Throttling", "Requests throttling triggered.")
    before = len(upstreams.creates(provider))
    done = finish(client, create(client, BODIES[provider]), timeout=30)
    assert done["status"] == "completed", done
    assert fake.faults.applied == expected
    assert len(upstreams.creates(provider)) == before + 1  # the job was never resubmitted
    assert [a["provider"] for a in done["attempts"]] == [provider]


@pytest.mark.parametrize("provider", ["byteplus", "alibaba"])
def test_cancel_reaches_the_upstream(client: httpx.Client, upstreams: Upstreams, provider: str) -> None:
    fake = getattr(upstreams, provider)
    fake.queue_polls, fake.polls_to_complete = 1000, 1001  # stays queued/PENDING: cancellable upstream
    job = create(client, BODIES[provider])
    wait_status(client, job["id"], {"processing"}, timeout=20)
    r = client.post(f"/v1/videos/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    native = r.json()["generation_id"]

    def cancelled() -> bool:
        if provider == "byteplus":
            return any(q["method"] == "DELETE" and q["path"].endswith(f"/{native}") for q in fake.requests)
        return any(q["method"] == "POST" and q["path"].endswith(f"/tasks/{native}/cancel") for q in fake.requests)

    assert wait_for(cancelled)
    assert fake.tasks[native].status == {"byteplus": "cancelled", "alibaba": "CANCELED"}[provider]
    assert client.get(f"/v1/videos/{job['id']}").json()["billing"]["state"] == "void"


def test_minimax_cancel_stays_in_the_gateway(client: httpx.Client, upstreams: Upstreams) -> None:
    """MiniMax has no cancel: the job is cancelled and voided here, nothing is sent upstream."""
    upstreams.minimax.polls_to_complete = 1000
    job = create(client, BODIES["minimax"])
    wait_status(client, job["id"], {"processing"}, timeout=20)
    r = client.post(f"/v1/videos/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    time.sleep(0.6)  # a few poll intervals: any upstream call would have been made by now
    native = r.json()["generation_id"]
    requests = upstreams.minimax.requests
    created_at = max(i for i, q in enumerate(requests) if q["path"] == CREATE_PATHS["minimax"])
    assert all(q["path"] == "/v1/query/video_generation" for q in requests[created_at + 1 :])
    assert upstreams.minimax.tasks[native].status != "Success"
    assert client.get(f"/v1/videos/{job['id']}").json()["billing"]["state"] == "void"


@pytest.mark.parametrize(
    ("provider", "extra", "param"),
    [
        ("minimax", {"seed": 7}, "seed"),
        ("minimax", {"generate_audio": True}, "generate_audio"),
        ("byteplus", {"negative_prompt": "blurry"}, "negative_prompt"),
        (
            "alibaba",
            {
                "input_references": [
                    {"type": "image_url", "role": "last_frame", "image_url": {"url": png_data_url((1, 2, 3))}}
                ]
            },
            "input_references[0].role",
        ),
    ],
)
def test_parameter_the_model_lacks_is_a_400_before_any_hold(
    client: httpx.Client, upstreams: Upstreams, provider: str, extra: dict, param: str
) -> None:
    creates_before = {n: len(upstreams.creates(n)) for n in NAMES}
    usage_before = client.get("/v1/usage").json()
    r = client.post("/v1/videos", json={"prompt": "x", **BODIES[provider], **extra})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "unsupported_parameter" and error["param"] == param
    assert BODIES[provider]["model"] in error["message"]
    assert client.get("/v1/videos").json()["data"] == []
    usage = client.get("/v1/usage").json()
    assert usage["held"] == 0 and usage["balance"] == usage_before["balance"]
    time.sleep(0.3)
    assert {n: len(upstreams.creates(n)) for n in NAMES} == creates_before
