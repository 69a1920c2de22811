"""Every remote provider through one running gateway, each against its fake.

Each test runs over every entry of the registry (``provider_cases.SERVED``) that has what it needs:
a job runs end to end (bytes stored and served), an upstream failure fails the job with the
provider's message, a create-time refusal fails over to the model's next provider (or, for a model
with one provider, is tried again there), poll-time faults are ridden out without resubmitting,
cancel reaches the upstream where it has one and stays in the gateway where it has not, and a
parameter the model lacks is a 400 before any hold or upstream call. A new provider's gateway test
is one entry there (and its wiring).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fakes.server import small_mp4
from helpers.gateway import GatewayProcess, wait_status

from providers.provider_cases import BY_NAME, FIRST, SERVED, Failover, Record, Retry, Served
from providers.served import fleet_of, fresh_client, gateway_for
from providers.wiring import Fleet

TERMINAL = {"completed", "failed", "cancelled", "expired"}


def cases(attr: str) -> list[Any]:
    """``(entry, item)`` for every item of the entries' ``attr``, with test ids."""
    out = []
    for s in SERVED:
        items = getattr(s, attr)
        for i, item in enumerate(items):
            out.append(pytest.param(s, item, id=s.name if len(items) == 1 else f"{s.name}-{i}"))
    return out


def having(attr: str) -> list[Any]:
    return [pytest.param(s, id=s.name) for s in SERVED if getattr(s, attr)]


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    yield from fleet_of(BY_NAME, {s.name: s.fake_settings for s in SERVED})


