"""What every adapter test needs: jobs, reference images, polling a job to its end, reading an output.

An adapter test module defines a ``fake`` fixture (a fresh fake per test) and its ``provider``
fixture from ``wiring.WIRINGS`` (``fake, provider = adapter_fixtures(WIRE)``); ``conftest.py`` serves
the fake on the module's shared server (``server``, whose address is ``root``).
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import av
import pytest

from providers.wiring import Wiring
from vidgate.gateway.ids import new_id
from vidgate.gateway.providers.base import (
    JobSpec,
    ReferenceImage,
    Rejected,
    RemoteProvider,
    Upstream,
    UpstreamOutput,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
FIRST = ReferenceImage(role="first_frame", url="https://example.test/first.png", data=PNG, mime_type="image/png")
LAST = ReferenceImage(role="last_frame", url="https://example.test/last.png", data=PNG, mime_type="image/png")


def job_maker(**defaults: Any) -> Callable[..., JobSpec]:
    """A module's ``make_job(**overrides)``: its defaults, then each call's overrides.

    Each job gets a fresh id unless the defaults or the call name one.
    """

    def make_job(**overrides: Any) -> JobSpec:
        return JobSpec(**{"job_id": new_id("vid"), **defaults, **overrides})

    return make_job


async def poll_until_done(provider: RemoteProvider, job: JobSpec, native_id: str, polls: int = 10) -> list[Upstream]:
    seen = []
    for _ in range(polls):
        answer = await provider.poll(job, native_id)
        seen.append(answer)
        if answer.status in ("completed", "failed", "cancelled"):
            return seen
    raise AssertionError(f"never finished: {seen}")


async def read_all(provider: Any, out: UpstreamOutput) -> bytes:
    return b"".join([chunk async for chunk in provider.open_output(out)])


async def run_to_mp4(provider: Any, job: JobSpec, native_id: str, frames: int = 24) -> None:
    """Poll a job the fake runs over three polls to its end and decode its output: ``frames`` frames."""
    seen = await poll_until_done(provider, job, native_id)
    assert [s.status for s in seen] == ["queued", "processing", "completed"]
    data = await read_all(provider, seen[-1].outputs[0])
    with av.open(io.BytesIO(data)) as container:
        assert sum(1 for _ in container.decode(video=0)) == frames


async def refused_before_a_call(provider: Any, fake: Any, job: JobSpec, needle: str) -> None:
    """``job`` fails over (a retryable ``unsupported_parameter`` naming ``needle``) before any call reaches ``fake``."""
    with pytest.raises(Rejected) as info:
        await provider.submit(job)
    assert info.value.retryable and info.value.code == "unsupported_parameter"
    assert needle in info.value.message
    assert fake.requests == []


def adapter_fixtures(wire: Wiring) -> tuple[Any, Any]:
    """A module's ``fake`` (fresh per test, done after three polls) and ``provider`` fixtures."""

    @pytest.fixture
    def fake() -> Any:
        return wire.fake(api_key=wire.key, polls_to_complete=3)

    @pytest.fixture
    async def provider(root: str) -> AsyncIterator[Any]:
        p = wire.adapter(wire.config(root, timeout_seconds=5))
        yield p
        await p.aclose()

    return fake, provider


def created(fake: Any) -> dict[str, Any]:
    """The one create call the fake was sent."""
    (rec,) = [r for r in fake.requests if r["method"] == "POST"]
    return rec  # type: ignore[no-any-return]
