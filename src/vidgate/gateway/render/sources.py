"""Input media decoded with PyAV: a source video streamed frame by frame at the output's size and
rate, and a sound as stereo samples at the output's audio rate.

A source is never held whole: frames are decoded, scaled and handed on one at a time, so a
20-second 1080p source costs a few frames of memory. Sizes and lengths are bounded before
FFmpeg decodes anything big, whatever the file declares.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from typing import Final

import av
import numpy as np

from vidgate.gateway.render.image import ImageDecodeError
from vidgate.gateway.render.imagesize import MAX_PIXELS, MAX_SIDE

MAX_SOURCE_SECONDS: Final = 20  # what the model takes; a longer source is cut to its first 20 s
MAX_SOUND_SECONDS: Final = 60
_FFMPEG_OPTIONS: Final = {"max_pixels": str(MAX_PIXELS + MAX_SIDE * 64)}

Planes = tuple[np.ndarray, np.ndarray, np.ndarray]  # uint8 Y, Cb, Cr of one yuv420p picture


class MediaDecodeError(ImageDecodeError):
    """An input video or sound cannot be decoded; like a bad image, no retry can fix it."""


class SourceVideo:
    """A source video opened for reading: its length at the output's rate, and its frames."""

    def __init__(self, data: bytes, fps: int) -> None:
        try:
            self._container = av.open(io.BytesIO(data), "r", options=_FFMPEG_OPTIONS)
        except av.error.FFmpegError as exc:
            raise MediaDecodeError(f"the source video cannot be decoded: {exc}") from exc
        try:
            if not self._container.streams.video:
                raise MediaDecodeError("the source video has no video stream")
            self._stream = self._container.streams.video[0]
            ctx = self._stream.codec_context
            if ctx.width <= 0 or ctx.height <= 0 or ctx.width > MAX_SIDE or ctx.height > MAX_SIDE:
                raise MediaDecodeError(
                    f"the source video is {ctx.width}x{ctx.height}; videos may be at most {MAX_SIDE} pixels a side"
                )
            ctx.options = dict(_FFMPEG_OPTIONS)
            seconds = min(self._seconds(), MAX_SOURCE_SECONDS)
        except BaseException:
            self._container.close()
            raise
        self.fps = fps
        self.frame_count = max(1, round(seconds * fps))

    def _seconds(self) -> float:
        """How long the picture lasts, from the stream's own length where the file gives it."""
        stream, container = self._stream, self._container
        if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
            return float(stream.duration * stream.time_base)
        if stream.frames and stream.average_rate:
            return float(stream.frames / stream.average_rate)
        if container.duration is not None and container.duration > 0:
            return container.duration / av.time_base
        return self._scanned_seconds()

    def _scanned_seconds(self) -> float:
        """The end of the last picture, read from packet headers alone (a live-recorded WebM says
        nowhere how long it is); demuxing stops past the longest source that is used."""
        stream = self._stream
        if stream.time_base is None:
            raise MediaDecodeError("the source video does not say how long it is")
        end = 0.0
        for packet in self._container.demux(stream):
            if packet.pts is not None:
                end = max(end, float((packet.pts + (packet.duration or 0)) * stream.time_base))
            if end > MAX_SOURCE_SECONDS:
                break
        self._container.seek(0)
        if end <= 0:
            raise MediaDecodeError("the source video does not say how long it is")
        return end

    def frames(self, width: int, height: int) -> Iterator[Planes]:
        """Exactly ``frame_count`` pictures covering ``width`` x ``height``, one per output frame.

        Output frame ``i`` shows the source frame on screen at ``i / fps``; a source that ends early
        holds its last picture. A repeated picture is the same arrays: callers must not write to them.
        """
        decoded = self._decoded()
        current = next(decoded, None)
        if current is None:
            raise MediaDecodeError("the source video has no decodable frame")
        start, upcoming = current[0], next(decoded, None)
        shown: Planes | None = None
        tolerance = 0.25 / self.fps  # timestamps rounded by the container
        for index in range(self.frame_count):
            at = start + index / self.fps + tolerance
            moved = False
            while upcoming is not None and upcoming[0] <= at:
                current, upcoming, moved = upcoming, next(decoded, None), True
            if shown is None or moved:
                shown = _cover(current[1], width, height)
            yield shown

    def _decoded(self) -> Iterator[tuple[float, av.VideoFrame]]:
        rate = float(self._stream.average_rate or self.fps)
        try:
            for count, frame in enumerate(self._container.decode(self._stream)):
                yield (frame.time if frame.time is not None else count / rate), frame
        except av.error.FFmpegError as exc:
            raise MediaDecodeError(f"the source video cannot be decoded: {exc}") from exc

    def close(self) -> None:
        self._container.close()


def _cover(frame: av.VideoFrame, width: int, height: int) -> Planes:
    """``frame`` scaled to cover ``width`` x ``height`` and centre-cropped, as BT.709 limited-range planes."""
    scale = max(width / frame.width, height / frame.height)
    scaled_w = max(width, 2 * math.ceil(frame.width * scale / 2))
    scaled_h = max(height, 2 * math.ceil(frame.height * scale / 2))
    yuv = frame.reformat(
        width=scaled_w,
        height=scaled_h,
        format="yuv420p",
        dst_colorspace="ITU709",
        dst_color_range="MPEG",
        interpolation="AREA",
    ).to_ndarray()
    flat = yuv.reshape(-1)
    quarter = scaled_w * scaled_h // 4
    luma = flat[: scaled_w * scaled_h].reshape(scaled_h, scaled_w)
    cb = flat[scaled_w * scaled_h : scaled_w * scaled_h + quarter].reshape(scaled_h // 2, scaled_w // 2)
    cr = flat[scaled_w * scaled_h + quarter :].reshape(scaled_h // 2, scaled_w // 2)
    left, top = (scaled_w - width) // 4 * 2, (scaled_h - height) // 4 * 2  # even, so chroma lines up
    return (
        np.ascontiguousarray(luma[top : top + height, left : left + width]),
        np.ascontiguousarray(cb[top // 2 : (top + height) // 2, left // 2 : (left + width) // 2]),
        np.ascontiguousarray(cr[top // 2 : (top + height) // 2, left // 2 : (left + width) // 2]),
    )


def decode_sound(data: bytes, rate: int, seconds: float, what: str = "the reference audio") -> np.ndarray:
    """The first ``seconds`` of ``data``'s first audio stream as ``(2, n)`` float32 stereo at ``rate``.

    A shorter sound gives fewer samples (the caller pads); a file with no audio stream gives none, so a
    source video without sound simply has none.
    """
    wanted = round(min(seconds, MAX_SOUND_SECONDS) * rate)
    try:
        with av.open(io.BytesIO(data), "r") as container:
            if not container.streams.audio:
                return np.zeros((2, 0), np.float32)
            resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
            blocks: list[np.ndarray] = []
            have = 0
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    blocks.append(out.to_ndarray())
                    have += out.samples
                if have >= wanted:
                    break
            else:
                blocks += [out.to_ndarray() for out in resampler.resample(None)]
    except av.error.FFmpegError as exc:
        raise MediaDecodeError(f"{what} cannot be decoded: {exc}") from exc
    if not blocks:
        return np.zeros((2, 0), np.float32)
    return np.ascontiguousarray(np.concatenate(blocks, axis=1)[:, :wanted], dtype=np.float32)