@pytest.fixture(scope="module")
def gw(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from gateway_for(fleet, tmp_path_factory, "providers")


@pytest.fixture
def client(gw: GatewayProcess, fleet: Fleet) -> Iterator[httpx.Client]:
    yield from fresh_client(gw, fleet, "providers")


def create(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/videos", json={"prompt": "a paper boat on a rainy street", **body})
    assert r.status_code == 202, r.text
    return r.json()


def finish(client: httpx.Client, job: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    return wait_status(client, job["id"], TERMINAL, timeout=timeout)


def creates(fleet: Fleet, name: str) -> list[Record]:
    return [r for r in fleet[name].requests if BY_NAME[name].creates(r)]


def wait_for(check: Callable[[], bool], timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def assert_stored(client: httpx.Client, job: dict[str, Any], done: dict[str, Any]) -> None:
    assert done["status"] == "completed", done
    data = client.get(done["content_url"]).content
    assert data == small_mp4() and done["asset"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert done["asset"]["width"] == 64 and done["asset"]["height"] == 64
    assert done["asset"]["duration_seconds"] == 1.0
    # Held for the requested seconds, settled for the one second the upstream really produced.
    assert 0 < done["billing"]["settled"] < job["billing"]["held"]
    assert done["billing"]["state"] == "settled"


@pytest.mark.parametrize("served", [pytest.param(s, id=s.name) for s in SERVED])
def test_each_adapter_end_to_end(client: httpx.Client, fleet: Fleet, served: Served) -> None:
    name = served.name
    fake = fleet[name]
    kept = fake.polls_to_complete
    if served.reports_progress:  # held mid-way, progress rising a step a poll, until the test has seen it
        fake.polls_to_complete = 200
    try:
        job = create(client, served.run)
        assert job["provider"] == name
        progress = set()
        deadline = time.monotonic() + 60
        while (done := client.get(f"/v1/videos/{job['id']}").json())["status"] not in TERMINAL:
            progress.add((done["progress"], done.get("progress_source")))
            if any(src == "provider" and 0 < (p or 0) < 100 for p, src in progress):
                fake.polls_to_complete = 1  # seen: the next poll completes it
            assert time.monotonic() < deadline, done
            time.sleep(0.05)
    finally:
        fake.polls_to_complete = kept
    assert done["provider"] == name and done["generation_id"]
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [(name, "accepted")]
    assert_stored(client, job, done)
    (sent,) = creates(fleet, name)
    if served.sent:
        served.sent(sent, job)
    if served.reports_progress:
        assert any(src == "provider" and 0 < (p or 0) < 100 for p, src in progress), progress


def test_first_frame_reaches_each_upstream(client: httpx.Client, fleet: Fleet) -> None:
    takers = [s for s in SERVED if s.first_frame]
    jobs = {s.name: create(client, {**s.run, "input_references": FIRST}) for s in takers}
    for name, job in jobs.items():
        assert finish(client, job, timeout=20)["status"] == "completed", name
    for served in takers:
        served.first_frame(creates(fleet, served.name)[-1])  # type: ignore[misc]


@pytest.mark.parametrize("served", having("failure"))
def test_upstream_failure_keeps_the_provider_message(client: httpx.Client, fleet: Fleet, served: Served) -> None:
    failure = served.failure
    assert failure is not None
    fleet[served.name].fail_next = failure.switch
    done = finish(client, create(client, served.run))
    assert done["status"] == "failed" and done["error"]["provider"] == served.name, done
    assert done["error"]["message"] == failure.message if failure.message else done["error"]["message"]
    if failure.code:
        assert done["error"]["code"] == failure.code
    assert done["billing"]["state"] == "void" and done["usage"]["cost"] == 0


@pytest.mark.parametrize(("served", "failover"), cases("failovers"))
def test_create_fault_fails_over_to_the_next_provider(
    client: httpx.Client, fleet: Fleet, served: Served, failover: Failover
) -> None:
    name, second = served.name, failover.second
    fleet[name].faults.add("create", failover.kind)
    done = finish(client, create(client, failover.body))
    assert done["status"] == "completed" and done["provider"] == second, done
    assert [(a["provider"], a["outcome"]) for a in done["attempts"]] == [(name, "rejected"), (second, "accepted")]
    assert done["attempts"][0]["status_code"] == int(failover.kind)
    assert fleet[name].faults.applied == [("create", failover.kind)]
    (sent,) = creates(fleet, second)
    if failover.sent:
        failover.sent(sent)
    assert client.get(done["content_url"]).content == small_mp4()


@pytest.mark.parametrize(("served", "retry"), cases("retries"))
def test_a_single_provider_model_is_tried_again_after_a_refusal(
    client: httpx.Client, fleet: Fleet, served: Served, retry: Retry
) -> None:
    """A refusal that may pass from the only provider is not the end: after a backoff (Retry-After
    honoured) the job goes to it again."""
    name, fake = served.name, fleet[served.name]
    if retry.status:
        fake.faults.add("create", retry.status)
    else:
        assert retry.inband is not None
        fake.inband("create", *retry.inband)
    done = finish(client, create(client, retry.body), timeout=60)
    assert done["status"] == "completed" and done["provider"] == name, done
    attempts = done["attempts"]
    assert [(a["provider"], a["outcome"]) for a in attempts] == [(name, "rejected"), (name, "accepted")]
    if retry.status:
        assert attempts[0]["status_code"] == int(retry.status)
    else:
        assert attempts[0]["message"] == retry.inband[1]  # type: ignore[index]
    assert done["billing"]["state"] == "settled"


@pytest.mark.parametrize("served", having("poll_faults"))
def test_poll_faults_are_ridden_out(client: httpx.Client, fleet: Fleet, served: Served) -> None:
    fake = fleet[served.name]
    for op, kind in served.poll_faults:
        fake.faults.add(op, kind)
    if served.poll_inband:
        fake.inband("poll", *served.poll_inband)
    done = finish(client, create(client, served.run), timeout=60)
    assert done["status"] == "completed", done
    assert fake.faults.applied == list(served.poll_faults)
    assert len(creates(fleet, served.name)) == 1  # the job was never resubmitted
    assert done["attempts"] == [{**done["attempts"][0], "provider": served.name, "outcome": "accepted"}]


@pytest.mark.parametrize("served", having("cancel"))
def test_cancel(client: httpx.Client, fleet: Fleet, served: Served) -> None:
    """Cancel reaches the upstream where it has a cancel; elsewhere the job is cancelled here and the
    upstream job is left alone. Either way the hold is voided."""
    cancel, fake = served.cancel, fleet[served.name]
    assert cancel is not None
    kept = (fake.polls_to_complete, getattr(fake, "queue_polls", None))
    if kept[1] is not None:  # stays queued upstream, where such upstreams can still cancel
        fake.queue_polls, fake.polls_to_complete = 1000, 1001
    else:
        fake.polls_to_complete = 1000
    try:
        job = create(client, cancel.body)
        wait_status(client, job["id"], {"processing"}, timeout=30)
        r = client.post(f"/v1/videos/{job['id']}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        native = r.json()["generation_id"]
        if cancel.sent:
            assert wait_for(lambda: any(cancel.sent(q, native) for q in fake.requests))  # type: ignore[misc]
            if cancel.done:
                assert cancel.done(fake, native)
        else:
            assert cancel.polling is not None and cancel.running is not None
            time.sleep(0.6)  # a few poll intervals: any upstream call would have been made by now
            made = max(i for i, q in enumerate(fake.requests) if served.creates(q))
            assert all(cancel.polling(q) for q in fake.requests[made + 1 :])
            assert cancel.running(fake, native)
        assert client.get(f"/v1/videos/{job['id']}").json()["billing"]["state"] == "void"
    finally:
        fake.polls_to_complete = kept[0]
        if kept[1] is not None:
            fake.queue_polls = kept[1]


@pytest.mark.parametrize(("served", "refusal"), cases("refused"))
def test_parameter_the_model_lacks_is_a_400_before_any_hold(
    gw: GatewayProcess, fleet: Fleet, served: Served, refusal: tuple[dict[str, Any], str]
) -> None:
    body, param = refusal
    fleet.reset()
    with gw.admin() as admin:
        key = admin.post("/v1/admin/keys", json={"name": "providers-400", "balance": 10.0}).json()
        before = admin.get(f"/v1/admin/keys/{key['id']}/ledger").json()
    with gw.client(key["key"]) as c:
        r = c.post("/v1/videos", json={"prompt": "a paper boat on a rainy street", **body})
        assert r.status_code == 400, r.text
        err = r.json()["error"]
        assert err["code"] == "unsupported_parameter" and err["param"] == param
        assert body["model"] in err["message"]
        assert c.get("/v1/videos").json()["data"] == []
        usage = c.get("/v1/usage").json()
        assert usage["held"] == 0 and usage["balance"] == 10.0
    with gw.admin() as admin:
        after = admin.get(f"/v1/admin/keys/{key['id']}/ledger").json()
    assert after["held"] == 0 and after["balance"] == before["balance"] == 10.0
    assert after["entries"] == before["entries"]
    time.sleep(0.3)  # a create the refusal let through would have reached a fake by now
    assert all(creates(fleet, name) == [] for name in BY_NAME)


def test_vertex_storage_uri_outputs(client: httpx.Client, fleet: Fleet) -> None:
    """With a storageUri, Vertex writes gs:// objects; the gateway fetches them from storage."""
    body = {"model": "google/veo-3.0-fast", "duration": 4, "provider_params": {"storageUri": "gs://vg-test/out/"}}
    job = create(client, body)
    assert_stored(client, job, finish(client, job))
    (download,) = [r for r in fleet["google-vertex"].requests if r.path.startswith("/storage/v1/b/vg-test/o/")]
    assert download.headers["authorization"] == "Bearer ya29.test"
