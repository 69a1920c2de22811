"""Small real media files made with PyAV for tests."""

from __future__ import annotations

import base64

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
