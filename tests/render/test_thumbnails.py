"""The poster frame and spritesheet made from a real MP4, and storing an output when they cannot be made."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import msgspec
import numpy as np
import pytest

from vidgate.gateway.render import thumbnails
from vidgate.gateway.render.thumbnails import ThumbnailError, make_previews
from vidgate.gateway.storage.blobs import BlobStore
from vidgate.gateway.worker import outputs


def _mp4(path: Path, width: int, height: int, frames: int, *, black: int = 0) -> Path:
    """``frames`` frames at 24 fps, the first ``black`` of them black, each after a grey of its own."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=24)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            img = np.zeros((height, width, 3), np.uint8)
            if i >= black:
                img[:] = 60 + (i * 7) % 180
            for packet in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="gray")


def test_poster_skips_black_frames_and_sheet_holds_every_frame(tmp_path: Path) -> None:
    video = _mp4(tmp_path / "a.mp4", 320, 180, 24, black=10)
    made = make_previews(video, frames=24)
    assert made.poster.mime_type == "image/webp" and (made.poster.width, made.poster.height) == (320, 180)
    assert _decode(made.poster.path).mean() > 40  # not the black frame at 10%
    grid = made.sheet.grid
    assert grid is not None and (grid.tiles, grid.columns, grid.rows) == (24, 10, 3)
    assert (grid.tile_width, grid.tile_height) == (160, 90)
    sheet = _decode(made.sheet.path)
    assert sheet.shape == (270, 1600) == (made.sheet.height, made.sheet.width)
    assert sheet[:90, :160].mean() < 30 and sheet[90:180, :160].mean() > 40  # tile 0 black, tile 10 not
    assert sheet[180:, 640:].mean() < 5  # the last row's gap


def test_a_long_video_gives_a_full_grid_of_evenly_spaced_frames(tmp_path: Path) -> None:
    video = _mp4(tmp_path / "b.mp4", 256, 144, 250)
    grid = make_previews(video, frames=250).sheet.grid
    assert grid is not None and (grid.tiles, grid.columns, grid.rows) == (100, 10, 10)


def test_an_all_black_video_still_gets_a_poster(tmp_path: Path) -> None:
    video = _mp4(tmp_path / "c.mp4", 64, 64, 6, black=6)
    made = make_previews(video, frames=6)
    assert made.poster.path.is_file() and made.sheet.grid is not None and made.sheet.grid.tiles == 6


def test_a_file_that_is_no_video_raises(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(ThumbnailError):
        make_previews(bad, frames=10)


class _Tx:
    async def execute(self, q: Any, params: Any = None) -> int:
        return 1


class _Db:
    """Enough of a database for ``put_file``'s record of each key."""

    def __init__(self) -> None:
        self.recorded: list[str] = []

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[_Tx]:
        tx = _Tx()
        original = tx.execute

        async def execute(q: Any, params: Any = None) -> int:
            self.recorded.append(params["key"])
            return await original(q, params)

        tx.execute = execute  # type: ignore[method-assign]
        yield tx


def test_stored_output_records_its_images(tmp_path: Path) -> None:
    db = _Db()
    blobs = BlobStore(f"file://{tmp_path / 'blobs'}", db=db)  # type: ignore[arg-type]
    (tmp_path / "work").mkdir()
    video = _mp4(tmp_path / "work" / "0.mp4", 160, 90, 12)
    out = asyncio.run(outputs.ingest(blobs, "vid_x", 0, video))
    assert isinstance(out.thumbnail, msgspec.Struct) and isinstance(out.spritesheet, msgspec.Struct)
    assert out.object_keys() == [out.key, out.thumbnail.key, out.spritesheet.key] == db.recorded
    assert out.thumbnail.key == out.key.removesuffix(".mp4") + ".thumbnail.webp"
    for key in out.object_keys():
        assert (tmp_path / "blobs" / key).is_file()
    assert list((tmp_path / "work").iterdir()) == []


def test_a_failed_thumbnail_leaves_the_output_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: Path, *, frames: int) -> thumbnails.Previews:
        raise RuntimeError("the encoder is away")

    monkeypatch.setattr(outputs, "make_previews", broken)
    db = _Db()
    blobs = BlobStore(f"file://{tmp_path / 'blobs'}", db=db)  # type: ignore[arg-type]
    video = _mp4(tmp_path / "0.mp4", 160, 90, 12)
    out = asyncio.run(outputs.ingest(blobs, "vid_y", 0, video))
    assert out.thumbnail is msgspec.UNSET and out.spritesheet is msgspec.UNSET
    assert out.object_keys() == [out.key] == db.recorded and (tmp_path / "blobs" / out.key).is_file()
    assert b"thumbnail" not in msgspec.json.encode(out)  # the row reads as an older release's


def test_an_image_the_store_refuses_is_left_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = _Db()
    blobs = BlobStore(f"file://{tmp_path / 'blobs'}", db=db)  # type: ignore[arg-type]
    put = blobs.put_file

    async def refuse_sheets(key: str, path: Path) -> None:
        if key.endswith(".spritesheet.jpg"):
            raise OSError("the store is full")
        await put(key, path)

    monkeypatch.setattr(blobs, "put_file", refuse_sheets)
    (tmp_path / "work").mkdir()
    video = _mp4(tmp_path / "work" / "0.mp4", 160, 90, 12)
    out = asyncio.run(outputs.ingest(blobs, "vid_z", 0, video))
    assert isinstance(out.thumbnail, msgspec.Struct) and out.spritesheet is msgspec.UNSET
    assert list((tmp_path / "work").iterdir()) == []  # the refused image's file went too
