"""What every adapter meets, whatever its upstream: faults on create, poll and download, lost answers,
refused connections and keys, unknown jobs, expired links and forced ends.

Each test runs over the providers of ``wiring.ADAPTER_CASES`` (one entry per provider: a job its
upstream takes and how that upstream answers); the fakes inject the faults through ``fakes.server``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import pytest
from fakes.server import free_port, small_mp4

from providers.harness import job_maker, poll_until_done, read_all
from providers.wiring import ADAPTER_CASES, WIRINGS, AdapterCase, Ending, Wiring
from vidgate.gateway.providers.base import JobSpec, PollFailed, Rejected, RemoteProvider, UnknownOutcome

NAMES = sorted(ADAPTER_CASES)


def providers(having: Callable[[str], bool] = lambda name: True) -> list[str]:
    return [name for name in NAMES if having(name)]


def each(values: Callable[[str], Iterable[Any]], label: Callable[[Any], str] = str) -> list[Any]:
    """``(name, value)`` params: every provider with each of its values."""
    return [pytest.param(name, value, id=f"{name}-{label(value)}") for name in NAMES for value in values(name)]


def upstream_id(native_id: str) -> str:
    """The upstream's own id, which ends the native id (``text-to-video/<id>`` for LTX)."""
    return native_id.rpartition("/")[2]


@pytest.fixture
def wire(name: str) -> Wiring:
    return WIRINGS[name]


@pytest.fixture
def case(name: str) -> AdapterCase:
    return ADAPTER_CASES[name]


@pytest.fixture
def make_job(case: AdapterCase) -> Callable[..., JobSpec]:
    return job_maker(**case.job)


@pytest.fixture
def fake(wire: Wiring) -> Any:
    return wire.fake(api_key=wire.key, polls_to_complete=3)


@pytest.fixture
async def provider(wire: Wiring, root: str) -> AsyncIterator[RemoteProvider]:
    p = wire.adapter(wire.config(root, timeout_seconds=5))
    yield p
    await p.aclose()


async def finished(provider: RemoteProvider, job: JobSpec) -> Any:
    accepted = await provider.submit(job)
    return (await poll_until_done(provider, job, accepted.native_id))[-1]


@pytest.mark.parametrize(("name", "kind"), each(lambda name: ["429", "500", "502", "503"]))
async def test_create_faults_are_retryable(
    provider: RemoteProvider, fake: Any, case: AdapterCase, make_job: Callable[..., JobSpec], kind: str
) -> None:
    fake.faults.add("create", kind)
    with pytest.raises(Rejected) as info:
        await provider.submit(make_job())
    assert info.value.retryable and info.value.status_code == int(kind)
    if kind == "429":
        assert info.value.retry_after == 1.0
    jobs = getattr(fake, case.store)
    assert jobs == {}
    assert upstream_id((await provider.submit(make_job())).native_id) in jobs


@pytest.mark.parametrize(("name", "kind"), each(lambda name: ["timeout", "accept-hang", "accept-reset", "malformed"]))
async def test_a_lost_create_answer_is_an_unknown_outcome(
    wire: Wiring, fake: Any, case: AdapterCase, make_job: Callable[..., JobSpec], root: str, kind: str
) -> None:
    """Sent, but no whole answer came back: the job may exist upstream, so never a failover."""
    fake.faults.hang_seconds = 10.0  # far past the 0.3 s timeout, however slow the machine
    fake.faults.add("create", kind)
    provider = wire.adapter(wire.config(root, timeout_seconds=0.3))
    try:
        with pytest.raises(UnknownOutcome) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable and not isinstance(info.value, Rejected)
    if kind == "timeout":
        assert info.value.code == "upstream_timeout"
    made = kind.startswith("accept-")  # a timeout or a garbled answer comes before the job is made
    assert len(getattr(fake, case.store)) == (1 if made else 0)


@pytest.mark.parametrize("name", providers())
async def test_a_500_after_the_job_was_made_is_a_retryable_rejection(
    wire: Wiring, fake: Any, case: AdapterCase, make_job: Callable[..., JobSpec], root: str
) -> None:
    fake.faults.add("create", "accept-500")
    provider = wire.adapter(wire.config(root, timeout_seconds=0.3))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable
    assert len(getattr(fake, case.store)) == 1


