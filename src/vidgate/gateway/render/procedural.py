"""The built-in renderer: a scene drawn from the prompt's words, encoded as a real H.264 (and AAC) MP4.

It lets the gateway serve genuine video with no GPU and no upstream. The same spec always gives the
same bytes, so tests, caches and retries can rely on it. The scene is painted once per render and
each frame is a few copies and blends of prepared parts, written straight into yuv420p planes, so
x264 rather than Python sets the pace; frames are streamed to the encoder, never held.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Final, cast

import av
import numpy as np

from vidgate.gateway.render.audio import AUDIO_RATE
from vidgate.gateway.render.operations import Plan, frame_total
from vidgate.gateway.render.probe import MediaInfo, probe
from vidgate.gateway.render.spec import RenderSpec

__all__ = ["AUDIO_RATE", "X264_OPTIONS", "RenderCancelled", "RenderSpec", "frame_total", "frames", "render"]


def _x264_options() -> dict[str, str]:
    """The encoder settings; shared with bench/render.py so its ffmpeg baseline encodes identically.

    ``threads`` is pinned because x264's output depends on its thread count ("auto" would vary by
    host). On CPUs with AVX-512, x264's AVX-512 kernels read memory it never initialised (its
    lookahead's lowres planes): the bytes then depend on what the heap held, which changes with load
    and with other threads. Capping x264 at AVX2 there gives the same bytes on every run, at the
    same speed; other CPUs keep x264's own detection, which never enables those kernels.
    """
    options = {"preset": "veryfast", "crf": "23", "threads": "4"}
    if _has_avx512():
        options["x264-params"] = "asm=AVX2"
    return options


def _has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            return any(line.startswith("flags") and " avx512f" in line for line in cpuinfo)
    except OSError:
        return False


X264_OPTIONS: Final[dict[str, str]] = _x264_options()
_AUDIO_BITRATE: Final = 128_000


class RenderCancelled(Exception):
    """``should_stop`` asked the render to stop; the partial file has been removed."""


def render(
    spec: RenderSpec,
    out_path: Path,
    on_frame: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> MediaInfo:
    """Encode ``spec`` to ``out_path`` as a faststart MP4 and describe the result.

    ``on_frame(done, total)`` follows each frame handed to the encoder; ``should_stop`` is checked
    before each frame. Whatever goes wrong, no partial file is left behind.
    """
    try:
        with closing(Plan(spec)) as plan:
            _encode(plan, spec, out_path, on_frame, should_stop)
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise
    return probe(out_path)


def _encode(
    plan: Plan,
    spec: RenderSpec,
    out_path: Path,
    on_frame: Callable[[int, int], None] | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    total = plan.frame_count
    sound = plan.sound
    # faststart puts ``moov`` first so players can start before the download ends.
    with (
        av.open(str(out_path), "w", format="mp4", options={"movflags": "+faststart"}) as container,
        closing(_ahead(_pictures(plan, spec.width, spec.height))) as pictures,  # leaving stops the drawing
    ):
        video = _add_video(container, spec)
        audio = _add_audio(container) if sound is not None else None
        for index, frame in enumerate(pictures):
            if should_stop is not None and should_stop():
                raise RenderCancelled(f"render of {out_path.name} cancelled at frame {index}/{total}")
            container.mux(video.encode(frame))
            if audio is not None and sound is not None:
                # Interleave by hand: audio up to the end of this frame, so the muxer buffers little.
                start = index * AUDIO_RATE // spec.fps
                end = (index + 1) * AUDIO_RATE // spec.fps
                container.mux(audio.encode(sound.frame(start, end - start)))
            if on_frame is not None:
                on_frame(index + 1, total)
        container.mux(video.encode(None))
        if audio is not None:
            container.mux(audio.encode(None))


def frames(spec: RenderSpec) -> Iterator[av.VideoFrame]:
    """Yield each picture of ``spec`` as a yuv420p ``VideoFrame`` with its ``pts`` set."""
    with closing(Plan(spec)) as plan:
        yield from _pictures(plan, spec.width, spec.height)


def _pictures(plan: Plan, width: int, height: int) -> Iterator[av.VideoFrame]:
    """Each picture of ``plan`` as a yuv420p ``VideoFrame`` with its ``pts`` set.

    Drawing straight into frames FFmpeg allocated is what keeps Python cheap next to x264: a numpy
    array would cost a conversion per frame, and the encoder takes these buffers by reference.
    """
    for index in range(plan.frame_count):
        frame = av.VideoFrame(width, height, "yuv420p")
        frame.pts = index
        plan.draw(index, [_plane_view(plane) for plane in frame.planes])
        yield frame


_DONE: Final = object()


def _ahead(pictures: Iterator[av.VideoFrame], depth: int = 2) -> Generator[av.VideoFrame, None, None]:
    """``pictures``, drawn up to ``depth`` frames ahead on another thread while x264 encodes.

    The encoder call waits on x264's own threads; drawing the next frames meanwhile keeps both
    cores busy. Frames are drawn in the same order by the same code, so the bytes do not change.
    Leaving early (cancel, error) stops the drawing thread before this returns.
    """
    ready: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def hand_over(item: object) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def draw() -> None:
        try:
            for picture in pictures:
                if stop.is_set():
                    return
                hand_over(picture)
            hand_over(_DONE)
        except BaseException as error:  # raised again on the encoding thread
            hand_over(error)

    thread = threading.Thread(target=draw, name="vidgate-draw", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield cast(av.VideoFrame, item)
    finally:
        stop.set()
        thread.join()


def _plane_view(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """A writable ``(height, width)`` view of a plane, skipping the alignment padding of each row."""
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


def _add_video(container: av.container.OutputContainer, spec: RenderSpec) -> av.VideoStream:
    stream = container.add_stream("libx264", rate=spec.fps, options=X264_OPTIONS)
    stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
    ctx = stream.codec_context
    # PyAV defaults to slice threads; frame threads (what the ffmpeg CLI uses) encode faster.
    ctx.thread_type = "FRAME"
    # Tag BT.709 limited range: the matrix the painter and first-frame conversion use.
    ctx.colorspace = ctx.color_primaries = ctx.color_trc = 1  # AVCOL_*_BT709
    ctx.color_range = 1  # AVCOL_RANGE_MPEG
    return stream


def _add_audio(container: av.container.OutputContainer) -> av.AudioStream:
    return container.add_stream("aac", rate=AUDIO_RATE, layout="stereo", bit_rate=_AUDIO_BITRATE)
