"""The soundtrack: a pentatonic pad and melody from the prompt and seed, computed sample-exactly, or a
recording (a reference sound, a source's own) trimmed or padded to the video, and its loudness."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Final

import av
import numpy as np

from vidgate.gateway.render.dice import Dice
from vidgate.gateway.render.spec import RenderSpec

AUDIO_RATE: Final = 48_000
# Major and minor pentatonic: any two notes sound fine together, so any seed gives a pleasant tune.
_SCALES: Final = ((0, 2, 4, 7, 9), (0, 3, 5, 7, 10))


class Tune:
    """Any block of samples can be computed on its own, so audio is interleaved with video frames."""

    def __init__(self, spec: RenderSpec, seconds: float | None = None) -> None:
        dice = Dice("audio", *spec.identity)
        scale = dice.choice(_SCALES)
        root = 45 + int(dice.uniform(0, 12))  # MIDI A2..G#3
        self.pad = [_hz(root + scale[i]) for i in (0, 2, 3)] + [_hz(root + 12)]
        self.melody = [_hz(root + 12 + dice.choice(scale) + 12 * int(dice.uniform(0, 2))) for _ in range(16)]
        self.beat = int(AUDIO_RATE * 60 / dice.uniform(72, 132))
        self.pan = dice.uniform(0.2, 0.8)
        self.total = spec.duration * AUDIO_RATE if seconds is None else round(seconds * AUDIO_RATE)

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

    def frame(self, start: int, count: int) -> av.AudioFrame:
        """Samples ``start .. start + count`` as a timestamped ``AudioFrame`` for the encoder."""
        return audio_frame(self.block(start, count), start)


class Recording:
    """Samples given up front, silent past their end: any block can be read, like a ``Tune``'s."""

    def __init__(self, samples: np.ndarray) -> None:
        self.samples = np.ascontiguousarray(samples, dtype=np.float32).reshape(2, -1)

    def block(self, start: int, count: int) -> np.ndarray:
        out = np.zeros((2, count), np.float32)
        have = self.samples[:, start : start + count]
        out[:, : have.shape[1]] = have
        return out

    def frame(self, start: int, count: int) -> av.AudioFrame:
        return audio_frame(self.block(start, count), start)


def audio_frame(block: np.ndarray, start: int) -> av.AudioFrame:
    """A ``(2, n)`` float32 block starting at sample ``start`` as a timestamped frame for the encoder."""
    frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
    frame.sample_rate = AUDIO_RATE
    frame.pts = start
    frame.time_base = Fraction(1, AUDIO_RATE)
    return frame


def loudness(samples: np.ndarray, fps: int, frames: int) -> np.ndarray:
    """How loud each video frame's share of ``samples`` is, 0 (silence) to 1 (the loudest frame).

    RMS per frame, over the loudest; a whisper of a recording is not blown up to full scale: the
    scale never goes below ``_QUIET`` RMS, so near-silence stays near 0.
    """
    per = AUDIO_RATE / fps
    edges = np.round(np.arange(frames + 1) * per).astype(np.intp)
    mono = samples.mean(axis=0, dtype=np.float64) if samples.size else np.zeros(0)
    padded = np.zeros(edges[-1], np.float64)
    padded[: min(mono.size, padded.size)] = mono[: padded.size]
    energy = np.add.reduceat(padded * padded, edges[:-1]) if frames else np.zeros(0)
    rms = np.sqrt(energy / np.diff(edges))
    return (rms / max(float(rms.max(initial=0.0)), _QUIET)).astype(np.float32)


_QUIET: Final = 0.02


def _hz(midi: int) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)
