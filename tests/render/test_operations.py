"""Every operation of the built-in renderer on real media: synthetic inputs encoded with PyAV, the
outputs decoded back with PyAV and checked frame by frame (and sample by sample)."""

from __future__ import annotations

import asyncio
import io
import wave
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from helpers.media import png_bytes

from vidgate.gateway.providers.base import JobSpec, ReferenceImage
from vidgate.gateway.providers.procedural import ProceduralProvider
from vidgate.gateway.render.image import ImageDecodeError
from vidgate.gateway.render.motion import measure, warp
from vidgate.gateway.render.procedural import RenderSpec, frame_total, render
from vidgate.gateway.render.sources import MediaDecodeError

W, H = 160, 90


def spec(**overrides: Any) -> RenderSpec:
    defaults: dict[str, Any] = {"prompt": "calm green hills", "seed": 3, "width": W, "height": H, "duration": 1}
    return RenderSpec(**(defaults | overrides))


def texture(x0: float, width: int = W, height: int = H) -> np.ndarray:
    """A smooth, non-repeating RGB picture of a wide world, seen from ``x0`` pixels along."""
    xs = np.arange(width)[None, :] + x0
    ys = np.arange(height)[:, None]
    v = 128 + 60 * np.sin(xs / 9.0) * np.cos(ys / 7.0) + 40 * np.sin(xs / 23.0 + ys / 13.0)
    return np.clip(np.stack([v, v * 0.8 + 20, 255 - v], axis=-1), 0, 255).astype(np.uint8)


def boxes(index: int, width: int = W, height: int = H) -> np.ndarray:
    """Grey boxes with hard edges on a dark ground; one slides right a few pixels a frame."""
    rgb = np.full((height, width, 3), 30, np.uint8)
    rgb[10:40, 12:60] = 200
    rgb[50:80, 100:150] = 120
    left = 20 + 3 * index
    rgb[45:70, left : left + 24] = 240
    return rgb


def mp4(pictures: list[np.ndarray], fps: int = 24, sound: np.ndarray | None = None) -> bytes:
    """The pictures (and a mono 48 kHz sound) as an H.264 (+ AAC) MP4 in memory."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = pictures[0].shape[1], pictures[0].shape[0], "yuv420p"
        audio = container.add_stream("aac", rate=48_000, layout="mono") if sound is not None else None
        for index, picture in enumerate(pictures):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        if audio is not None and sound is not None:
            block = av.AudioFrame.from_ndarray(sound.astype(np.float32)[None, :], format="fltp", layout="mono")
            block.sample_rate, block.pts = 48_000, 0
            container.mux(audio.encode(block))
            container.mux(audio.encode(None))
    return buffer.getvalue()


def wav(samples: np.ndarray, rate: int = 44_100) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def loud_then_silent(seconds: float = 2.0, rate: int = 44_100) -> np.ndarray:
    """A loud buzz for the first half, silence for the second."""
    n = int(seconds * rate)
    t = np.arange(n) / rate
    tone = 0.8 * np.sign(np.sin(2 * np.pi * 220 * t))
    tone[n // 2 :] = 0
    return tone


def luma(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="gray").astype(np.float32) for frame in container.decode(video=0)]


def rgb(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24").astype(np.float32) for frame in container.decode(video=0)]


def grey(picture: np.ndarray) -> np.ndarray:
    return av.VideoFrame.from_ndarray(picture, format="rgb24").to_ndarray(format="gray").astype(np.float32)


def sound_of(path: Path) -> tuple[float, np.ndarray]:
    """The audio stream's duration in seconds, and its samples (mono mix)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        blocks = [frame.to_ndarray().mean(axis=0) for frame in container.decode(stream)]
        samples = np.concatenate(blocks)
        return samples.size / stream.codec_context.sample_rate, samples


def diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def edges(plane: np.ndarray) -> np.ndarray:
    gy, gx = np.gradient(plane.astype(np.float64))
    return np.hypot(gx, gy)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


# extend


@pytest.fixture(scope="module")
def panning_source() -> bytes:
    """One second at 24 fps of a camera panning 3 pixels a frame (content moves left)."""
    return mp4([texture(3 * i) for i in range(24)])


