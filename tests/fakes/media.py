"""Real input media for operation tests, and the probe fakes use to refuse media the way upstreams do.

``mp4`` and ``wav`` make small real files with PyAV; ``probe`` decodes what a fake was sent (bytes,
or a ``data:`` URI) and says what it is, so a fake can answer "too short" or "not a video" from the
media itself rather than from what the request claims.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import av
import numpy as np


@dataclass(frozen=True)
class Probe:
    """What a media file holds: its kind (``video`` or ``audio``), length and, for a video, its frames."""

    kind: str
    seconds: float
    frames: int = 0
    width: int = 0
    height: int = 0
    fps: float = 0.0


def mp4(seconds: float = 4.0, fps: int = 24, width: int = 64, height: int = 36) -> bytes:
    """A real H.264 MP4 of ``seconds`` (a grey ramp, one shade per frame)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(round(seconds * fps)):
            img = np.full((height, width, 3), (i * 7) % 255, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()


def wav(seconds: float = 3.0, rate: int = 16000) -> bytes:
    """A real 16-bit mono WAV of ``seconds`` of a 440 Hz tone."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=rate, layout="mono")
        t = np.arange(round(seconds * rate)) / rate
        samples = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def decode_data_uri(uri: str) -> tuple[str, bytes] | None:
    """The MIME type and bytes of a base64 ``data:`` URI, or None when it is not one."""
    if not uri.startswith("data:") or ";base64," not in uri:
        return None
    head, _, payload = uri.partition(";base64,")
    try:
        return head[5:], base64.b64decode(payload, validate=True)
    except ValueError:
        return None


def probe(data: bytes) -> Probe | None:
    """What ``data`` holds, or None when it does not decode as video or audio."""
    try:
        with av.open(io.BytesIO(data)) as container:
            if container.streams.video:
                stream = container.streams.video[0]
                frames = sum(1 for _ in container.decode(video=0))
                fps = float(stream.average_rate or 0)
                return Probe("video", frames / fps if fps else 0.0, frames, stream.width, stream.height, fps)
            if container.streams.audio:
                samples, rate = 0, container.streams.audio[0].rate
                for frame in container.decode(audio=0):
                    samples += frame.samples
                return Probe("audio", samples / rate if rate else 0.0)
    except (av.FFmpegError, ValueError):
        return None
    return None
