"""A last frame: the clip ends exactly on the picture given.

With a first frame too, the clip travels from one to the other: the first picture pushes in and
dissolves into the last, which settles from a slight push-in to rest, and the prompt's scene shows
through in the middle. With a last frame alone, the scene dissolves into it over the final second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

import numpy as np

from vidgate.gateway.render.motion import warp_planes
from vidgate.gateway.render.picture import Picture, still_planes
from vidgate.gateway.render.spec import RenderSpec

_PUSH: Final = 0.08  # how far each picture is magnified at the other end of the clip
_SCENE_PEAK: Final = 0.3  # how much of the scene shows half-way between the two pictures


def _smooth(u: float) -> np.float32:
    return np.float32(u * u * (3 - 2 * u))


class Keyframes:
    """The prompt's scene, bent to start on ``first_frame`` (if any) and to end on ``last_frame``."""

    def __init__(self, spec: RenderSpec) -> None:
        assert spec.last_frame is not None
        self.frame_count = spec.frame_count
        self.fps = spec.fps
        self._picture = Picture(replace(spec, first_frame=None, last_frame=None))
        self._first = None if spec.first_frame is None else still_planes(spec.first_frame, spec.width, spec.height)
        self._last = still_planes(spec.last_frame, spec.width, spec.height, "the last_frame image")

    def draw(self, index: int, planes: Sequence[np.ndarray]) -> None:
        self._picture.draw(index, planes)
        if self._first is None:
            # The scene, then the last picture over the final second (as a first frame does at the start).
            into = self.frame_count - self.fps
            u = min(max((index - into) / max(self.fps - 1, 1), 0.0), 1.0)
            if u > 0:
                a = _smooth(u)
                for plane, still in zip(planes, self._last, strict=True):
                    np.copyto(plane, np.rint(plane + (still - plane) * a), casting="unsafe")
            return
        u = index / max(self.frame_count - 1, 1)
        leaving = warp_planes(self._first, 1 + _PUSH * u, 0.0, 0.0)
        arriving = warp_planes(self._last, 1 + _PUSH * (1 - u), 0.0, 0.0)
        across = _smooth(u)
        scene = np.float32(_SCENE_PEAK * math.sin(math.pi * u))
        for plane, first, last in zip(planes, leaving, arriving, strict=True):
            picture = first + (last - first) * across
            np.copyto(plane, np.rint(picture + (plane - picture) * scene), casting="unsafe")

    def close(self) -> None:
        """Nothing to release: the pictures are in memory."""
