"""A small vector painter: anti-aliased shapes filled onto an RGBA canvas, vectorised with numpy.

Each shape is evaluated only over its bounding box, as the coverage of every pixel there (from the
distance of the pixel's centre to the outline), and laid over what the canvas already holds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vidgate.gateway.render.colour import RGB

Point = tuple[float, float]


class Canvas:
    """Premultiplied RGB and coverage, both float32; ``x``, ``y`` are pixel centres' coordinates."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.paint = np.zeros((height, width, 3), dtype=np.float32)
        self.alpha = np.zeros((height, width), dtype=np.float32)

    def _window(self, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice, np.ndarray, np.ndarray]:
        c0, c1 = max(0, math.floor(x0) - 1), min(self.width, math.ceil(x1) + 1)
        r0, r1 = max(0, math.floor(y0) - 1), min(self.height, math.ceil(y1) + 1)
        xs = (np.arange(c0, max(c0, c1), dtype=np.float32) + np.float32(0.5))[None, :]
        ys = (np.arange(r0, max(r0, r1), dtype=np.float32) + np.float32(0.5))[:, None]
        return slice(r0, r1), slice(c0, c1), xs, ys

    def lay(self, rows: slice, cols: slice, coverage: np.ndarray, colour: RGB, opacity: float = 1.0) -> None:
        """Lay ``colour`` over the canvas where ``coverage`` (a window of it) says."""
        if coverage.size == 0:
            return
        c = np.clip(coverage * np.float32(opacity), 0.0, 1.0, dtype=np.float32)
        paint, alpha = self.paint[rows, cols], self.alpha[rows, cols]
        paint *= (1 - c)[..., None]
        paint += c[..., None] * np.asarray(colour, dtype=np.float32)
        alpha *= 1 - c
        alpha += c

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, colour: RGB, opacity: float = 1.0) -> None:
        rx, ry = max(rx, 0.35), max(ry, 0.35)
        rows, cols, xs, ys = self._window(cx - rx, cy - ry, cx + rx, cy + ry)
        distance = (np.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2) - 1) * min(rx, ry)
        self.lay(rows, cols, np.clip(0.5 - distance, 0.0, 1.0), colour, opacity)

    def box(self, x0: float, y0: float, x1: float, y1: float, colour: RGB, opacity: float = 1.0) -> None:
        """An axis-aligned rectangle, each pixel covered by its exact overlap."""
        rows, cols, xs, ys = self._window(x0, y0, x1, y1)
        across = np.clip(np.minimum(x1, xs + 0.5) - np.maximum(x0, xs - 0.5), 0.0, 1.0)
        down = np.clip(np.minimum(y1, ys + 0.5) - np.maximum(y0, ys - 0.5), 0.0, 1.0)
        self.lay(rows, cols, down * across, colour, opacity)

    def line(self, a: Point, b: Point, width: float, colour: RGB, opacity: float = 1.0) -> None:
        """A segment with round ends, ``width`` across."""
        r = max(width / 2, 0.35)
        rows, cols, xs, ys = self._window(
            min(a[0], b[0]) - r, min(a[1], b[1]) - r, max(a[0], b[0]) + r, max(a[1], b[1]) + r
        )
        self.lay(rows, cols, np.clip(0.5 + r - _segment_distance(xs, ys, a, b), 0.0, 1.0), colour, opacity)

    def polygon(self, points: Sequence[Point], colour: RGB, opacity: float = 1.0) -> None:
        """A closed polygon (any winding, even-odd fill)."""
        px, py = [p[0] for p in points], [p[1] for p in points]
        rows, cols, xs, ys = self._window(min(px), min(py), max(px), max(py))
        distance = np.full(np.broadcast_shapes(xs.shape, ys.shape), np.inf, dtype=np.float32)
        inside = np.zeros(distance.shape, dtype=bool)
        for a, b in zip(points, [*points[1:], points[0]], strict=True):
            distance = np.minimum(distance, _segment_distance(xs, ys, a, b))
            if a[1] != b[1]:
                crosses = (ys < a[1]) != (ys < b[1])
                at = a[0] + (ys - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
                inside ^= crosses & (xs < at)
        signed = np.where(inside, distance, -distance)
        self.lay(rows, cols, np.clip(0.5 + signed, 0.0, 1.0), colour, opacity)

    def straight(self) -> tuple[np.ndarray, np.ndarray]:
        """The canvas as straight (not premultiplied) RGB and its coverage, for a ``Stamp``."""
        rgb = self.paint / np.maximum(self.alpha, np.float32(1e-6))[..., None]
        return rgb, self.alpha


def _segment_distance(xs: np.ndarray, ys: np.ndarray, a: Point, b: Point) -> np.ndarray:
    dx, dy = b[0] - a[0], b[1] - a[1]
    length = dx * dx + dy * dy
    t = np.clip(((xs - a[0]) * dx + (ys - a[1]) * dy) / length, 0.0, 1.0) if length > 0 else np.float32(0.0)
    return np.hypot(xs - (a[0] + t * dx), ys - (a[1] + t * dy))
