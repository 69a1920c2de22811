"""Reference audio: the picture moves with the sound.

Each frame's loudness (0 silent .. 1 the loudest) sets how far the picture pushes in, how hard the
camera shakes and how bright it is, so a loud passage looks busy and a silent one rests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from vidgate.gateway.render.dice import Dice
from vidgate.gateway.render.motion import warp_planes

_PUSH: Final = 0.08  # magnification at full loudness
_SHAKE: Final = 0.025  # the largest jolt at full loudness, as a share of the shorter side
_DIM: Final = 0.8  # luma gain in silence
_BRIGHT: Final = 1.15  # and at full loudness


class Pulse:
    """Push-in, shake and brightness following ``loudness`` (one value per frame)."""

    def __init__(self, loudness: np.ndarray, dice: Dice) -> None:
        self.loudness = loudness
        self.jolts = dice.array(2 * len(loudness)).reshape(len(loudness), 2) * 2 - 1

    def apply(self, index: int, planes: Sequence[np.ndarray]) -> None:
        level = float(self.loudness[index]) if index < len(self.loudness) else 0.0
        luma = planes[0]
        if level > 0.01:
            reach = _SHAKE * min(luma.shape) * level
            jx, jy = self.jolts[index]
            moved = warp_planes(planes, 1 + _PUSH * level, float(jx) * reach, float(jy) * reach)
            for plane, new in zip(planes, moved, strict=True):
                np.copyto(plane, new)
        gain = _DIM + (_BRIGHT - _DIM) * level
        # One table lookup per pixel: far cheaper than float arithmetic over the whole frame.
        table = np.clip(np.rint(16 + (np.arange(256) - 16) * gain), 16, 235).astype(np.uint8)
        np.copyto(luma, table[luma])
