"""google-vertex, luma, replicate and kling through a running gateway, each against its fake.

One gateway process and four fakes per module. Per provider: a job runs end to end (bytes stored
and served), an upstream failure fails the job with the provider's message, a create-time 429/5xx
fails over to the model's second provider (or fails naming the attempt), poll-time faults are
ridden out without resubmitting, cancel reaches the upstream where it has one, and a parameter the
model lacks is a 400 before any hold or upstream call.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.kling_fake import FAILURE_MESSAGE as KLING_FAILURE
from fakes.kling_fake import KlingFake
from fakes.luma_fake import FAILURE_REASON as LUMA_FAILURE
from fakes.luma_fake import LumaFake
from fakes.replicate_fake import FAILURE_ERROR as REPLICATE_FAILURE
from fakes.replicate_fake import ReplicateFake
from fakes.server import FakeUpstream, small_mp4
from fakes.vertex_fake import FAILURE_MESSAGE as VERTEX_FAILURE
from fakes.vertex_fake import VertexFake
from helpers.gateway import GatewayProcess, wait_status
from helpers.media import png_data_url

NAMES = ("google-vertex", "luma", "replicate", "kling")
FIRST = [{"type": "image_url", "role": "first_frame", "image_url": {"url": png_data_url((10, 200, 30), 64, 64)}}]
LAST = [{"type": "image_url", "role": "last_frame", "image_url": {"url": png_data_url((200, 10, 30), 64, 64)}}]


class Upstreams:
    def __init__(self) -> None:
        self.fakes: dict[str, Any] = {
            "google-vertex": VertexFake(token="ya29.test", project="proj-test", polls_to_complete=2),
            "luma": LumaFake(api_key="luma-test", polls_to_complete=2),
            "replicate": ReplicateFake(api_token="r8_test", polls_to_complete=2),
            "kling": KlingFake(access_key="ak-test", secret_key="sk-test", polls_to_complete=2),
        }
        self.servers = {name: FakeUpstream(fake.app).start() for name, fake in self.fakes.items()}

    def config(self, path: Path) -> Path:
        url = {name: server.base_url for name, server in self.servers.items()}
        common = "poll_interval_seconds = 0.2\ntimeout_seconds = 2.0\n"
        path.write_text(
            f'[providers.google-vertex]\napi_key = "ya29.test"\nbase_url = "{url["google-vertex"]}/v1"\n'
            f'project = "proj-test"\nlocation = "us-central1"\nstorage_base_url = "{url["google-vertex"]}"\n{common}\n'
            f'[providers.luma]\napi_key = "luma-test"\nbase_url = "{url["luma"]}/dream-machine/v1"\n{common}\n'
            f'[providers.replicate]\napi_key = "r8_test"\nbase_url = "{url["replicate"]}/v1"\n{common}\n'
            f'[providers.kling]\napi_key = "ak-test"\nsecret_key = "sk-test"\nbase_url = "{url["kling"]}"\n{common}'
        )
        return path

    def reset(self) -> None:
        for fake in self.fakes.values():
            fake.reset()

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


def creates(fake: Any) -> list[Any]:
    """The create calls a fake recorded (requests are dicts or named tuples, per fake)."""
    out = []
    for r in fake.requests:
        method, path = (r["method"], r["path"]) if isinstance(r, dict) else (r.method, r.path)
        if method == "POST" and not path.endswith((":fetchPredictOperation", "/cancel")):
            out.append(r)
    return out


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    ups = Upstreams()
    yield ups
    ups.stop()


@pytest.fixture(scope="module")
def gw(upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    root = tmp_path_factory.mktemp("part2a")
    proc = GatewayProcess(root / "gw", env={"VIDGATE_CONFIG": str(upstreams.config(root / "providers.toml"))})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def client(gw: GatewayProcess, upstreams: Upstreams) -> Iterator[httpx.Client]:
    upstreams.reset()
    with gw.client(gw.new_key("part2a", balance=100.0)) as c:
        yield c


def create(client: httpx.Client, body: dict[str, Any], status: int = 202) -> dict[str, Any]:
    r = client.post("/v1/videos", json={"prompt": "a paper boat on a rainy street", **body})
    assert r.status_code == status, r.text
    return r.json()


def only(name: str) -> dict[str, Any]:
    return {"provider": {"only": [name]}}


# One request per provider that the provider runs first.
RUNS: dict[str, dict[str, Any]] = {
    "google-vertex": {"model": "google/veo-3.0", "duration": 8},
    "luma": {"model": "luma/ray-2", "duration": 5},
    "replicate": {"model": "luma/ray-flash-2", "duration": 5, "resolution": "540p", **only("replicate")},
    "kling": {"model": "kling/kling-2.5-turbo", "duration": 5},
}


def assert_stored(client: httpx.Client, job: dict[str, Any], done: dict[str, Any]) -> None:
    assert done["status"] == "completed", done
    data = client.get(done["content_url"]).content
    assert data == small_mp4() and done["asset"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert done["asset"]["width"] == 64 and done["asset"]["height"] == 64
    assert done["asset"]["duration_seconds"] == 1.0
    # Held for the requested seconds, settled for the one second the upstream really produced.
    assert 0 < done["billing"]["settled"] < job["billing"]["held"]
    assert done["billing"]["state"] == "settled"


@pytest.mark.parametrize("name", NAMES)
def test_each_adapter_end_to_end(client: httpx.Client, upstreams: Upstreams, name: str) -> None:
    job = create(client, RUNS[name])
    assert job["provider"] == name
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=30)
    assert done["provider"] == name and done["generation_id"]
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [(name, "accepted")]
    assert_stored(client, job, done)
    fake = upstreams.fakes[name]
    assert len(creates(fake)) == 1
    if name == "replicate":  # the 540p job went to Replicate's 540p sibling of the model
        assert creates(fake)[0]["path"] == "/v1/models/luma/ray-flash-2-540p/predictions"
        assert "cancel-after" in creates(fake)[0]["headers"]
    if name == "kling":
        assert creates(fake)[0]["json"]["external_task_id"] == job["id"]


def test_vertex_storage_uri_outputs(client: httpx.Client, upstreams: Upstreams) -> None:
    """With a storageUri, Vertex writes gs:// objects; the gateway fetches them from storage."""
    body = {"model": "google/veo-3.0-fast", "duration": 4, "provider_params": {"storageUri": "gs://vg-test/out/"}}
    job = create(client, body)
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=30)
    assert_stored(client, job, done)
    fake = upstreams.fakes["google-vertex"]
    (download,) = [r for r in fake.requests if r.path.startswith("/storage/v1/b/vg-test/o/")]
    assert download.headers["authorization"] == "Bearer ya29.test"