def test_extend_returns_source_then_continuation(tmp_path: Path, panning_source: bytes) -> None:
    out = tmp_path / "extended.mp4"
    info = render(spec(operation="extend", source=panning_source, duration=2), out)
    assert (info.width, info.height, info.frames) == (W, H, 24 + 48)
    assert info.duration_seconds == pytest.approx(3.0, abs=0.05)
    frames = luma(out)
    assert len(frames) == 72
    # The source part is the source.
    for index in (0, 11, 23):
        assert diff(frames[index], grey(texture(3 * index))) < 4
    # The seam: the first new frame is the last source frame moved on by one frame's pan.
    seam = diff(frames[23], frames[24])
    assert seam < 8
    assert seam < 0.5 * diff(frames[23], frames[-1])


def test_extend_carries_the_pan_on(tmp_path: Path, panning_source: bytes) -> None:
    out = tmp_path / "extended.mp4"
    render(spec(operation="extend", source=panning_source, duration=1), out)
    frames = luma(out)
    before = measure(frames[22].astype(np.uint8), frames[23].astype(np.uint8))
    after = measure(frames[24].astype(np.uint8), frames[25].astype(np.uint8))
    assert before.dx == pytest.approx(-3, abs=0.6)
    assert after.dx == pytest.approx(-3, abs=0.8), after  # still panning the same way at the same pace
    assert abs(after.dy) < 0.8


def test_extend_of_a_still_source_stays_still_at_the_seam(tmp_path: Path) -> None:
    source = mp4([texture(0)] * 12)
    out = tmp_path / "still.mp4"
    render(spec(operation="extend", source=source, duration=1), out)
    frames = luma(out)
    assert len(frames) == 12 + 24
    assert diff(frames[11], frames[12]) < 3
    assert abs(measure(frames[12].astype(np.uint8), frames[13].astype(np.uint8)).dx) < 0.6


def test_motion_is_measured_as_made() -> None:
    base = grey(texture(0, 320, 180))
    for dx, dy, scale in ((4, 0, 1.0), (-3, 2, 1.0), (0, 0, 1.02), (0, 0, 0.98)):
        seen = measure(base.astype(np.uint8), warp(base, scale, dx, dy).astype(np.uint8))
        assert (seen.dx, seen.dy) == (pytest.approx(dx, abs=0.6), pytest.approx(dy, abs=0.6)), seen
        assert seen.scale == pytest.approx(scale, abs=0.006), seen


# edit


@pytest.fixture(scope="module")
def boxes_source() -> bytes:
    return mp4([boxes(i) for i in range(24)])


def test_edit_keeps_the_source_structure_and_takes_the_prompt_colours(tmp_path: Path, boxes_source: bytes) -> None:
    looks = {}
    for name, prompt in (("dusk", "a beach at dusk, golden sunset"), ("night", "a city at night")):
        out = tmp_path / f"{name}.mp4"
        info = render(spec(operation="edit", source=boxes_source, prompt=prompt, duration=4), out)
        # As long as the source (one second), not the requested four.
        assert (info.frames, info.width, info.height) == (24, W, H)
        assert info.duration_seconds == pytest.approx(1.0, abs=0.05)
        frames = luma(out)
        for index in (0, 12, 23):
            assert correlation(edges(frames[index]), edges(grey(boxes(index)))) > 0.6, (name, index)
        # The moving box moved in the output too: its left edge is where the source's is, not where it began.
        steps = np.abs(np.diff(frames[12][57].astype(np.float64)))
        assert steps[20 + 3 * 12 - 1] > 30 and steps[19] < 10, name
        looks[name] = np.mean(rgb(out), axis=(0, 1, 2))
    dusk, night = looks["dusk"], looks["night"]
    assert dusk[0] - dusk[2] > night[0] - night[2] + 40  # dusk is warm, night is blue
    assert dusk[0] > night[0] + 30


def test_edit_resamples_another_frame_rate(tmp_path: Path) -> None:
    source = mp4([boxes(i) for i in range(30)], fps=30)  # one second at 30 fps
    out = tmp_path / "edited.mp4"
    info = render(spec(operation="edit", source=source), out)
    assert info.frames == 24 and info.fps == 24
    assert frame_total(spec(operation="edit", source=source)) == 24
    assert frame_total(spec(operation="extend", source=source, duration=2)) == 24 + 48


def test_edit_makes_no_more_than_its_duration(tmp_path: Path) -> None:
    source = mp4([boxes(i) for i in range(48)])  # two seconds at 24 fps
    out = tmp_path / "edited.mp4"
    info = render(spec(operation="edit", source=source, duration=1), out)
    assert info.frames == 24 and info.duration_seconds == pytest.approx(1.0, abs=0.05)
    assert frame_total(spec(operation="edit", source=source, duration=1)) == 24


