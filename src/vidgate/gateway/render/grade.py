"""Reference images: the output takes on their colours.

Their colour statistics (the mean and spread of each of Y, Cb and Cr, pooled over every picture
given) are measured once; each frame's own are then moved most of the way towards them, a colour
transfer that keeps the frame's shapes and motion and changes only its look.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np

from vidgate.gateway.render.colour import full_planes
from vidgate.gateway.render.image import ImageDecodeError, decode_image

_SAMPLE: Final = 64  # references are measured at this size: statistics need no more
_STRENGTH: Final = (0.5, 0.85, 0.85)  # how far Y, Cb, Cr move towards the references
_SPREAD: Final = (0.6, 1.6)  # bounds on how much a plane's contrast may be stretched or squeezed


class Grade:
    """Moves each frame's colour statistics towards those of the reference images."""

    def __init__(self, references: Sequence[bytes]) -> None:
        planes = [full_planes(_pixels(data, index)) for index, data in enumerate(references)]
        self.means = [float(np.mean([p[c].mean() for p in planes])) for c in range(3)]
        self.spreads = [float(np.sqrt(np.mean([p[c].var() for p in planes]))) for c in range(3)]

    def apply(self, index: int, planes: Sequence[np.ndarray]) -> None:
        for channel, plane in enumerate(planes):
            values = plane.astype(np.float32)
            mean, spread = float(values.mean()), float(values.std())
            ratio = min(max(self.spreads[channel] / max(spread, 1.0), _SPREAD[0]), _SPREAD[1])
            target = self.means[channel] + (values - mean) * np.float32(ratio)
            graded = values + (target - values) * np.float32(_STRENGTH[channel])
            limit = 235 if channel == 0 else 240
            np.copyto(plane, np.clip(np.rint(graded), 16, limit), casting="unsafe")


def _pixels(data: bytes, index: int) -> np.ndarray:
    try:
        return decode_image(data, _SAMPLE, _SAMPLE).astype(np.float32) / 255
    except ImageDecodeError as exc:
        raise ImageDecodeError(f"reference image {index + 1}: {exc}") from exc