FAILURES: dict[str, tuple[Any, str, dict[str, Any]]] = {
    "google-vertex": ("failed", VERTEX_FAILURE, RUNS["google-vertex"]),
    "luma": (True, LUMA_FAILURE, RUNS["luma"]),
    "replicate": (True, REPLICATE_FAILURE, RUNS["replicate"]),
    "kling": (True, KLING_FAILURE, RUNS["kling"]),
}


@pytest.mark.parametrize("name", NAMES)
def test_upstream_failure_keeps_the_provider_message(client: httpx.Client, upstreams: Upstreams, name: str) -> None:
    switch, message, body = FAILURES[name]
    upstreams.fakes[name].fail_next = switch
    job = create(client, body)
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=30)
    assert done["status"] == "failed", done
    assert done["error"]["provider"] == name and done["error"]["message"] == message
    assert done["billing"]["state"] == "void" and done["usage"]["cost"] == 0


# (provider that faults, fault, request, provider expected to take over)
FAILOVERS = [
    ("google-vertex", "503", {"model": "google/veo-3.0", "duration": 8}, "replicate"),
    ("luma", "429", {"model": "luma/ray-2", "duration": 5}, "replicate"),
    ("kling", "500", {"model": "kling/kling-2.1", "duration": 5, "input_references": FIRST}, "replicate"),
    (
        "replicate",
        "502",
        {"model": "luma/ray-2", "duration": 5, "provider": {"order": ["replicate", "luma"]}},
        "luma",
    ),
]


@pytest.mark.parametrize(("name", "kind", "body", "second"), FAILOVERS, ids=[f[0] for f in FAILOVERS])
def test_create_fault_fails_over_to_the_second_provider(
    client: httpx.Client, upstreams: Upstreams, name: str, kind: str, body: dict[str, Any], second: str
) -> None:
    upstreams.fakes[name].faults.add("create", kind)
    job = create(client, body)
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=30)
    assert done["status"] == "completed" and done["provider"] == second, done
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [(name, "rejected"), (second, "accepted")]
    assert done["attempts"][0]["status_code"] == int(kind)
    assert upstreams.fakes[name].faults.applied == [("create", kind)]
    assert len(creates(upstreams.fakes[second])) == 1


