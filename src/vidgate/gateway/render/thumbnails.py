"""A poster frame and a spritesheet for a stored video, decoded and encoded with PyAV alone.

Players show the poster before playback and the spritesheet's tiles over the seek bar. Both come
from one decoding pass: the poster is the first frame that is not black from about a tenth of the
way in, the spritesheet up to ``MAX_TILES`` evenly spaced frames in a grid, row by row. The poster
is WebP and the sheet JPEG, the formats OpenAI's Videos API serves for the same variants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import numpy as np

POSTER_AT = 0.1  # of the duration
BLACK_LUMA = 24.0  # mean luma at or below this (limited range black is 16) is a black frame
MAX_COLUMNS = MAX_ROWS = 10
MAX_TILES = MAX_COLUMNS * MAX_ROWS
TILE_WIDTH = 160
POSTER_MIME, SHEET_MIME = "image/webp", "image/jpeg"


class ThumbnailError(ValueError):
    """The video gave no frame to make the images from, or an image could not be encoded."""


@dataclass(frozen=True, slots=True)
class Grid:
    """A spritesheet's layout: ``tiles`` frames of ``tile_width`` x ``tile_height``, row by row."""

    tiles: int
    columns: int
    rows: int
    tile_width: int
    tile_height: int


@dataclass(frozen=True, slots=True)
class Image:
    """One image written to ``path``: the output's ``kind`` of still (its name in keys and URLs)."""

    kind: str  # "thumbnail" or "spritesheet"
    extension: str
    path: Path
    mime_type: str
    width: int
    height: int
    grid: Grid | None = None


@dataclass(frozen=True, slots=True)
class Previews:
    poster: Image
    sheet: Image


def _even(n: float) -> int:
    return max(2, round(n / 2) * 2)


def _is_black(frame: av.VideoFrame) -> bool:
    luma = frame.to_ndarray(format="gray")[::8, ::8]
    return float(luma.mean()) <= BLACK_LUMA


def _encode(frame: av.VideoFrame, codec: str, pix_fmt: str, options: dict[str, str]) -> bytes:
    ctx = cast(av.VideoCodecContext, av.CodecContext.create(codec, "w"))
    ctx.width, ctx.height, ctx.pix_fmt = frame.width, frame.height, pix_fmt
    ctx.time_base = Fraction(1, 25)
    ctx.options = options
    frame = frame.reformat(format=pix_fmt)
    frame.pts = 0
    data = b"".join(bytes(p) for p in [*ctx.encode(frame), *ctx.encode(None)])
    if not data:
        raise ThumbnailError(f"the {codec} encoder wrote nothing")
    return data


def _picks(frames: int, tiles: int) -> list[int]:
    """The frames (by decoding order) the tiles show: the middle one of each of ``tiles`` equal runs."""
    return [int((i + 0.5) * frames / tiles) for i in range(tiles)]


def make_previews(video: Path, *, frames: int) -> Previews:
    """Write the poster and the spritesheet of ``video`` beside it; raises on any failure.

    ``frames`` is how many frames probing the file found; the grid holds ``min(frames, 100)``
    tiles, fewer when the file decodes fewer frames than its headers promise.
    """
    frames = max(1, frames)
    picks = _picks(frames, min(MAX_TILES, frames))
    poster_at = int(frames * POSTER_AT)
    poster: av.VideoFrame | None = None
    fallback: av.VideoFrame | None = None  # the frame at the poster's place, should every later one be black
    tiles: list[np.ndarray] = []
    tile_size: tuple[int, int] | None = None
    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for k, frame in enumerate(container.decode(stream)):
                if tile_size is None:
                    tile_size = (TILE_WIDTH, _even(TILE_WIDTH * frame.height / frame.width))
                if poster is None and k >= poster_at:
                    if fallback is None:
                        fallback = frame
                    if not _is_black(frame):
                        poster = frame
                if len(tiles) < len(picks) and k >= picks[len(tiles)]:
                    w, h = tile_size
                    tiles.append(frame.reformat(width=w, height=h, format="rgb24").to_ndarray())
                if poster is not None and len(tiles) >= len(picks):
                    break
    except av.error.FFmpegError as exc:
        raise ThumbnailError(f"{video.name}: {exc}") from exc
    poster = poster or fallback
    if poster is None or not tiles or tile_size is None:
        raise ThumbnailError(f"{video.name}: no frame decoded")
    poster_path = video.with_name(f"{video.stem}.thumbnail.webp")
    sheet_path = video.with_name(f"{video.stem}.spritesheet.jpg")
    try:
        poster_path.write_bytes(_encode(poster, "libwebp", "yuv420p", {"quality": "80"}))
        sheet, columns, rows = _grid(tiles, *tile_size)
        sheet_frame = av.VideoFrame.from_ndarray(sheet, format="rgb24")
        sheet_path.write_bytes(_encode(sheet_frame, "mjpeg", "yuvj420p", {"qmin": "2", "qmax": "6"}))
    except BaseException as exc:
        poster_path.unlink(missing_ok=True)
        sheet_path.unlink(missing_ok=True)
        if isinstance(exc, av.error.FFmpegError):
            raise ThumbnailError(f"{video.name}: {exc}") from exc
        raise
    grid = Grid(len(tiles), columns, rows, *tile_size)
    return Previews(
        poster=Image("thumbnail", "webp", poster_path, POSTER_MIME, poster.width, poster.height),
        sheet=Image("spritesheet", "jpg", sheet_path, SHEET_MIME, sheet.shape[1], sheet.shape[0], grid),
    )


def _grid(tiles: list[np.ndarray], width: int, height: int) -> tuple[np.ndarray, int, int]:
    """The tiles row by row, ``MAX_COLUMNS`` to a row at most; a last row's gap stays black."""
    columns = min(MAX_COLUMNS, len(tiles))
    rows = math.ceil(len(tiles) / columns)
    sheet = np.zeros((rows * height, columns * width, 3), dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet[r * height : (r + 1) * height, c * width : (c + 1) * width] = tile
    return sheet, columns, rows
