"""The procedural provider renders off the event loop, reports progress, and cancels cleanly."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import AsyncIterator, Callable
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


class FrameGate:
    """A ``cancelled`` callable counted on the render threads, which call it before every frame.

    ``stop_from``: answer True from that call on. ``hold_at``: at that call, hold the render thread
    until ``release()`` (or let ``on_hold`` answer), so a test acts while a render is surely mid-way.
    """

    def __init__(
        self, stop_from: int | None = None, hold_at: int | None = None, on_hold: Callable[[], bool] | None = None
    ) -> None:
        self.stop_from, self.hold_at, self.on_hold = stop_from, hold_at, on_hold
        self.calls = 0
        self._lock = threading.Lock()
        self._held = threading.Event()
        self._released = threading.Event()

    def __call__(self) -> bool:
        with self._lock:
            self.calls += 1
            call = self.calls
        if call == self.hold_at:
            self._held.set()
            if self.on_hold is not None:
                return self.on_hold()
            assert self._released.wait(timeout=60), "the test never released the render"
        return self.stop_from is not None and call >= self.stop_from

    async def reached(self) -> None:
        assert await asyncio.to_thread(self._held.wait, 60), "the render never reached the gate"

    def release(self) -> None:
        self._released.set()


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
    # Counted on the render threads, so the cancel lands mid-render however fast the machine is.
    with pytest.raises(RenderCancelled):
        await provider.run(job(sample_count=3, duration=4), tmp_path, progress, FrameGate(stop_from=5))
    assert list(tmp_path.iterdir()) == []
    assert 100 not in progress.values
    # Every sample's failure was collected: none is left for asyncio to log when it is collected.
    gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


async def test_cancelling_the_run_task_stops_rendering_and_cleans_up(
    tmp_path: Path, provider: ProceduralProvider
) -> None:
    gate = FrameGate(hold_at=5)
    running = asyncio.create_task(provider.run(job(sample_count=2, duration=4), tmp_path, Progress(), gate))
    await gate.reached()
    running.cancel()
    await asyncio.sleep(0)  # the task takes the cancel and tells the render threads to stop
    gate.release()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert list(tmp_path.iterdir()) == []


async def test_aclose_stops_renders_in_flight(tmp_path: Path) -> None:
    provider = ProceduralProvider()
    gate = FrameGate(hold_at=5)
    running = asyncio.create_task(provider.run(job(duration=4), tmp_path, Progress(), gate))
    await gate.reached()
    closing = asyncio.create_task(provider.aclose())
    await asyncio.sleep(0)  # aclose has flagged every render to stop
    gate.release()
    await closing
    with pytest.raises(RenderCancelled):
        await running
    assert list(tmp_path.iterdir()) == []


async def test_render_does_not_block_the_event_loop(tmp_path: Path, provider: ProceduralProvider) -> None:
    """Mid-render, the render thread waits for the loop to answer: a render on the loop would deadlock."""
    loop = asyncio.get_running_loop()
    answered = threading.Event()

    def ask_the_loop() -> bool:
        loop.call_soon_threadsafe(answered.set)
        return not answered.wait(timeout=60)

    progress = Progress()
    started = time.perf_counter()
    gate = FrameGate(hold_at=10, on_hold=ask_the_loop)
    await provider.run(job(width=1280, height=720, duration=3), tmp_path, progress, gate)
    elapsed = time.perf_counter() - started
    assert answered.is_set()
    # Throttled to about ten reports a second, plus the final 100.
    assert len(progress.values) <= 10 * elapsed + 2
