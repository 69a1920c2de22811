"""The geometry every part of a picture shares, and the two ways a prepared part is drawn.

A part is painted once per render; each frame it is either copied (opaque backdrops) or blended
(``Stamp``s) at the shift its depth gets from the camera: whole-pixel moves that x264 predicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from vidgate.gateway.render.camera import Shot
from vidgate.gateway.render.colour import Light
from vidgate.gateway.render.scene import Scene
from vidgate.gateway.render.stamp import Stamp

GROUND_FAR = 0.25  # depth of the ground (or water) at the horizon


@dataclass(frozen=True, slots=True)
class Stage:
    """Frame size, where the horizon is, the light and the camera path of one render."""

    width: int
    height: int
    horizon: int  # luma row of the horizon (even)
    scene: Scene
    light: Light
    shot: Shot

    @property
    def unit(self) -> float:
        """The shorter side: sizes are fractions of it, so portrait and landscape frames both fit."""
        return float(min(self.width, self.height))

    @property
    def sun(self) -> tuple[float, float]:
        """Where the sun or moon sits, in frame pixels."""
        return self.light.across * self.width, self.horizon * (1 - self.light.height)

    def ground_depth(self, y: float) -> float:
        """The depth (parallax) of the ground at luma row ``y``: far at the horizon, 1 at the bottom."""
        down = (y - self.horizon) / max(self.height - self.horizon, 1)
        return GROUND_FAR + (1 - GROUND_FAR) * min(max(down, 0.0), 1.0)

    def canvas_width(self, depth: float) -> int:
        return self.width + self.shot.margin(depth)

    def span(self, depth: float, lo: float, hi: float, at: float) -> float:
        """A world x for something at ``depth`` that stays within ``lo..hi`` (fractions of the width)
        of the frame while the camera travels; ``at`` (0..1) picks where in the allowed range."""
        travel = self.shot.travel * depth
        start, end = lo * self.width + travel, hi * self.width
        if start > end:  # the camera travels further than the range is wide: centre the journey
            start = end = (lo + hi) / 2 * self.width + travel / 2
        return start + (end - start) * at


class Drawable(Protocol):
    """One part of the picture; parts are drawn in order, far to near, each frame."""

    def draw(self, planes: Sequence[np.ndarray], t: float) -> None: ...


class Backdrop:
    """Opaque rows from ``top`` down, painted wider than the frame and copied at the camera's shift.

    With ``near_depth`` the rows are a ground plane going away: each strip of rows slides at the
    depth of its distance, from ``depth`` at the top to ``near_depth`` at the bottom. Strips are
    pairs of 16-row macroblock rows of the frame, so each of x264's blocks moves as one.
    """

    STRIP = 32

    def __init__(
        self, planes: list[np.ndarray], top: int, depth: float, shot: Shot, near_depth: float | None = None
    ) -> None:
        self.planes, self.top, self.depth, self.shot = planes, top, depth, shot
        rows = planes[0].shape[0]
        near = depth if near_depth is None else near_depth
        cuts = sorted({0, rows, *range(-top % self.STRIP, rows, self.STRIP)} if near != depth else {0, rows})
        self.starts = cuts[:-1]
        self.ends = cuts[1:]
        middles = (np.asarray(self.starts) + np.asarray(self.ends)) / 2
        self.depths = (depth + (near - depth) * middles / max(rows, 1)).tolist()

    def draw(self, planes: Sequence[np.ndarray], t: float) -> None:
        shifts = [self.shot.offset(t, depth) for depth in self.depths]
        index, count = 0, len(shifts)
        while index < count:  # neighbouring strips with the same shift are copied as one
            last = index
            while last + 1 < count and shifts[last + 1] == shifts[index]:
                last += 1
            self._copy(planes, self.starts[index], self.ends[last], shifts[index])
            index = last + 1

    def _copy(self, planes: Sequence[np.ndarray], start: int, end: int, shift: int) -> None:
        for index, (plane, source) in enumerate(zip(planes, self.planes, strict=True)):
            step = 1 if index == 0 else 2
            first, last, x = start // step, end // step, shift // step
            top = self.top // step
            np.copyto(plane[top + first : top + last], source[first:last, x : x + plane.shape[1]])


class Scenery:
    """The still parts above the horizon (the sky, then ranges, skylines and tree lines), composed
    again only when the camera has moved one of them by a whole pixel.

    Each part's drawing depends on nothing but its shift, so the composite of the first *k* parts
    is kept for every *k*: when only the nearest ridge has moved, only it is drawn again, over the
    kept composite of those behind it, and a frame where nothing moved is one copy.
    """

    def __init__(self, parts: Sequence[Backdrop | Band], stage: Stage) -> None:
        self.parts, self.shot = list(parts), stage.shot
        shape = (stage.horizon, stage.width)
        self.kept = [[np.zeros((shape[0] // s, shape[1] // s), np.uint8) for s in (1, 2, 2)] for _ in self.parts]
        self.shifts: list[int | None] = [None] * len(self.parts)

    def draw(self, planes: Sequence[np.ndarray], t: float) -> None:
        shifts = [self.shot.offset(t, part.depth) for part in self.parts]
        first = next((k for k, (a, b) in enumerate(zip(shifts, self.shifts, strict=True)) if a != b), len(shifts))
        for k in range(first, len(self.parts)):
            if k:
                for kept, behind in zip(self.kept[k], self.kept[k - 1], strict=True):
                    np.copyto(kept, behind)
            self.parts[k].draw(self.kept[k], t)
            self.shifts[k] = shifts[k]
        for plane, kept in zip(planes, self.kept[-1], strict=True):
            np.copyto(plane[: kept.shape[0]], kept)


class Band:
    """A ``Stamp`` fixed in the world at ``depth``: it moves only with the camera."""

    def __init__(self, stamp: Stamp, x: int, y: int, depth: float, shot: Shot) -> None:
        self.stamp, self.x, self.y, self.depth, self.shot = stamp, x, y, depth, shot

    def draw(self, planes: Sequence[np.ndarray], t: float) -> None:
        self.stamp.blit(planes, self.x - self.shot.offset(t, self.depth), self.y)


@dataclass(frozen=True, slots=True)
class Figure:
    """A drawing and the point of it (in its own pixels) that rests on its footing."""

    stamp: Stamp
    anchor: tuple[float, float]


Path = Callable[[float], tuple[float, float, int]]  # t -> (x, y, figure index; < 0 hides it)


class Sprite:
    """Figures drawn where ``path`` says at each moment; ``depth`` adds the camera's parallax."""

    def __init__(
        self, figures: Sequence[Figure], path: Path, depth: float, stage: Stage, waterline: float | None = None
    ) -> None:
        self.figures, self.path, self.depth, self.stage, self.waterline = figures, path, depth, stage, waterline

    def draw(self, planes: Sequence[np.ndarray], t: float) -> None:
        x, y, index = self.path(t)
        if index < 0:
            return
        figure = self.figures[index]
        left = round(x - figure.anchor[0]) - self.stage.shot.offset(t, self.depth)
        bottom = None if self.waterline is None else round(self.waterline)
        figure.stamp.blit(planes, left, round(y - figure.anchor[1]), bottom)
