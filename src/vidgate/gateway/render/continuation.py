"""``extend``: the source played through, then carried on from its last frame.

The continuation keeps the motion the source ended with (measured between its last two distinct
pictures: a pan, a push-in) and lets it ease out over about a second, while the prompt's scene
fades in over the continuation's length. Its first frame is the last one moved by one frame's
motion, so the seam does not jump.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Final

import numpy as np

from vidgate.gateway.render.motion import Motion, measure, warp_planes
from vidgate.gateway.render.picture import Picture
from vidgate.gateway.render.sources import Planes, SourceVideo
from vidgate.gateway.render.spec import RenderSpec

_MAX_STEP: Final = 0.03  # the fastest pan carried on, as a share of the width per frame


class Extension:
    """The source's frames at the output's size and rate, then ``spec.duration`` seconds more."""

    def __init__(self, spec: RenderSpec) -> None:
        assert spec.source is not None
        self.source = SourceVideo(spec.source, spec.fps)
        self.head = self.source.frame_count
        self.frame_count = self.head + spec.frame_count
        self.fps = spec.fps
        self.width = spec.width
        self._frames: Iterator[Planes] = self.source.frames(spec.width, spec.height)
        self._scene_spec = replace(spec, operation="generate", source=None, first_frame=None, last_frame=None)
        self._picture: Picture | None = None
        self._scratch: list[np.ndarray] = []
        self._last: Planes | None = None
        self._before: Planes | None = None
        self._apart = 1  # output frames between ``_before`` and ``_last``
        self._shown_for = 0  # output frames ``_last`` has been shown for so far
        self._step = Motion()

    def draw(self, index: int, planes: Sequence[np.ndarray]) -> None:
        if index < self.head:
            shown = next(self._frames)
            if shown is not self._last:  # a new source picture, not one held over from the last frame
                if self._last is not None:
                    self._before, self._apart = self._last, self._shown_for
                self._last, self._shown_for = shown, 1
            else:
                self._shown_for += 1
            for plane, src in zip(planes, shown, strict=True):
                np.copyto(plane, src)
            if index == self.head - 1 and self._before is not None:
                self._step = self._measure()
            return
        self._continue(index - self.head + 1, planes)

    def _measure(self) -> Motion:
        """The per-frame motion the source ended with, kept within what looks like a camera move."""
        assert self._before is not None and self._last is not None
        seen = measure(self._before[0], self._last[0])
        limit = _MAX_STEP * self.width
        dx = min(max(seen.dx / self._apart, -limit), limit)
        dy = min(max(seen.dy / self._apart, -limit), limit)
        return Motion(dx, dy, seen.scale ** (1 / self._apart))

    def _continue(self, k: int, planes: Sequence[np.ndarray]) -> None:
        """Continuation frame ``k`` (1 = the first after the source)."""
        assert self._last is not None
        if self._picture is None:
            self._picture = Picture(self._scene_spec)
            self._scratch = [np.empty_like(plane) for plane in planes]
        # The camera keeps going at the source's pace, easing to a stop with a one-second time constant.
        travelled = self.fps * (1 - math.exp(-k / self.fps))
        step = self._step
        moved = warp_planes(self._last, step.scale**travelled, step.dx * travelled, step.dy * travelled)
        self._picture.draw(k - 1, self._scratch)
        total = self.frame_count - self.head
        u = k / (total + 1)
        a = np.float32(u * u * (3 - 2 * u))
        for plane, old, new in zip(planes, moved, self._scratch, strict=True):
            np.copyto(plane, np.rint(old + (new.astype(np.float32) - old) * a), casting="unsafe")

    def close(self) -> None:
        self.source.close()