def test_single_provider_model_is_tried_again_after_a_refusal(client: httpx.Client, upstreams: Upstreams) -> None:
    """A 429 from the only provider is not the end: the plan runs again after a backoff (Retry-After honoured)."""
    upstreams.fakes["kling"].faults.add("create", "429")
    job = create(client, {"model": "kling/kling-2.6", "duration": 5, "generate_audio": True})
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=60)
    assert done["status"] == "completed" and done["provider"] == "kling", done
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [("kling", "rejected"), ("kling", "accepted")]
    assert done["attempts"][0]["status_code"] == 429
    assert done["billing"]["state"] == "settled"


@pytest.mark.parametrize("name", NAMES)
def test_poll_faults_are_ridden_out(client: httpx.Client, upstreams: Upstreams, name: str) -> None:
    fake = upstreams.fakes[name]
    fake.faults.add("poll", "503")
    fake.faults.add("poll", "malformed")
    job = create(client, RUNS[name])
    done = wait_status(client, job["id"], {"completed", "failed"}, timeout=30)
    assert done["status"] == "completed", done
    assert [k for op, k in fake.faults.applied if op == "poll"] == ["503", "malformed"]
    assert len(creates(fake)) == 1  # the job was never resubmitted
    assert done["attempts"] == [{**done["attempts"][0], "provider": name, "outcome": "accepted"}]


def _wait_for(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_cancel_reaches_replicate(client: httpx.Client, upstreams: Upstreams) -> None:
    fake = upstreams.fakes["replicate"]
    fake.polls_to_complete = 1000
    try:
        job = create(client, {"model": "luma/ray-2", "duration": 5, **only("replicate")})
        wait_status(client, job["id"], {"processing"}, timeout=30)
        r = client.post(f"/v1/videos/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        native = r.json()["generation_id"]
        assert _wait_for(lambda: any(r["path"] == f"/v1/predictions/{native}/cancel" for r in fake.requests))
        assert fake.predictions[native].status == "canceled"
        assert client.get(f"/v1/videos/{job['id']}").json()["billing"]["state"] == "void"
    finally:
        fake.polls_to_complete = 2


def test_cancel_without_an_upstream_cancel(client: httpx.Client, upstreams: Upstreams) -> None:
    """Luma has no cancel: the job is cancelled here and the generation is left alone (no DELETE)."""
    fake = upstreams.fakes["luma"]
    fake.polls_to_complete = 1000
    try:
        job = create(client, RUNS["luma"])
        wait_status(client, job["id"], {"processing"}, timeout=30)
        r = client.post(f"/v1/videos/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        time.sleep(0.6)  # a few poll intervals for the worker to act on the cancel
        assert not any(r["method"] == "DELETE" for r in fake.requests)
        assert client.get(f"/v1/videos/{job['id']}").json()["billing"]["state"] == "void"
    finally:
        fake.polls_to_complete = 2


# (provider whose model lacks the parameter, request, offending param)
UNSUPPORTED = [
    ("google-vertex", {"model": "google/veo-3.0", "duration": 8, "input_references": LAST}, "input_references[0].role"),
    ("luma", {"model": "luma/ray-2", "duration": 5, "seed": 7}, "seed"),
    (
        "replicate",
        {"model": "luma/ray-2", "duration": 5, "negative_prompt": "blur", **only("replicate")},
        "negative_prompt",
    ),
    ("kling", {"model": "kling/kling-2.5-turbo", "duration": 5, "generate_audio": True}, "generate_audio"),
]


@pytest.mark.parametrize(("name", "body", "param"), UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_parameter_the_model_lacks_is_a_400_before_any_hold(
    gw: GatewayProcess, upstreams: Upstreams, name: str, body: dict[str, Any], param: str
) -> None:
    upstreams.reset()
    with gw.admin() as admin:
        key = admin.post("/v1/admin/keys", json={"name": "part2a-400", "balance": 10.0}).json()
        before = admin.get(f"/v1/admin/keys/{key['id']}/ledger").json()
    with gw.client(key["key"]) as c:
        r = c.post("/v1/videos", json={"prompt": "a paper boat on a rainy street", **body})
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "unsupported_parameter" and err["param"] == param
        assert c.get("/v1/videos").json()["data"] == []
    with gw.admin() as admin:
        after = admin.get(f"/v1/admin/keys/{key['id']}/ledger").json()
    assert after["held"] == 0 and after["balance"] == before["balance"] == 10.0
    assert after["entries"] == before["entries"]
    assert all(creates(fake) == [] for fake in upstreams.fakes.values())
