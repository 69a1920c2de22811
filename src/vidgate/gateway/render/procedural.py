"""The built-in renderer: a prompt-seeded animation encoded as a real H.264 (and AAC) MP4.

It lets the gateway serve genuine video with no GPU and no upstream. The same spec always gives the
same bytes, so tests, caches and retries can rely on it; and each frame is a handful of vectorised
numpy passes written straight into yuv420p planes, so x264 rather than Python sets the pace.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final, TypeVar

import av
import numpy as np

from vidgate.gateway.render.image import decode_image
from vidgate.gateway.render.probe import MediaInfo, probe


def _x264_options() -> dict[str, str]:
    """The encoder settings; shared with bench/render.py so its ffmpeg baseline encodes identically.

    ``threads`` is pinned because x264's output depends on its thread count ("auto" would vary by
    host). On CPUs with AVX-512, x264's AVX-512 kernels read memory it never initialised (its
    lookahead's lowres planes): the bytes then depend on what the heap held, which changes with load
    and with other threads. Capping x264 at AVX2 there gives the same bytes on every run, at the
    same speed; other CPUs keep x264's own detection, which never enables those kernels.
    """
    options = {"preset": "veryfast", "crf": "23", "threads": "4"}
    if _has_avx512():
        options["x264-params"] = "asm=AVX2"
    return options


def _has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            return any(line.startswith("flags") and " avx512f" in line for line in cpuinfo)
    except OSError:
        return False


X264_OPTIONS: Final[dict[str, str]] = _x264_options()
AUDIO_RATE: Final = 48_000
_AUDIO_BITRATE: Final = 128_000
_MAX_PIXELS: Final = 1920 * 1080
# Pixels per sample along each axis of the Y, U and V planes of yuv420p.
_STEPS: Final = (1, 2, 2)
_SHAPE_KINDS: Final = ("disc", "ring", "square", "diamond")
# Hue offsets of the palette schemes: complementary, triadic, analogous, tetradic.
_SCHEMES: Final = ((0.0, 0.08, 0.5, 0.58), (0.0, 0.33, 0.67, 0.17), (0.0, 0.05, 0.1, 0.15), (0.0, 0.5, 0.25, 0.75))
# Major and minor pentatonic: any two notes sound fine together, so any seed gives a pleasant tune.
_SCALES: Final = ((0, 2, 4, 7, 9), (0, 3, 5, 7, 10))

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RenderSpec:
    """Everything that determines the output; equal specs give byte-identical files."""

    prompt: str
    seed: int
    width: int
    height: int
    duration: int
    fps: int = 24
    audio: bool = False
    first_frame: bytes | None = None
    negative_prompt: str | None = None

    def __post_init__(self) -> None:
        # Bounds per side plus a pixel budget, so portrait sizes such as 720x1280 fit as well.
        for name, side in (("width", self.width), ("height", self.height)):
            if not 64 <= side <= 1920 or side % 2:
                raise ValueError(f"{name} must be even and within 64..1920, got {side}")
        if self.width * self.height > _MAX_PIXELS:
            raise ValueError(f"{self.width}x{self.height} exceeds 1920x1080 pixels")
        if not 1 <= self.duration <= 20:
            raise ValueError(f"duration must be 1..20 seconds, got {self.duration}")
        if not 1 <= self.fps <= 60:
            raise ValueError(f"fps must be 1..60, got {self.fps}")

    @property
    def frame_count(self) -> int:
        return self.duration * self.fps


class RenderCancelled(Exception):
    """``should_stop`` asked the render to stop; the partial file has been removed."""


def render(
    spec: RenderSpec,
    out_path: Path,
    on_frame: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> MediaInfo:
    """Encode ``spec`` to ``out_path`` as a faststart MP4 and describe the result.

    ``on_frame(done, total)`` follows each frame handed to the encoder; ``should_stop`` is checked
    before each frame. Whatever goes wrong, no partial file is left behind.
    """
    total = spec.frame_count
    tune = _Tune(spec) if spec.audio else None
    try:
        # faststart puts ``moov`` first so players can start before the download ends.
        with av.open(str(out_path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            video = _add_video(container, spec)
            audio = _add_audio(container) if tune is not None else None
            for index, frame in enumerate(frames(spec)):
                if should_stop is not None and should_stop():
                    raise RenderCancelled(f"render of {out_path.name} cancelled at frame {index}/{total}")
                container.mux(video.encode(frame))
                if audio is not None and tune is not None:
                    # Interleave by hand: audio up to the end of this frame, so the muxer buffers little.
                    start = index * AUDIO_RATE // spec.fps
                    end = (index + 1) * AUDIO_RATE // spec.fps
                    container.mux(audio.encode(_audio_frame(tune.block(start, end - start), start)))
                if on_frame is not None:
                    on_frame(index + 1, total)
            container.mux(video.encode(None))
            if audio is not None:
                container.mux(audio.encode(None))
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise
    return probe(out_path)


def frames(spec: RenderSpec) -> Iterator[av.VideoFrame]:
    """Yield each picture of ``spec`` as a yuv420p ``VideoFrame`` with its ``pts`` set.

    Drawing straight into frames FFmpeg allocated is what keeps Python cheap next to x264: a numpy
    array would cost a conversion per frame, and the encoder takes these buffers by reference.
    """
    scene = _Scene(spec)
    for index in range(spec.frame_count):
        frame = av.VideoFrame(spec.width, spec.height, "yuv420p")
        frame.pts = index
        scene.draw(index, [_plane_view(plane) for plane in frame.planes])
        yield frame


def _plane_view(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """A writable ``(height, width)`` view of a plane, skipping the alignment padding of each row."""
    rows = np.frombuffer(memoryview(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
    return rows[:, : plane.width]


class _Dice:
    """Uniform draws from blake2b of the spec's identity: unlike numpy's generators, stable forever."""

    def __init__(self, *identity: object) -> None:
        self._key = hashlib.blake2b(json.dumps(identity).encode(), digest_size=32).digest()
        self._count = 0

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        self._count += 1
        word = hashlib.blake2b(self._count.to_bytes(8, "little"), key=self._key, digest_size=8).digest()
        # 53 bits so the draw is exactly representable and strictly below 1.
        return lo + (hi - lo) * (int.from_bytes(word, "little") >> 11) / 2**53

    def choice(self, items: Sequence[T]) -> T:
        return items[int(self.uniform() * len(items))]


def _identity(spec: RenderSpec) -> tuple[str, str, int]:
    return spec.prompt, spec.negative_prompt or "", spec.seed


def _yuv(hue: float, saturation: float, value: float) -> np.ndarray:
    """BT.709 limited-range YCbCr of an HSV colour, matching the tags written into the stream."""
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return np.array([16 + 219 * y, 128 + 224 * (b - y) / 1.8556, 128 + 224 * (r - y) / 1.5748])


class _Sprite:
    """A soft-edged shape on a Lissajous path, with its alpha masks prepared once per plane."""

    def __init__(self, dice: _Dice, hue: float, unit: float) -> None:
        colour = _yuv(hue + dice.uniform(-0.03, 0.03), dice.uniform(0.5, 1.0), dice.uniform(0.75, 1.0))
        self.kind = dice.choice(_SHAPE_KINDS)
        self.radius = dice.uniform(0.06, 0.16) * unit
        self.amplitude = (dice.uniform(0.1, 0.4), dice.uniform(0.1, 0.4))
        self.frequency = (dice.uniform(0.04, 0.3), dice.uniform(0.04, 0.3))
        self.phase = (dice.uniform(0, 2 * math.pi), dice.uniform(0, 2 * math.pi))
        opacity = dice.uniform(0.6, 1.0)
        self.masks = [self._mask(step, opacity, value) for step, value in zip(_STEPS, colour, strict=True)]

    def _mask(self, step: int, opacity: float, value: float) -> tuple[np.ndarray, np.ndarray]:
        """(256 - alpha, value * alpha) in 8-bit fixed point: blending is then two integer passes."""
        r = self.radius / step
        size = 2 * math.ceil(r + 1)
        d = np.arange(size) + 0.5 - size / 2
        dx, dy = np.abs(d)[None, :], np.abs(d)[:, None]
        if self.kind == "disc":
            distance = np.hypot(dx, dy) - r
        elif self.kind == "ring":
            distance = np.abs(np.hypot(dx, dy) - 0.75 * r) - 0.25 * r
        elif self.kind == "square":
            distance = np.maximum(dx, dy) - 0.8 * r
        else:
            distance = (dx + dy - r) * math.sqrt(0.5)
        alpha = np.rint(np.clip(0.5 - distance, 0.0, 1.0) * opacity * 256).astype(np.uint16)
        return (256 - alpha).astype(np.uint16), (alpha * np.uint16(round(value))).astype(np.uint16)

    def draw(self, planes: Sequence[np.ndarray], size: tuple[int, int], t: float) -> None:
        w, h = size
        cx = w * (0.5 + self.amplitude[0] * math.sin(2 * math.pi * self.frequency[0] * t + self.phase[0]))
        cy = h * (0.5 + self.amplitude[1] * math.sin(2 * math.pi * self.frequency[1] * t + self.phase[1]))
        for plane, step, (keep, paint) in zip(planes, _STEPS, self.masks, strict=True):
            n = keep.shape[0]
            x0, y0 = round(cx / step) - n // 2, round(cy / step) - n // 2
            # Clip the sprite against the plane; it may hang over any edge.
            sx, sy = max(0, -x0), max(0, -y0)
            ex, ey = min(n, plane.shape[1] - x0), min(n, plane.shape[0] - y0)
            if sx >= ex or sy >= ey:
                continue
            region = plane[y0 + sy : y0 + ey, x0 + sx : x0 + ex]
            blended = np.multiply(region, keep[sy:ey, sx:ex], dtype=np.uint16)
            blended += paint[sy:ey, sx:ex]
            blended >>= 8
            region[...] = blended


class _Scene:
    """What is fixed for a spec, worked out once so each frame is a crop plus a few sprite blends.

    The background is painted once on a canvas larger than the frame and each frame shows a window
    of it that pans by whole pixels: x264 then predicts it exactly, where a background changing in
    place costs it several times more per frame.
    """

    def __init__(self, spec: RenderSpec) -> None:
        dice = _Dice("picture", *_identity(spec))
        self.size = (spec.width, spec.height)
        self.fps = spec.fps
        unit = float(min(spec.width, spec.height))
        hue = dice.uniform()
        scheme = dice.choice(_SCHEMES)
        palette = [
            _yuv(hue + scheme[0], dice.uniform(0.4, 0.9), dice.uniform(0.08, 0.3)),
            _yuv(hue + scheme[1], dice.uniform(0.4, 0.9), dice.uniform(0.5, 0.8)),
            _yuv(hue + scheme[2], dice.uniform(0.5, 1.0), dice.uniform(0.6, 0.95)),
        ]
        # Margins are even so chroma offsets (half the luma ones) stay whole.
        self.margin = (2 * round(0.1 * spec.width), 2 * round(0.1 * spec.height))
        self.pan = [(dice.uniform(0.03, 0.12), dice.uniform(0, 2 * math.pi)) for _ in range(2)]
        self.canvas = self._paint(dice, palette, unit)
        self.sprites = [_Sprite(dice, hue + dice.choice(scheme), unit) for _ in range(3 + int(dice.uniform(0, 4)))]
        self.still = self._still(spec.first_frame) if spec.first_frame is not None else None

    def _paint(self, dice: _Dice, palette: list[np.ndarray], unit: float) -> list[np.ndarray]:
        """A plasma of travelling and radial sines, mapped through the palette, as yuv420p planes."""
        w, h = self.size[0] + self.margin[0], self.size[1] + self.margin[1]
        x = ((np.arange(w, dtype=np.float32) + 0.5) / unit)[None, :]
        y = ((np.arange(h, dtype=np.float32) + 0.5) / unit)[:, None]
        diagonal = (x + y if dice.uniform() < 0.5 else x - y) * np.float32(math.sqrt(0.5))
        cx, cy = dice.uniform(0, w / unit), dice.uniform(0, h / unit)
        radius = np.hypot(x - cx, y - cy)
        layers = [
            (coordinate, dice.uniform(0.3, 2.5), dice.uniform(), dice.uniform(0.2, 1.0))
            for coordinate in (x, y, diagonal, radius)
        ]
        tau = np.float32(2 * math.pi)
        mix = sum(weight * np.sin(tau * (cycles * c + phase)) for c, cycles, phase, weight in layers)
        mix = 0.5 + 0.5 * mix / sum(weight for *_, weight in layers)
        accent = np.clip(np.sin(tau * np.float32(dice.uniform(0.5, 2.0)) * radius), 0.0, 1.0) ** 2
        planes = []
        for channel, step in enumerate(_STEPS):
            dark, light, glow = (float(colour[channel]) for colour in palette)
            value = dark + (light - dark) * mix
            value += (glow - value) * (0.5 * accent)
            if step == 2:
                # 2x2 averages: chroma sampled as a scaler would, at the centre of each luma quad.
                value = value.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
            planes.append(np.rint(value).astype(np.uint8))
        return planes

    def _still(self, data: bytes) -> list[np.ndarray]:
        """The first-frame image as float yuv420p planes, converted with the stream's BT.709 matrix."""
        w, h = self.size
        rgb = av.VideoFrame.from_ndarray(decode_image(data, w, h), format="rgb24")
        yuv = rgb.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG").to_ndarray()
        flat = yuv.reshape(-1)
        return [
            flat[: w * h].reshape(h, w).astype(np.float32),
            flat[w * h : w * h * 5 // 4].reshape(h // 2, w // 2).astype(np.float32),
            flat[w * h * 5 // 4 :].reshape(h // 2, w // 2).astype(np.float32),
        ]

    def draw(self, index: int, planes: Sequence[np.ndarray]) -> None:
        t = index / self.fps
        ox, oy = (
            round(margin * (0.5 + 0.5 * math.sin(2 * math.pi * speed * t + phase)))
            for margin, (speed, phase) in zip(self.margin, self.pan, strict=True)
        )
        for plane, canvas, step in zip(planes, self.canvas, _STEPS, strict=True):
            h, w = plane.shape
            np.copyto(plane, canvas[oy // step : oy // step + h, ox // step : ox // step + w])
        for sprite in self.sprites:
            sprite.draw(planes, self.size, t)
        if self.still is not None and index < self.fps:
            # Smoothstep from the supplied picture into the animation over the first second.
            a = np.float32((index / self.fps) ** 2 * (3 - 2 * index / self.fps))
            for plane, still in zip(planes, self.still, strict=True):
                plane[...] = np.rint(still + (plane - still) * a)


class _Tune:
    """A pentatonic pad and melody from the prompt and seed, computed sample-exactly by index."""

    def __init__(self, spec: RenderSpec) -> None:
        dice = _Dice("audio", *_identity(spec))
        scale = dice.choice(_SCALES)
        root = 45 + int(dice.uniform(0, 12))  # MIDI A2..G#3
        self.pad = [_hz(root + scale[i]) for i in (0, 2, 3)] + [_hz(root + 12)]
        self.melody = [_hz(root + 12 + dice.choice(scale) + 12 * int(dice.uniform(0, 2))) for _ in range(16)]
        self.beat = int(AUDIO_RATE * 60 / dice.uniform(72, 132))
        self.pan = dice.uniform(0.2, 0.8)
        self.total = spec.duration * AUDIO_RATE

    def block(self, start: int, count: int) -> np.ndarray:
        """Samples ``start .. start + count`` as a ``(2, count)`` float32 stereo block."""
        n = np.arange(start, start + count, dtype=np.float64)
        seconds = n / AUDIO_RATE
        pad = sum(np.sin(2 * math.pi * f * seconds) for f in self.pad) * 0.06
        pad *= 0.75 + 0.25 * np.sin(2 * math.pi * 0.25 * seconds)
        beat, offset = np.divmod(n.astype(np.int64), self.beat)
        freq = np.asarray(self.melody)[beat % len(self.melody)]
        # A 10 ms attack and a quadratic release to zero at the next beat: no clicks between notes.
        envelope = np.minimum(offset / (0.01 * AUDIO_RATE), 1.0) * (1 - offset / self.beat) ** 2
        lead = 0.2 * envelope * np.sin(2 * math.pi * freq * offset / AUDIO_RATE)
        # Fade the whole clip in and out over 20 ms so it starts and ends silently.
        fade = np.clip(np.minimum(n, self.total - n) / (0.02 * AUDIO_RATE), 0.0, 1.0)
        left = (pad + lead * (1 - self.pan)) * fade
        right = (pad + lead * self.pan) * fade
        return np.stack([left, right]).astype(np.float32)


def _hz(midi: int) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _add_video(container: av.container.OutputContainer, spec: RenderSpec) -> av.VideoStream:
    stream = container.add_stream("libx264", rate=spec.fps, options=X264_OPTIONS)
    stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
    ctx = stream.codec_context
    # PyAV defaults to slice threads; frame threads (what the ffmpeg CLI uses) encode faster.
    ctx.thread_type = "FRAME"
    # Tag BT.709 limited range: the matrix the palette and first-frame conversion use.
    ctx.colorspace = ctx.color_primaries = ctx.color_trc = 1  # AVCOL_*_BT709
    ctx.color_range = 1  # AVCOL_RANGE_MPEG
    return stream


def _add_audio(container: av.container.OutputContainer) -> av.AudioStream:
    return container.add_stream("aac", rate=AUDIO_RATE, layout="stereo", bit_rate=_AUDIO_BITRATE)


def _audio_frame(samples: np.ndarray, start: int) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
    frame.sample_rate = AUDIO_RATE
    frame.pts = start
    frame.time_base = Fraction(1, AUDIO_RATE)
    return frame
