"""Small real media files made with PyAV for tests."""

from __future__ import annotations

import base64
import io
import wave

import av
import numpy as np


def png_bytes(rgb: tuple[int, int, int], width: int = 64, height: int = 64) -> bytes:
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[:, :] = rgb
    codec = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "rgb24"
    packets = codec.encode(av.VideoFrame.from_ndarray(img, format="rgb24")) + codec.encode(None)
    return b"".join(bytes(p) for p in packets)


def png_data_url(rgb: tuple[int, int, int], width: int = 64, height: int = 64) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(rgb, width, height)).decode()


def mp4_bytes(seconds: float, fps: int = 10, width: int = 64, height: int = 36) -> bytes:
    """An H.264 MP4 of ``seconds`` (whole frames at ``fps``), its frames a grey ramp."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(round(seconds * fps)):
            img = np.full((height, width, 3), (i * 7) % 256, dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode(None))
    return buf.getvalue()


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV of ``seconds`` of a quiet tone."""
    samples = (np.sin(np.arange(round(seconds * rate)) * 0.05) * 3000).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return buf.getvalue()
