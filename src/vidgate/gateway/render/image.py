"""Decode a reference image with PyAV, so first-frame conditioning needs no imaging library."""

from __future__ import annotations

import io

import av
import numpy as np


class ImageDecodeError(ValueError):
    """The bytes are not an image PyAV can decode."""


def decode_image(data: bytes, width: int, height: int) -> np.ndarray:
    """Return ``data`` as an RGB ``(height, width, 3)`` uint8 array, scaled to cover and centre-cropped.

    Covering (rather than letterboxing) matches what video models do with a first frame of another
    aspect ratio: the picture fills the canvas and the overhanging edges are cut.
    """
    try:
        with av.open(io.BytesIO(data)) as container:
            frame = next(container.decode(video=0), None)
    except (av.error.FFmpegError, IndexError) as exc:
        raise ImageDecodeError(f"cannot decode image: {exc}") from exc
    if frame is None or frame.width <= 0 or frame.height <= 0:
        raise ImageDecodeError("cannot decode image: no picture in the data")
    scale = max(width / frame.width, height / frame.height)
    scaled_w = max(width, round(frame.width * scale))
    scaled_h = max(height, round(frame.height * scale))
    rgb = frame.reformat(width=scaled_w, height=scaled_h, format="rgb24", interpolation="AREA").to_ndarray()
    left = (scaled_w - width) // 2
    top = (scaled_h - height) // 2
    return np.ascontiguousarray(rgb[top : top + height, left : left + width])
