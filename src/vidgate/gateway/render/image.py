"""Decode a reference image with PyAV, so first-frame conditioning needs no imaging library.

The picture's size is read from its header and checked before FFmpeg sees it, FFmpeg is held to
the same pixel budget (``max_pixels``) in case a file declares one size and decodes another, and
a picture far from the canvas' shape is cropped before it is scaled, so memory stays bounded by
the limits in ``imagesize`` and the canvas, whatever the file says.
"""

from __future__ import annotations

import io

import av
import numpy as np

from vidgate.gateway.render.imagesize import MAX_PIXELS, MAX_SIDE, oversize, sniff

DEMUXERS = {"png": "png_pipe", "jpeg": "jpeg_pipe", "webp": "webp_pipe", "gif": "gif"}
# FFmpeg counts rows padded to its stride alignment: leave room for that above the header limit.
_FFMPEG_OPTIONS = {"max_pixels": str(MAX_PIXELS + MAX_SIDE * 64)}


class ImageDecodeError(ValueError):
    """The bytes are not an image PyAV can decode, or one too large to decode."""


def decode_image(data: bytes, width: int, height: int) -> np.ndarray:
    """Return ``data`` as an RGB ``(height, width, 3)`` uint8 array, scaled to cover and centre-cropped.

    Covering (rather than letterboxing) matches what video models do with a first frame of another
    aspect ratio: the picture fills the canvas and the overhanging edges are cut.
    """
    info = sniff(data)
    if info is None:
        raise ImageDecodeError("cannot decode image: it is not a PNG, JPEG, WebP or GIF image")
    if (why := oversize(info)) is not None:
        raise ImageDecodeError(why)
    try:
        with av.open(io.BytesIO(data), "r", format=DEMUXERS[info.format], options=_FFMPEG_OPTIONS) as container:
            container.streams.video[0].codec_context.options = dict(_FFMPEG_OPTIONS)
            frame = next(container.decode(video=0), None)
    except (av.error.FFmpegError, IndexError) as exc:
        raise ImageDecodeError(f"cannot decode image: {exc}") from exc
    if frame is None or frame.width <= 0 or frame.height <= 0:
        raise ImageDecodeError("cannot decode image: no picture in the data")
    scale = max(width / frame.width, height / frame.height)
    scaled_w = max(width, round(frame.width * scale))
    scaled_h = max(height, round(frame.height * scale))
    if scaled_w * scaled_h > 4 * width * height:
        return _crop_then_scale(frame, width, height, scale)
    rgb = frame.reformat(width=scaled_w, height=scaled_h, format="rgb24", interpolation="AREA").to_ndarray()
    left = (scaled_w - width) // 2
    top = (scaled_h - height) // 2
    return np.ascontiguousarray(rgb[top : top + height, left : left + width])


def _crop_then_scale(frame: av.VideoFrame, width: int, height: int, scale: float) -> np.ndarray:
    """A picture of a very different shape (1x8000 onto 1280x720 would scale to 1280x10 million):
    cut the part that shows first, then scale only that."""
    crop_w = min(frame.width, max(1, round(width / scale)))
    crop_h = min(frame.height, max(1, round(height / scale)))
    left = (frame.width - crop_w) // 2
    top = (frame.height - crop_h) // 2
    rgb = frame.reformat(format="rgb24").to_ndarray()[top : top + crop_h, left : left + crop_w]
    part = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
    return part.reformat(width=width, height=height, format="rgb24", interpolation="AREA").to_ndarray()
