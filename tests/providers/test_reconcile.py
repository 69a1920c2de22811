"""Lost create answers, against every adapter's fake: unknown, not rejected, and found again where the upstream can.

Each case names a provider (its adapter and fake as ``wiring.WIRINGS`` wires them) and a job it
takes; the tests then make the fake fail the way real services do (the job is made, the answer is
lost) and check what ``submit`` raises and what ``find`` answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fakes.openai_fake import OpenAIFake
from fakes.server import FakeUpstream, free_port, small_mp4

from providers.harness import job_maker, poll_until_done, read_all
from providers.wiring import WIRINGS, Wiring
from vidgate.gateway.providers.base import (
    Accepted,
    JobSpec,
    PollFailed,
    ReferenceImage,
    Rejected,
    RemoteProvider,
    UnknownOutcome,
)
from vidgate.gateway.providers.reconcile import MAX_PAGES, recent

TIMEOUT = 0.5  # the adapters' read timeout here; an accept-hang outlasts it
MASK = ReferenceImage(role="mask", url="https://example.test/mask.png", data=b"\x89PNG", mime_type="image/png")


@dataclass(frozen=True)
class Case:
    """One adapter wired to its fake (``wiring.WIRINGS``), and what reconcile can do there."""

    name: str
    job: dict[str, Any]
    jobs: Callable[[Any], list[str]]  # native ids of every job the fake made, oldest first
    lost: str  # what find answers after a lost create: "found", "ambiguous" or "unsupported"
    refused: dict[str, Any] | None = None  # job fields the adapter refuses before sending
    list_op: str = "list"  # the fake's fault op for the call find makes

    @property
    def wiring(self) -> Wiring:
        return WIRINGS[self.name]

    def adapter(self, root: str, api_key: str | None = None, **extra: Any) -> Any:
        return self.wiring.adapter(self.wiring.config(root, api_key=api_key, extra=extra, timeout_seconds=TIMEOUT))

    def make_job(self, **overrides: Any) -> JobSpec:
        return job_maker(**{"width": 1280, "height": 720, **self.job})(**overrides)


def _ids(mapping_of: Callable[[Any], dict[str, Any]]) -> Callable[[Any], list[str]]:
    return lambda fake: list(mapping_of(fake))


CASES = [
    Case(
        "openai",
        {"model": "openai/sora-2", "provider_model": "sora-2", "prompt": "a red kite over dunes", "duration": 8,
         "audio": True},
        _ids(lambda f: f.jobs), "found", refused={"duration": 5},
    ),
    Case(
        "google",
        {"model": "google/veo-3.1", "provider_model": "veo-3.1-generate-preview", "prompt": "a lighthouse at dusk",
         "duration": 8, "audio": True},
        lambda f: [j["name"] for j in f.jobs.values()], "unsupported", refused={"references": (MASK,)},
    ),
    Case(
        "google-vertex",
        {"model": "google/veo-3.0", "provider_model": "veo-3.0-generate-001", "prompt": "a lighthouse at dusk",
         "duration": 8},
        _ids(lambda f: f.operations), "unsupported",
        refused={"provider_model": "veo-2.0-generate-001", "audio": True},
    ),
    Case(
        "runway",
        {"model": "runway/gen4.5", "provider_model": "gen4.5", "prompt": "a paper boat in the rain", "duration": 5},
        _ids(lambda f: f.tasks), "unsupported", refused={"provider_model": "gen4_turbo"},
    ),
    Case(
        "fal",
        {"model": "kling-v2.1-master", "provider_model": "fal-ai/kling-video/v2.1/master/text-to-video",
         "prompt": "a fox running through snow", "duration": 5, "width": 1920, "height": 1080},
        lambda f: [f"{t.app}|{t.id}" for t in f.tasks.values()], "unsupported",
        refused={"provider_model": "fal-ai/kling-video/v2.1/first-last-frame-to-video"},
    ),
    Case(
        "luma",
        {"model": "luma/ray-2", "provider_model": "ray-2", "prompt": "a koi pond in morning mist", "duration": 5,
         "resolution": "720p", "aspect_ratio": "16:9"},
        _ids(lambda f: f.generations), "found", refused={"seed": 7},
    ),
    Case(
        "replicate",
        {"model": "luma/ray-2", "provider_model": "luma/ray-2-720p", "prompt": "a fox running through snow",
         "duration": 5, "resolution": "720p", "aspect_ratio": "16:9"},
        _ids(lambda f: f.predictions), "found", refused={"sample_count": 2},
    ),
    Case(
        "kling",
        {"model": "kling/kling-2.5-turbo", "provider_model": "kling-v2-5-turbo", "prompt": "a fox running through snow",
         "duration": 5, "width": 1920, "height": 1080, "resolution": "1080p", "aspect_ratio": "16:9"},
        lambda f: [f"{t.endpoint}/{t.id}" for t in f.tasks.values()], "found",
        refused={"seed": 7}, list_op="poll",
    ),
    Case(
        "minimax",
        {"model": "minimax/hailuo-02", "provider_model": "MiniMax-Hailuo-02", "prompt": "a fox running through snow",
         "duration": 6, "width": 1366, "height": 768, "resolution": "768p", "aspect_ratio": "16:9"},
        _ids(lambda f: f.tasks), "unsupported", refused={"seed": 7},
    ),
    Case(
        "byteplus",
        {"model": "bytedance/seedance-1.0-pro", "provider_model": "seedance-1-0-pro-250528",
         "prompt": "a paper boat on a quiet lake", "duration": 5, "resolution": "720p", "aspect_ratio": "16:9"},
        _ids(lambda f: f.tasks), "ambiguous", refused={"negative_prompt": "blurry"},
    ),
    Case(
        "alibaba",
        {"model": "alibaba/wan-2.5", "provider_model": "wan2.5-t2v-preview", "prompt": "a lighthouse at dusk",
         "duration": 5, "resolution": "720p", "aspect_ratio": "16:9"},
        _ids(lambda f: f.tasks), "unsupported", refused={"sample_count": 2},
    ),
]  # fmt: skip
LOOKUPS = [c for c in CASES if c.lost != "unsupported"]


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


@pytest.fixture
def fake(case: Case) -> Any:
    made = case.wiring.fake()
    made.faults.hang_seconds = TIMEOUT * 2
    return made


@pytest.fixture
async def provider(case: Case, server: FakeUpstream) -> AsyncIterator[Any]:
    adapter = case.adapter(server.base_url)
    yield adapter
    await adapter.aclose()


def test_every_adapter_says_how_it_reconciles(case: Case, provider: Any) -> None:
    assert isinstance(provider, RemoteProvider)
    expected = {"found": "list", "ambiguous": "list", "unsupported": "none"}[case.lost]
    assert provider.reconcile == ("lookup" if case.name == "kling" else expected)


@pytest.mark.parametrize("kind", ["accept-hang", "accept-reset"])
async def test_a_lost_create_answer_is_unknown_and_found_again(case: Case, fake: Any, provider: Any, kind: str) -> None:
    job = case.make_job()
    fake.faults.add("create", kind)
    with pytest.raises(UnknownOutcome) as info:
        await provider.submit(job)
    assert info.value.retryable
    (made,) = case.jobs(fake)  # the upstream made the job all the same
    if case.lost == "found":
        found = await provider.find(job)
        assert isinstance(found, Accepted) and found.native_id == made
        done = await poll_until_done(provider, job, found.native_id)
        assert done[-1].status == "completed"
    else:
        with pytest.raises(UnknownOutcome) as unknown:
            await provider.find(job)
        assert (
            unknown.value.code
            == {"ambiguous": "reconcile_ambiguous", "unsupported": "reconcile_unsupported"}[case.lost]
        )
    assert case.jobs(fake) == [made]  # reconciling never creates


async def test_a_garbled_create_answer_is_unknown(case: Case, fake: Any, provider: Any) -> None:
    fake.faults.add("create", "malformed")
    with pytest.raises(UnknownOutcome):
        await provider.submit(case.make_job())


@pytest.mark.parametrize("case", LOOKUPS, ids=[c.name for c in LOOKUPS])
async def test_a_job_never_sent_is_not_found(case: Case, fake: Any, provider: Any) -> None:
    assert await provider.find(case.make_job()) is None
    assert case.jobs(fake) == []


async def test_a_job_the_adapter_refuses_is_not_found(case: Case, provider: Any) -> None:
    assert case.refused is not None
    job = case.make_job(**case.refused)
    with pytest.raises(Rejected):
        await provider.submit(job)
    assert await provider.find(job) is None


@pytest.mark.parametrize("case", LOOKUPS, ids=[c.name for c in LOOKUPS])
async def test_another_jobs_create_is_never_taken_for_ours(case: Case, fake: Any, provider: Any) -> None:
    other = await provider.submit(case.make_job(prompt="someone else's storm at sea"))
    ours = case.make_job()
    if case.name == "kling":  # an exact lookup: the other task simply is not ours
        assert await provider.find(ours) is None
        return
    with pytest.raises(UnknownOutcome) as info:  # a look-alike exists: perhaps, so never "absent"
        await provider.find(ours)
    assert info.value.code == "reconcile_ambiguous" and case.jobs(fake) == [other.native_id]


@pytest.mark.parametrize("case", LOOKUPS, ids=[c.name for c in LOOKUPS])
async def test_a_find_that_cannot_ask_is_unknown(case: Case, fake: Any, provider: Any) -> None:
    fake.faults.add(case.list_op, "503")
    with pytest.raises(UnknownOutcome) as info:
        await provider.find(case.make_job())
    assert info.value.code == "reconcile_failed" and info.value.status_code == 503


async def test_a_repeated_submit_makes_a_second_job_only_where_the_upstream_allows(
    case: Case, fake: Any, provider: Any
) -> None:
    job = case.make_job()
    first = await provider.submit(job)
    if case.name == "kling":  # the reused external_task_id is refused: no second task
        with pytest.raises(Rejected) as info:
            await provider.submit(job)
        assert not isinstance(info.value, UnknownOutcome) and not info.value.retryable
        assert case.jobs(fake) == [first.native_id]
        found = await provider.find(job)
        assert found is not None and found.native_id == first.native_id
        return
    await provider.submit(job)  # no idempotency the upstream honours: a second job
    assert len(case.jobs(fake)) == 2


async def test_openai_fake_can_answer_a_repeated_key_with_the_first_job() -> None:
    fake = OpenAIFake()
    fake.dedupe_idempotency_keys = True  # the real API's behaviour here is unverified
    with FakeUpstream(fake.app) as running:
        provider = CASES[0].adapter(running.base_url)
        try:
            job = CASES[0].make_job()
            first, again = await provider.submit(job), await provider.submit(job)
        finally:
            await provider.aclose()
    assert first.native_id == again.native_id and list(fake.jobs) == [first.native_id]


@pytest.mark.parametrize("kind", ["429", "500", "accept-500"])
async def test_an_answered_error_is_a_definite_rejection(case: Case, fake: Any, provider: Any, kind: str) -> None:
    fake.faults.add("create", kind)
    with pytest.raises(Rejected) as info:
        await provider.submit(case.make_job())
    assert not isinstance(info.value, UnknownOutcome)
    assert info.value.retryable and info.value.status_code == int(kind[-3:])
    # An answered 500 is final by rule even when the upstream made the job (accept-500): the
    # fake shows that case exists; only a lost answer is reconciled.
    assert len(case.jobs(fake)) == (1 if kind == "accept-500" else 0)


async def test_wrong_credentials_are_a_definite_rejection(case: Case, server: FakeUpstream) -> None:
    provider = case.adapter(server.base_url, api_key="wrong-key")
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(case.make_job())
    finally:
        await provider.aclose()
    assert not isinstance(info.value, UnknownOutcome) and not info.value.retryable


async def test_an_unreachable_upstream_is_a_definite_rejection(case: Case) -> None:
    provider = case.adapter(f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(case.make_job())
    finally:
        await provider.aclose()
    assert not isinstance(info.value, UnknownOutcome) and info.value.retryable


async def test_output_links_expire(case: Case, fake: Any, server: FakeUpstream) -> None:
    extra = {"storage_uri": "gs://bucket/out"} if case.name == "google-vertex" else {}
    provider = case.adapter(server.base_url, **extra)
    try:
        job = case.make_job()
        accepted = await provider.submit(job)
        (out,) = (await poll_until_done(provider, job, accepted.native_id))[-1].outputs
        assert await read_all(provider, out) == small_mp4()
        fake.outputs.ttl = 0.3  # counted from when the link was handed out, before the read above
        await asyncio.sleep(0.4)
        with pytest.raises(PollFailed) as info:
            await read_all(provider, out)
    finally:
        await provider.aclose()
    assert info.value.status_code in (403, 404) and not info.value.retryable


async def _pages(*pages: list[dict[str, float]]) -> AsyncIterator[list[dict[str, float]]]:
    for page in pages:
        yield page


async def test_a_scan_reads_back_to_the_window_and_no_further() -> None:
    # The third page, were it read, would be out of order and make the answer unknown.
    pages = _pages([{"t": 9.0}, {"t": 8.0}], [{"t": 6.0}, {"t": 3.0}], [{"t": 7.0}])
    assert await recent("x", pages, lambda i: i["t"], 5.0) == [{"t": 9.0}, {"t": 8.0}, {"t": 6.0}]


@pytest.mark.parametrize(
    "pages",
    [
        [[{"t": 1.0}, {"t": 2.0}]],  # oldest first within a page
        [[{"t": 5.0}], [{"t": 6.0}]],  # or across pages
        [[{"t": 9.0}, {}]],  # an item without a time
        [[{"t": 9.0}]] * (MAX_PAGES + 1),  # never reaching the window
    ],
)
async def test_a_scan_that_could_miss_our_job_is_unknown(pages: list[list[dict[str, float]]]) -> None:
    with pytest.raises(UnknownOutcome):
        await recent("x", _pages(*pages), lambda i: i.get("t"), 0.0)
