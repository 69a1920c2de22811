"""Global motion of whole pictures: moving and magnifying a frame, and measuring how the content
moved between two frames. Pure numpy over yuv420p planes.

Measuring is cheap on purpose: the luma is shrunk to about 128 pixels wide, the shift found by
cross-correlation (FFT), then the magnification by trying a few scales. That is enough to carry on a
pan or a push-in, which is what continuing a clip needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np

_SMALL_WIDTH: Final = 128
_SCALES: Final = np.linspace(0.96, 1.04, 17)


@dataclass(frozen=True, slots=True)
class Motion:
    """How content moves from one frame to the next: ``dx``, ``dy`` luma pixels and ``scale`` about the centre."""

    dx: float = 0.0
    dy: float = 0.0
    scale: float = 1.0


def warp(plane: np.ndarray, scale: float, dx: float, dy: float) -> np.ndarray:
    """``plane`` with its content magnified ``scale`` times about the centre, then moved by ``dx``, ``dy``.

    Nearest-neighbour sampling, and edges held where content moves in from outside the picture.
    """
    h, w = plane.shape
    cx, cy = w / 2, h / 2
    xs = np.clip(np.floor(cx + (np.arange(w) + 0.5 - cx - dx) / scale), 0, w - 1).astype(np.intp)
    ys = np.clip(np.floor(cy + (np.arange(h) + 0.5 - cy - dy) / scale), 0, h - 1).astype(np.intp)
    return np.take(plane[ys], xs, axis=1)


def warp_planes(planes: Sequence[np.ndarray], scale: float, dx: float, dy: float) -> list[np.ndarray]:
    """``warp`` of each yuv420p plane, the chroma planes by half the move."""
    return [warp(plane, scale, dx / (1 if i == 0 else 2), dy / (1 if i == 0 else 2)) for i, plane in enumerate(planes)]


def measure(before: np.ndarray, after: np.ndarray) -> Motion:
    """The motion that takes luma ``before`` to luma ``after`` (a shift, then the scale that fits best)."""
    factor = max(1, before.shape[1] // _SMALL_WIDTH)
    a, b = _shrink(before, factor), _shrink(after, factor)
    dx, dy = _shift(a, b)
    best, best_error = 1.0, np.inf
    for scale in _SCALES:
        error = _misfit(_resample(a, float(scale), dx, dy), b)
        if error < best_error - 1e-6:  # ties go to the smallest scale tried that fits as well
            best, best_error = float(scale), error
    # With the scale known, the shift again: a zoom off-centre is part shift, part scale.
    dx, dy = _refine(a, b, best, dx, dy)
    return Motion(dx * factor, dy * factor, best)


def _shrink(plane: np.ndarray, factor: int) -> np.ndarray:
    h, w = (plane.shape[0] // factor) * factor, (plane.shape[1] // factor) * factor
    return plane[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3), dtype=np.float64)


def _shift(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """The whole-picture shift from ``a`` to ``b`` where their cross-correlation peaks, to a fraction
    of a pixel. Not whitened (as phase correlation is): in an encoded clip the faint high frequencies
    are mostly the codec's blocks, which sit still and would pull the answer to no motion."""
    window = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    fa = np.fft.fft2((a - a.mean()) * window)
    fb = np.fft.fft2((b - b.mean()) * window)
    surface = np.fft.ifft2(fb * np.conj(fa)).real
    py, px = np.unravel_index(int(np.argmax(surface)), surface.shape)
    h, w = surface.shape

    def peak(values: tuple[float, float, float]) -> float:
        left, mid, right = values
        bend = left - 2 * mid + right
        return 0.0 if bend >= 0 else 0.5 * (left - right) / bend

    fx = peak((surface[py, (px - 1) % w], surface[py, px], surface[py, (px + 1) % w]))
    fy = peak((surface[(py - 1) % h, px], surface[py, px], surface[(py + 1) % h, px]))
    dx = px + fx if px <= w // 2 else px + fx - w
    dy = py + fy if py <= h // 2 else py + fy - h
    return float(dx), float(dy)


def _refine(a: np.ndarray, b: np.ndarray, scale: float, dx: float, dy: float) -> tuple[float, float]:
    best, best_error = (dx, dy), _misfit(_resample(a, scale, dx, dy), b)
    for ox in (-0.5, -0.25, 0.0, 0.25, 0.5):
        for oy in (-0.5, -0.25, 0.0, 0.25, 0.5):
            error = _misfit(_resample(a, scale, dx + ox, dy + oy), b)
            if error < best_error - 1e-6:
                best, best_error = (dx + ox, dy + oy), error
    return best


def _resample(plane: np.ndarray, scale: float, dx: float, dy: float) -> np.ndarray:
    """``warp`` with bilinear sampling: measuring needs sub-pixel moves to count."""
    h, w = plane.shape
    cx, cy = w / 2, h / 2
    xs = np.clip(cx + (np.arange(w) + 0.5 - cx - dx) / scale - 0.5, 0, w - 1)
    ys = np.clip(cy + (np.arange(h) + 0.5 - cy - dy) / scale - 0.5, 0, h - 1)
    x0, y0 = np.minimum(xs.astype(np.intp), w - 2), np.minimum(ys.astype(np.intp), h - 2)
    fx, fy = (xs - x0)[None, :], (ys - y0)[:, None]
    top = plane[y0][:, x0] * (1 - fx) + plane[y0][:, x0 + 1] * fx
    bottom = plane[y0 + 1][:, x0] * (1 - fx) + plane[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def _misfit(moved: np.ndarray, target: np.ndarray) -> float:
    """Mean squared difference over the middle of the picture, where held edges do not count."""
    h, w = target.shape
    y0, x0 = h // 5, w // 5
    inner = (slice(y0, h - y0), slice(x0, w - x0))
    return float(np.mean((moved[inner] - target[inner]) ** 2))