def test_edit_takes_a_webm_source(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as container:
        video = container.add_stream("libvpx", rate=24)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        for index in range(30):
            frame = av.VideoFrame.from_ndarray(boxes(index), format="rgb24")
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
    out = tmp_path / "edited.mp4"
    info = render(spec(operation="edit", source=buffer.getvalue(), duration=2), out)
    assert info.frames == 30 and info.video_codec == "h264"
    assert correlation(edges(luma(out)[20]), edges(grey(boxes(20)))) > 0.6


def test_edit_keeps_the_source_sound(tmp_path: Path) -> None:
    t = np.arange(48_000) / 48_000
    source = mp4([boxes(i) for i in range(24)], sound=0.5 * np.sin(2 * np.pi * 440 * t))
    out = tmp_path / "edited.mp4"
    info = render(spec(operation="edit", source=source), out)
    assert info.has_audio and info.audio_codec == "aac"
    seconds, samples = sound_of(out)
    assert seconds == pytest.approx(1.0, abs=0.05)
    assert np.sqrt(np.mean(samples[4800:-4800] ** 2)) > 0.2


# reference audio


def test_reference_audio_is_the_soundtrack_and_drives_the_motion(tmp_path: Path) -> None:
    out = tmp_path / "pulse.mp4"
    info = render(spec(duration=2, sound=wav(loud_then_silent())), out)
    assert info.has_audio and info.audio_codec == "aac"
    seconds, samples = sound_of(out)
    assert seconds == pytest.approx(2.0, abs=0.05)
    half = samples.size // 2
    assert np.sqrt(np.mean(samples[2400 : half - 2400] ** 2)) > 0.3
    assert np.sqrt(np.mean(samples[half + 4800 :] ** 2)) < 0.01
    frames = luma(out)
    assert len(frames) == 48
    busy = np.mean([diff(frames[i], frames[i + 1]) for i in range(2, 22)])
    calm = np.mean([diff(frames[i], frames[i + 1]) for i in range(26, 46)])
    assert busy > 3 * calm + 1, (busy, calm)
    assert np.mean(frames[:24]) > np.mean(frames[24:]) + 5  # brighter while loud


def test_reference_audio_is_padded_or_trimmed_to_the_video(tmp_path: Path) -> None:
    short, long = tmp_path / "short.mp4", tmp_path / "long.mp4"
    render(spec(duration=2, sound=wav(0.5 * np.ones(22_050))), short)  # half a second
    render(spec(duration=1, sound=wav(loud_then_silent(4.0))), long)
    assert sound_of(short)[0] == pytest.approx(2.0, abs=0.05)
    assert sound_of(long)[0] == pytest.approx(1.0, abs=0.05)


def test_silence_leaves_the_picture_unshaken(tmp_path: Path) -> None:
    plain, hushed = tmp_path / "plain.mp4", tmp_path / "hushed.mp4"
    render(spec(), plain)
    render(spec(sound=wav(np.zeros(44_100))), hushed)
    a, b = luma(plain), luma(hushed)
    motion_a = np.mean([diff(a[i], a[i + 1]) for i in range(len(a) - 1)])
    motion_b = np.mean([diff(b[i], b[i + 1]) for i in range(len(b) - 1)])
    assert motion_b < motion_a + 1


# first and last frames


def test_first_and_last_frames_are_where_the_clip_starts_and_ends(tmp_path: Path) -> None:
    red, blue = (220, 40, 40), (30, 60, 220)
    out = tmp_path / "between.mp4"
    render(spec(duration=2, first_frame=png_bytes(red, W, H), last_frame=png_bytes(blue, W, H)), out)
    frames = rgb(out)
    assert len(frames) == 48
    assert diff(frames[0], np.array(red, np.float32)) < 10
    assert diff(frames[-1], np.array(blue, np.float32)) < 10
    middle = frames[24].mean(axis=(0, 1))
    assert diff(middle, np.array(red, np.float32)) > 30 and diff(middle, np.array(blue, np.float32)) > 30


def test_last_frame_alone_ends_the_scene(tmp_path: Path) -> None:
    blue = (30, 60, 220)
    out = tmp_path / "ending.mp4"
    render(spec(duration=2, last_frame=png_bytes(blue, W, H)), out)
    frames = rgb(out)
    assert diff(frames[-1], np.array(blue, np.float32)) < 10
    assert diff(frames[0], np.array(blue, np.float32)) > 40


# reference images


def test_output_colours_follow_the_reference_images(tmp_path: Path) -> None:
    looks = {}
    for name, colour in (("red", (210, 50, 40)), ("blue", (40, 70, 210)), ("none", None)):
        out = tmp_path / f"{name}.mp4"
        refs = () if colour is None else (png_bytes(colour, 64, 64), png_bytes(colour, 32, 48))
        render(spec(references=refs), out)
        looks[name] = np.mean(rgb(out), axis=(0, 1, 2))
    red, blue, none = looks["red"], looks["blue"], looks["none"]
    assert red[0] - red[2] > 60 and blue[2] - blue[0] > 60, (red, blue)
    assert red[0] - red[2] > none[0] - none[2] + 30
    assert blue[2] - blue[0] > none[2] - none[0] + 30


# determinism and bad inputs


def test_every_operation_is_deterministic(tmp_path: Path, panning_source: bytes) -> None:
    sound = wav(loud_then_silent(1.0))
    variants = [
        spec(operation="extend", source=panning_source, sound=sound),
        spec(operation="edit", source=panning_source, references=(png_bytes((200, 30, 30)),)),
        spec(first_frame=png_bytes((200, 30, 30)), last_frame=png_bytes((30, 30, 200)), audio=True),
    ]
    for index, variant in enumerate(variants):
        a, b = tmp_path / f"{index}a.mp4", tmp_path / f"{index}b.mp4"
        render(variant, a)
        render(variant, b)
        assert a.read_bytes() == b.read_bytes(), variant.operation


def test_undecodable_inputs_are_refused_by_name(tmp_path: Path, panning_source: bytes) -> None:
    out = tmp_path / "out.mp4"
    with pytest.raises(MediaDecodeError, match="source video"):
        render(spec(operation="edit", source=b"not a video at all"), out)
    with pytest.raises(MediaDecodeError, match="reference audio"):
        render(spec(sound=b"RIFF\x00\x00\x00\x00WAVEjunk"), out)
    with pytest.raises(ImageDecodeError, match="last_frame"):
        render(spec(last_frame=b"not an image"), out)
    with pytest.raises(ImageDecodeError, match="reference image 1"):
        render(spec(references=(b"not an image",)), out)
    with pytest.raises(MediaDecodeError, match="no sound"):
        render(spec(sound=panning_source), out)  # a video without an audio stream
    with pytest.raises(MediaDecodeError, match="no video stream"):
        render(spec(operation="extend", source=wav(np.zeros(4410))), out)
    assert not out.exists()
    with pytest.raises(ValueError, match="source video"):
        spec(operation="extend")
    with pytest.raises(ValueError, match="source video"):
        spec(source=panning_source)


# the provider maps a job's references onto the render


def test_provider_extends_a_source_given_without_an_operation(tmp_path: Path, panning_source: bytes) -> None:
    refs = (
        ReferenceImage("source", "", panning_source, "video/mp4", kind="video"),
        ReferenceImage("reference", "", wav(loud_then_silent(3.0)), "audio/wav", kind="audio"),
    )
    job = JobSpec(
        job_id="job_ext",
        model="vidgate/procedural",
        provider_model="procedural-v1",
        prompt="mountains at dawn",
        duration=2,
        width=W,
        height=H,
        references=refs,  # no operation: a source video is extended
    )
    seen: list[int] = []

    async def progress(percent: int) -> None:
        seen.append(percent)

    async def go() -> list[Any]:
        provider = ProceduralProvider(max_parallel_renders=1)
        try:
            return await provider.run(job, tmp_path, progress, lambda: False)
        finally:
            await provider.aclose()

    outputs = asyncio.run(go())
    assert len(outputs) == 1 and seen[-1] == 100 and seen == sorted(seen)
    frames = luma(outputs[0].path)
    assert len(frames) == 24 + 48
    assert diff(frames[5], grey(texture(15))) < 25  # the source, shaken by the loud first second
    assert sound_of(outputs[0].path)[0] == pytest.approx(3.0, abs=0.05)


def test_provider_fails_an_edit_without_a_source(tmp_path: Path) -> None:
    job = JobSpec(
        job_id="job_edit",
        model="vidgate/procedural",
        provider_model="procedural-v1",
        prompt="a forest",
        duration=1,
        width=W,
        height=H,
        operation="edit",
    )

    async def go() -> None:
        provider = ProceduralProvider(max_parallel_renders=1)
        try:
            await provider.run(job, tmp_path, _ignore, lambda: False)
        finally:
            await provider.aclose()

    with pytest.raises(MediaDecodeError, match="needs a source video"):
        asyncio.run(go())
    assert list(tmp_path.iterdir()) == []


async def _ignore(_percent: int) -> None:
    return None
