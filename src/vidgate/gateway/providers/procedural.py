"""The built-in ``vidgate`` provider: renders jobs in this process with the procedural renderer.

Rendering is CPU-bound and synchronous, so it runs on a small thread pool: the event loop only hands
work out and relays progress, and ``max_parallel_renders`` bounds how much CPU one worker spends.
Every operation is rendered for real: ``extend`` and ``edit`` on the ``source`` video, a first and a
last frame, reference images (their colours) and a reference sound (it moves the picture and is the
soundtrack).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vidgate.gateway.providers.base import JobSpec, LocalOutput, ProgressFn, ProviderConfig, ReferenceImage
from vidgate.gateway.render.procedural import RenderCancelled, RenderSpec, frame_total, render
from vidgate.gateway.render.sources import MediaDecodeError
from vidgate.gateway.render.spec import MAX_REFERENCES, Operation

PROGRESS_INTERVAL_SECONDS = 0.1


class ProceduralProvider:
    """Renders each sample of a job on the pool; cancelling stops every sample within a frame."""

    name = "vidgate"
    cancellable = True

    def __init__(self, config: ProviderConfig | None = None, max_parallel_renders: int | None = None) -> None:
        self.config = config or ProviderConfig(name=self.name, max_concurrency=2)
        workers = max_parallel_renders or self.config.max_concurrency
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vidgate-render")
        self._closing = threading.Event()  # aclose() stops every render, not just new ones

    async def run(
        self, job: JobSpec, workdir: Path, progress: ProgressFn, cancelled: Callable[[], bool]
    ) -> list[LocalOutput]:
        """Render ``job.sample_count`` MP4s into ``workdir``; raises ``RenderCancelled`` leaving no files."""
        specs = [_spec(job, index) for index in range(job.sample_count)]
        paths = [workdir / f"{job.job_id}-{index}.mp4" for index in range(job.sample_count)]
        loop = asyncio.get_running_loop()
        abort = threading.Event()  # set when this run fails: the other samples then stop too

        def should_stop() -> bool:
            return abort.is_set() or self._closing.is_set() or cancelled()

        # Samples differ only in their seed, so they all run as long (a source's length is read from it).
        per_sample = await asyncio.to_thread(frame_total, specs[0]) if specs[0].source is not None else None
        total = per_sample * len(specs) if per_sample is not None else sum(spec.frame_count for spec in specs)
        relay = _ProgressRelay(loop, total, progress)
        futures: list[asyncio.Future[None]] = []
        try:
            for spec, path in zip(specs, paths, strict=True):
                futures.append(
                    loop.run_in_executor(self._pool, _render_one, spec, path, relay.frame_done, should_stop, abort)
                )
            done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_EXCEPTION)
            for future in done:
                future.result()
        except BaseException:
            abort.set()
            try:
                if futures:
                    # Threads cannot be interrupted: wait until each has seen ``abort`` and let go of its file.
                    await asyncio.wait(futures)
                for future in futures:
                    # Their errors follow from the one being raised; fetch them so none is logged at GC.
                    future.exception()
            finally:
                for path in paths:
                    path.unlink(missing_ok=True)
            raise
        finally:
            await relay.close()
        await progress(100)
        return [LocalOutput(index=index, path=path) for index, path in enumerate(paths)]

    async def aclose(self) -> None:
        """Stop any render in flight and wait for the pool's threads to finish."""
        self._closing.set()
        await asyncio.to_thread(self._pool.shutdown, wait=True)


def _spec(job: JobSpec, index: int) -> RenderSpec:
    """Sample ``index`` of ``job``; a missing seed means 0, so equal requests give equal videos.

    A source video with no ``operation`` is extended, as video models take a video input to continue.
    """
    source = _one(job, "video", "source")
    operation: Operation = (
        "edit" if job.op == "edit" else "extend" if job.op == "extend" or source is not None else "generate"
    )
    if source is None and operation != "generate":
        raise MediaDecodeError(f"{operation} needs a source video (an input reference of type video, role source)")
    sound = _one(job, "audio", "reference")
    return RenderSpec(
        prompt=job.prompt,
        seed=(job.seed or 0) + index,
        width=job.width,
        height=job.height,
        duration=job.duration,
        audio=job.audio,
        first_frame=_data(_one(job, "image", "first_frame")),
        negative_prompt=job.negative_prompt,
        operation=operation,
        source=_data(source),
        last_frame=_data(_one(job, "image", "last_frame")),
        references=tuple(r.data for r in job.references if r.kind == "image" and r.role == "reference")[
            :MAX_REFERENCES
        ],
        sound=_data(sound),
    )


def _one(job: JobSpec, kind: str, role: str) -> ReferenceImage | None:
    return next((r for r in job.references if r.kind == kind and r.role == role), None)


def _data(ref: ReferenceImage | None) -> bytes | None:
    return None if ref is None else ref.data


def _render_one(
    spec: RenderSpec,
    path: Path,
    frame_done: Callable[[int, int], None],
    should_stop: Callable[[], bool],
    abort: threading.Event,
) -> None:
    """One sample, on a pool thread."""
    if should_stop():  # queued behind other renders and no longer wanted: don't even start
        raise RenderCancelled(f"render of {path.name} cancelled before it started")
    render(spec, path, on_frame=frame_done, should_stop=should_stop)
    if abort.is_set():
        # Finished just as the run failed, possibly after the loop removed the files: remove ours.
        path.unlink(missing_ok=True)


class _ProgressRelay:
    """Carries frame counts from render threads to ``progress`` on the loop, at most ~10 times/s.

    Threads only post when the whole percent changes; the loop side reports the latest value and
    then rests, so a slow ``progress`` callback never queues up stale values.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, total_frames: int, progress: ProgressFn) -> None:
        self._loop = loop
        self._total = max(1, total_frames)
        self._progress = progress
        self._lock = threading.Lock()
        self._frames = 0
        self._posted = 0
        self._latest = 0
        self._wake = asyncio.Event()  # a new percent, or closing
        self._closing = asyncio.Event()
        self._task = loop.create_task(self._pump())

    def frame_done(self, _done: int, _total: int) -> None:
        """Called on a render thread after each frame of any sample."""
        with self._lock:
            self._frames += 1
            # 100 is reported once every file is complete, not when the last frame is encoded.
            percent = min(99, self._frames * 100 // self._total)
            if percent == self._posted:
                return
            self._posted = percent
        self._loop.call_soon_threadsafe(self._post, percent)

    def _post(self, percent: int) -> None:
        self._latest = max(self._latest, percent)
        self._wake.set()

    async def _pump(self) -> None:
        reported = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._closing.is_set():
                return
            if self._latest > reported:
                reported = self._latest
                await self._progress(reported)
            # Rest before the next report, but not past the end of the run.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), PROGRESS_INTERVAL_SECONDS)

    async def close(self) -> None:
        self._closing.set()
        self._wake.set()
        await self._task
