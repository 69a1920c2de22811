"""The procedural provider renders off the event loop, reports progress, and cancels cleanly."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from helpers.media import png_bytes

from vidgate.gateway.providers.base import JobSpec, LocalProvider, ReferenceImage
from vidgate.gateway.providers.procedural import ProceduralProvider
from vidgate.gateway.render.procedural import RenderCancelled


def job(**overrides: Any) -> JobSpec:
    defaults: dict[str, Any] = {
        "job_id": "job_1",
        "model": "vidgate/procedural",
        "provider_model": "procedural-v1",
        "prompt": "a paper boat on a rainy street",
        "duration": 1,
        "width": 160,
        "height": 96,
    }
    return JobSpec(**(defaults | overrides))


class Progress:
    """Records the percentages ``run`` reports."""

    def __init__(self) -> None:
        self.values: list[int] = []

    async def __call__(self, percent: int) -> None:
        self.values.append(percent)


@pytest.fixture
async def provider() -> AsyncIterator[ProceduralProvider]:
    provider = ProceduralProvider()
    yield provider
    await provider.aclose()


async def test_run_renders_each_sample_with_its_own_seed(tmp_path: Path, provider: ProceduralProvider) -> None:
    assert isinstance(provider, LocalProvider)
    progress = Progress()
    outputs = await provider.run(job(sample_count=2, seed=5, audio=True), tmp_path, progress, lambda: False)
    assert [o.index for o in outputs] == [0, 1]
    assert [o.path.name for o in outputs] == ["job_1-0.mp4", "job_1-1.mp4"]
    assert all(o.mime_type == "video/mp4" for o in outputs)
    assert outputs[0].path.read_bytes() != outputs[1].path.read_bytes()
    for output in outputs:
        with av.open(str(output.path)) as container:
            assert container.streams.video[0].frames == 24
            assert container.streams.audio
    assert progress.values == sorted(set(progress.values))
    assert progress.values[-1] == 100
    assert progress.values.count(100) == 1
    # Sample i is seed + i: the second sample is what a single render with the next seed gives.
    (alone,) = await provider.run(job(job_id="job_2", seed=6, audio=True), tmp_path, Progress(), lambda: False)
    assert alone.path.read_bytes() == outputs[1].path.read_bytes()


async def test_missing_seed_is_deterministic(tmp_path: Path, provider: ProceduralProvider) -> None:
    (first,) = await provider.run(job(job_id="a"), tmp_path, Progress(), lambda: False)
    (second,) = await provider.run(job(job_id="b"), tmp_path, Progress(), lambda: False)
    assert first.path.read_bytes() == second.path.read_bytes()


async def test_first_frame_reference_opens_the_video(tmp_path: Path, provider: ProceduralProvider) -> None:
    colour = (30, 160, 90)
    ref = ReferenceImage(
        role="first_frame", url="https://example.test/a.png", data=png_bytes(colour), mime_type="image/png"
    )
    (output,) = await provider.run(job(references=(ref,)), tmp_path, Progress(), lambda: False)
    with av.open(str(output.path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24")
    assert np.abs(frame.reshape(-1, 3).mean(axis=0) - colour).max() < 4


async def test_cancel_stops_every_sample_and_leaves_no_files(
    tmp_path: Path, provider: ProceduralProvider, caplog: pytest.LogCaptureFixture
) -> None:
    progress = Progress()
    with pytest.raises(RenderCancelled):
        await provider.run(
            job(sample_count=3, duration=4),
            tmp_path,
            progress,
            lambda: bool(progress.values) and progress.values[-1] >= 5,
        )
    assert list(tmp_path.iterdir()) == []
    assert 100 not in progress.values
    # Every sample's failure was collected: none is left for asyncio to log when it is collected.
    gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def test_cancelling_the_run_task_stops_rendering_and_cleans_up(
    tmp_path: Path, provider: ProceduralProvider
) -> None:
    progress = Progress()
    running = asyncio.create_task(provider.run(job(sample_count=2, duration=4), tmp_path, progress, lambda: False))
    while not progress.values:
        await asyncio.sleep(0.005)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert list(tmp_path.iterdir()) == []


async def test_aclose_stops_renders_in_flight(tmp_path: Path) -> None:
    provider = ProceduralProvider()
    progress = Progress()
    running = asyncio.create_task(provider.run(job(duration=4), tmp_path, progress, lambda: False))
    while not progress.values:
        await asyncio.sleep(0.005)
    await provider.aclose()
    with pytest.raises(RenderCancelled):
        await running
    assert list(tmp_path.iterdir()) == []


async def test_render_does_not_block_the_event_loop(tmp_path: Path, provider: ProceduralProvider) -> None:
    lateness: list[float] = []
    progress = Progress()
    started = time.perf_counter()
    rendering = asyncio.create_task(
        provider.run(job(width=1280, height=720, duration=3), tmp_path, progress, lambda: False)
    )

    async def tick() -> None:
        while not rendering.done():
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            lateness.append(time.perf_counter() - before - 0.01)

    await asyncio.gather(rendering, tick())
    elapsed = time.perf_counter() - started
    print(f"event loop lateness over {len(lateness)} ticks: max {max(lateness) * 1000:.1f} ms")
    assert len(lateness) > 20
    assert max(lateness) < 0.1
    # Throttled to about ten reports a second, plus the final 100.
    assert len(progress.values) <= 10 * elapsed + 2