@pytest.mark.parametrize("name", providers())
async def test_connection_refused_is_retryable(wire: Wiring, make_job: Callable[..., JobSpec]) -> None:
    provider = wire.adapter(wire.config(f"http://127.0.0.1:{free_port()}", timeout_seconds=1))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert info.value.retryable and "unreachable" in info.value.message


@pytest.mark.parametrize("name", providers())
async def test_a_wrong_key_is_not_retryable(
    wire: Wiring, fake: Any, case: AdapterCase, make_job: Callable[..., JobSpec], root: str
) -> None:
    provider = wire.adapter(wire.config(root, api_key=wire.key + "-wrong"))
    try:
        with pytest.raises(Rejected) as info:
            await provider.submit(make_job())
    finally:
        await provider.aclose()
    assert not info.value.retryable and (info.value.status_code, info.value.message) == case.wrong_key


@pytest.mark.parametrize("name", providers())
async def test_poll_faults_are_retryable_and_polling_recovers(
    provider: RemoteProvider, fake: Any, make_job: Callable[..., JobSpec]
) -> None:
    job = make_job()
    accepted = await provider.submit(job)
    kinds = ("500", "502", "503", "429", "malformed")
    for kind in kinds:
        fake.faults.add("poll", kind)
    for kind in kinds:
        with pytest.raises(PollFailed) as info:
            await provider.poll(job, accepted.native_id)
        assert info.value.retryable and info.value.status_code == (200 if kind == "malformed" else int(kind))
    assert (await poll_until_done(provider, job, accepted.native_id))[-1].status == "completed"
    assert len([r for r in fake.requests if r["method"] == "POST"]) == 1


@pytest.mark.parametrize("name", providers())
async def test_an_unknown_job_is_not_retryable(
    provider: RemoteProvider, case: AdapterCase, make_job: Callable[..., JobSpec]
) -> None:
    with pytest.raises(PollFailed) as info:
        await provider.poll(make_job(), case.missing_id)
    assert not info.value.retryable and info.value.status_code == 404


@pytest.mark.parametrize("name", providers(lambda name: WIRINGS[name].adapter.reconcile == "none"))
async def test_find_cannot_tell(provider: RemoteProvider, make_job: Callable[..., JobSpec]) -> None:
    with pytest.raises(UnknownOutcome) as info:
        await provider.find(make_job())
    assert info.value.code == "reconcile_unsupported"


@pytest.mark.parametrize(("name", "ending"), each(lambda name: ADAPTER_CASES[name].endings, lambda e: str(e.switch)))
async def test_a_forced_end_keeps_its_reason(
    provider: RemoteProvider, fake: Any, make_job: Callable[..., JobSpec], ending: Ending
) -> None:
    fake.fail_next = ending.switch
    final = await finished(provider, make_job())
    assert final.status == ending.status and final.outputs == ()
    if ending.code is None and ending.message is None:
        assert final.error is None
    else:
        assert final.error is not None and (final.error.code, final.error.message) == (ending.code, ending.message)


@pytest.mark.parametrize(("name", "how"), each(lambda name: ["flag", "ttl"]))
async def test_an_expired_output_link_fails_the_download(
    provider: RemoteProvider, fake: Any, case: AdapterCase, make_job: Callable[..., JobSpec], how: str
) -> None:
    final = await finished(provider, make_job())
    if how == "flag":
        fake.expire_outputs = True
    else:
        fake.outputs.ttl = 0.0
    with pytest.raises(PollFailed) as info:
        await read_all(provider, final.outputs[0])
    assert info.value.status_code == case.expired_status and not info.value.retryable


@pytest.mark.parametrize("name", providers())
async def test_download_faults_are_retryable(
    provider: RemoteProvider, fake: Any, make_job: Callable[..., JobSpec]
) -> None:
    final = await finished(provider, make_job())
    fake.faults.add("download", "503")
    with pytest.raises(PollFailed) as info:
        await read_all(provider, final.outputs[0])
    assert info.value.retryable and info.value.status_code == 503
    assert await read_all(provider, final.outputs[0]) == small_mp4()
