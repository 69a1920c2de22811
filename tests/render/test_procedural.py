"""The procedural renderer writes real, reproducible MP4s: checked by decoding them back with PyAV."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from vidgate.gateway.render.image import ImageDecodeError, decode_image
from vidgate.gateway.render.probe import ProbeError, probe
from vidgate.gateway.render.procedural import RenderCancelled, RenderSpec, render


def spec(**overrides: Any) -> RenderSpec:
    defaults: dict[str, Any] = {"prompt": "a red fox in fresh snow", "seed": 1, "width": 160, "height": 96}
    return RenderSpec(**(defaults | {"duration": 1} | overrides))


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types in file order."""
    data, boxes, offset = path.read_bytes(), [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes.append(data[offset + 4 : offset + 8].decode("latin-1"))
        if size == 1:  # 64-bit size follows the type
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        if size < 8:
            break
        offset += size
    return boxes


def rgb_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def encode_image(rgb: np.ndarray, codec: str = "png") -> bytes:
    ctx = av.CodecContext.create(codec, "w")
    ctx.height, ctx.width = rgb.shape[:2]
    ctx.pix_fmt = {"png": "rgb24", "mjpeg": "yuvj444p", "libwebp": "yuv420p"}[codec]
    ctx.time_base = Fraction(1, 25)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=ctx.pix_fmt)
    return b"".join(bytes(p) for p in ctx.encode(frame) + ctx.encode(None))


def solid(rgb: tuple[int, int, int], width: int = 200, height: int = 100) -> np.ndarray:
    return np.full((height, width, 3), rgb, dtype=np.uint8)


@pytest.mark.parametrize(("width", "height", "duration"), [(64, 64, 2), (320, 240, 2), (1920, 1080, 1)])
def test_writes_h264_mp4_of_exact_length(tmp_path: Path, width: int, height: int, duration: int) -> None:
    out = tmp_path / "out.mp4"
    info = render(spec(width=width, height=height, duration=duration), out)
    with av.open(str(out)) as container:
        assert container.duration / av.time_base == duration
        assert not container.streams.audio
        video = container.streams.video[0]
        assert (video.codec_context.name, video.codec_context.pix_fmt) == ("h264", "yuv420p")
        assert (video.codec_context.width, video.codec_context.height) == (width, height)
        assert float(video.average_rate) == 24
        decoded = sum(1 for _ in container.decode(video))
    assert decoded == duration * 24
    assert top_level_boxes(out).index("moov") < top_level_boxes(out).index("mdat")
    assert (info.width, info.height, info.frames, info.duration_seconds) == (width, height, duration * 24, duration)
    assert (info.video_codec, info.pix_fmt, info.has_audio, info.audio_codec) == ("h264", "yuv420p", False, None)
    assert info.mime_type == "video/mp4"


def test_portrait_sizes_within_the_pixel_budget_render(tmp_path: Path) -> None:
    info = render(spec(width=90, height=160), tmp_path / "portrait.mp4")
    assert (info.width, info.height) == (90, 160)


def test_audio_track_matches_the_video(tmp_path: Path) -> None:
    out = tmp_path / "audio.mp4"
    info = render(spec(duration=2, audio=True), out)
    assert info.has_audio and info.audio_codec == "aac"
    with av.open(str(out)) as container:
        assert container.duration / av.time_base == 2
        stream = container.streams.audio[0]
        assert stream.duration is not None and stream.time_base is not None
        assert abs(float(stream.duration * stream.time_base) - 2) < 0.1
        samples = np.concatenate([frame.to_ndarray() for frame in container.decode(stream)], axis=1)
    assert abs(samples.shape[1] / stream.rate - 2) < 0.1
    assert float(np.sqrt(np.mean(samples**2))) > 0.01  # an actual tune, not silence


def test_same_spec_gives_identical_bytes(tmp_path: Path) -> None:
    one, two = tmp_path / "one.mp4", tmp_path / "two.mp4"
    render(spec(audio=True, negative_prompt="blurry"), one)
    render(spec(audio=True, negative_prompt="blurry"), two)
    assert one.read_bytes() == two.read_bytes()


def test_same_spec_gives_identical_bytes_in_another_process(tmp_path: Path) -> None:
    here = tmp_path / "here.mp4"
    render(spec(audio=True), here)
    code = (
        "import sys; from pathlib import Path;"
        "from vidgate.gateway.render.procedural import RenderSpec, render;"
        "render(RenderSpec(prompt='a red fox in fresh snow', seed=1, width=160, height=96, duration=1, audio=True),"
        " Path(sys.argv[1]))"
    )
    there = tmp_path / "there.mp4"
    subprocess.run([sys.executable, "-c", code, str(there)], check=True, timeout=60)
    assert hashlib.sha256(here.read_bytes()).digest() == hashlib.sha256(there.read_bytes()).digest()


