"""The soundtrack: a pentatonic pad and melody from the prompt and seed, computed sample-exactly."""

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

    def __init__(self, spec: RenderSpec) -> None:
        dice = Dice("audio", *spec.identity)
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

    def frame(self, start: int, count: int) -> av.AudioFrame:
        """Samples ``start .. start + count`` as a timestamped ``AudioFrame`` for the encoder."""
        frame = av.AudioFrame.from_ndarray(self.block(start, count), format="fltp", layout="stereo")
        frame.sample_rate = AUDIO_RATE
        frame.pts = start
        frame.time_base = Fraction(1, AUDIO_RATE)
        return frame


def _hz(midi: int) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)
