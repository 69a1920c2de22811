"""What every adapter test needs: poll a job to its end, and read an output whole."""

from __future__ import annotations

from typing import Any

from vidgate.gateway.providers.base import JobSpec, RemoteProvider, Upstream, UpstreamOutput


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