def test_bytes_do_not_depend_on_what_memory_held(tmp_path: Path) -> None:
    """Each process fills fresh heap memory with another byte (glibc's MALLOC_PERTURB_): a read of
    memory the encoder never wrote would change the bytes, as load and other threads do in service."""
    code = (
        "import hashlib, sys, tempfile; from pathlib import Path;"
        "from vidgate.gateway.render.procedural import RenderSpec, render;"
        "out = Path(tempfile.mkdtemp()) / 'a.mp4';"
        "sizes = ((160, 90), (160, 96), (90, 160), (320, 180), (426, 240), (64, 64));"
        "[print(render(RenderSpec(prompt='a paper boat', seed=6, width=w, height=h, duration=2, audio=True), out)"
        " and hashlib.sha256(out.read_bytes()).hexdigest()) for w, h in sizes]"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            env=os.environ | {"MALLOC_PERTURB_": fill},
            check=True,
            timeout=120,
            capture_output=True,
            text=True,
        ).stdout
        for fill in ("1", "85", "165", "250")
    }
    assert len(outputs) == 1, outputs


def test_another_prompt_gives_another_picture(tmp_path: Path) -> None:
    base, other = tmp_path / "base.mp4", tmp_path / "other.mp4"
    render(spec(), base)
    render(spec(prompt="a lighthouse at dusk"), other)
    first_a, first_b = rgb_frames(base)[0], rgb_frames(other)[0]
    assert np.abs(first_a.astype(np.int16) - first_b).mean() > 15


@pytest.mark.parametrize("change", [{"seed": 2}, {"negative_prompt": "no people"}], ids=str)
def test_seed_or_negative_prompt_recompose_the_scene(tmp_path: Path, change: dict[str, Any]) -> None:
    """The prompt fixes what is in the scene; the seed (and negative prompt) still move things around,
    light it at another time of day where the prompt names none, and so on."""
    base, other = tmp_path / "base.mp4", tmp_path / "other.mp4"
    render(spec(), base)
    render(spec(**change), other)
    assert base.read_bytes() != other.read_bytes()
    first_a, first_b = rgb_frames(base)[0], rgb_frames(other)[0]
    assert np.mean(np.abs(first_a.astype(np.int16) - first_b).max(axis=2) > 24) > 0.02


def test_picture_moves(tmp_path: Path) -> None:
    render(spec(), tmp_path / "moving.mp4")
    frames = rgb_frames(tmp_path / "moving.mp4")
    changed = np.abs(frames[0].astype(np.int16) - frames[-1]).max(axis=2) > 8
    assert changed.mean() > 0.01


def test_first_frame_starts_the_video_then_blends_away(tmp_path: Path) -> None:
    colour = (200, 40, 120)
    out = tmp_path / "first.mp4"
    render(spec(width=128, height=128, first_frame=encode_image(solid(colour))), out)
    frames = rgb_frames(out)
    first = frames[0][8:-8, 8:-8].reshape(-1, 3).mean(axis=0)
    assert np.abs(first - colour).max() < 4
    assert np.abs(frames[-1].astype(np.int16) - frames[0]).mean() > 10


@pytest.mark.parametrize("codec", ["png", "mjpeg", "libwebp"])
def test_decode_image_covers_and_centre_crops(codec: str) -> None:
    # Left half red, right half blue, 2:1; covering a square keeps the middle, still split in two.
    wide = solid((220, 30, 30), 200, 100)
    wide[:, 100:] = (30, 30, 220)
    square = decode_image(encode_image(wide, codec), 64, 64)
    assert square.shape == (64, 64, 3)
    assert np.abs(square[:, :24].reshape(-1, 3).mean(axis=0) - (220, 30, 30)).max() < 12
    assert np.abs(square[:, 40:].reshape(-1, 3).mean(axis=0) - (30, 30, 220)).max() < 12


def test_decode_image_rejects_garbage() -> None:
    with pytest.raises(ImageDecodeError):
        decode_image(b"definitely not an image", 64, 64)


def test_on_frame_reports_every_frame(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    render(spec(), tmp_path / "p.mp4", on_frame=lambda done, total: calls.append((done, total)))
    assert calls == [(done, 24) for done in range(1, 25)]


def test_cancel_mid_render_raises_and_removes_the_file(tmp_path: Path) -> None:
    out = tmp_path / "cancelled.mp4"
    done: list[int] = []
    with pytest.raises(RenderCancelled):
        render(spec(duration=4), out, on_frame=lambda d, _t: done.append(d), should_stop=lambda: len(done) >= 10)
    assert len(done) == 10
    assert not out.exists()


@pytest.mark.parametrize(
    "bad",
    [{"width": 161}, {"width": 62}, {"height": 1922}, {"width": 1920, "height": 1920}, {"duration": 0},
     {"duration": 21}, {"fps": 0}],
    ids=str,
)  # fmt: skip
def test_spec_rejects_out_of_range_values(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        spec(**bad)


def test_probe_rejects_files_that_are_not_video(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)
    with pytest.raises(ProbeError):
        probe(junk)
    with pytest.raises(ProbeError):
        probe(tmp_path / "missing.mp4")
