"""Pictures with transparency, prepared once so that drawing one into a frame is integer arithmetic.

A ``Stamp`` holds, for each yuv420p plane, ``256 - alpha`` and ``value * alpha`` in 8-bit fixed
point: blending it anywhere is then a multiply, an add and a shift over the rows it covers. A big stamp
with a thin soft edge (a mountain range, a headland) is instead copied where it is opaque and
blended only along that edge, a fraction of the work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from vidgate.gateway.render.colour import Mixture, full_planes, quarter

# Evaluates a picture at pixel centres: columns ``(1, w)`` and rows ``(h, 1)``, in luma pixels.
Painter = Callable[[np.ndarray, np.ndarray], Mixture]

_SOLID_MIN_PIXELS = 16_384


def paint(width: int, top: int, bottom: int, painter: Painter) -> list[np.ndarray]:
    """Float yuv420p planes of a picture over rows ``top..bottom`` (even) and columns ``0..width`` (even).

    The painter is evaluated once, at luma resolution; chroma mixes the 2x2 averages of its weights,
    which is exactly the average colour of each luma quad.
    """
    xs = np.arange(width, dtype=np.float32) + np.float32(0.5)
    ys = np.arange(top, bottom, dtype=np.float32) + np.float32(0.5)
    mixture = painter(xs[None, :], ys[:, None])
    shape = (bottom - top, width)
    luma = np.clip(mixture.plane(0, shape), 16, 235)
    halved = mixture.halved()
    chroma = [np.clip(halved.plane(c, (shape[0] // 2, shape[1] // 2)), 16, 240) for c in (1, 2)]
    return [luma, *chroma]


class Stamp:
    """A picture in float yuv420p planes with coverage ``alpha`` (full resolution), cropped to where
    it shows and ready to blend."""

    __slots__ = ("edges", "height", "masks", "offset", "solid", "width")

    def __init__(self, planes: Sequence[np.ndarray], alpha: np.ndarray) -> None:
        alpha = np.clip(alpha, 0.0, 1.0, dtype=np.float32)
        chroma_alpha = quarter(alpha)
        rows, cols = np.nonzero(chroma_alpha > 1 / 512)
        self.masks: list[tuple[np.ndarray, np.ndarray]] = []
        self.solid: list[tuple[np.ndarray, np.ndarray, int]] = []
        self.edges: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        if rows.size == 0:
            self.offset, self.width, self.height = (0, 0), 0, 0
            return
        # Crop to the covered area (in whole chroma samples) so nothing blends transparent pixels.
        r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
        self.offset, self.width, self.height = (2 * c0, 2 * r0), 2 * (c1 - c0), 2 * (r1 - r0)
        alphas = [alpha[2 * r0 : 2 * r1, 2 * c0 : 2 * c1], chroma_alpha[r0:r1, c0:c1], chroma_alpha[r0:r1, c0:c1]]
        crops = [planes[0][2 * r0 : 2 * r1, 2 * c0 : 2 * c1], planes[1][r0:r1, c0:c1], planes[2][r0:r1, c0:c1]]
        # Mostly fully opaque or fully clear, with a thin soft edge: copying beats blending.
        soft = float(np.count_nonzero((alphas[0] > 0) & (alphas[0] < 1))) / alphas[0].size
        if alphas[0].size >= _SOLID_MIN_PIXELS and soft < 0.1:
            for plane, a in zip(crops, alphas, strict=True):
                full = a >= 1
                # From this row down the picture is opaque all across (a ridge's body): plain copies.
                partial = np.nonzero(~full.all(axis=1))[0]
                below = int(partial[-1]) + 1 if partial.size else 0
                self.solid.append((full, np.rint(np.clip(plane, 0, 255)).astype(np.uint8), below))
                r, c = np.nonzero((a > 1 / 512) & ~full)
                order = np.argsort(c, kind="stable")  # by column: what shows of them is a slice
                r, c = r[order], c[order]
                keep, paint_ = _mask(a[r, c], plane[r, c] * a[r, c])
                self.edges.append((r.astype(np.intp), c.astype(np.intp), keep, paint_))
        else:
            self.masks = [_mask(a, plane * a) for plane, a in zip(crops, alphas, strict=True)]

    @classmethod
    def from_rgb(cls, rgb: np.ndarray, alpha: np.ndarray) -> Stamp:
        """From an ``(h, w, 3)`` straight RGB picture and its coverage."""
        h, w = alpha.shape
        if h % 2 or w % 2:  # even sides, so each chroma sample covers whole luma quads
            rgb = np.pad(rgb, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            alpha = np.pad(alpha, ((0, h % 2), (0, w % 2)))
        alpha = np.clip(alpha, 0.0, 1.0, dtype=np.float32)
        luma, cb, cr = full_planes(rgb)
        # Chroma premultiplied at full resolution, then averaged: exact along soft edges.
        chroma_alpha = np.maximum(quarter(alpha), np.float32(1e-6))
        return cls([luma, quarter(cb * alpha) / chroma_alpha, quarter(cr * alpha) / chroma_alpha], alpha)

    def blit(self, planes: Sequence[np.ndarray], x: int, y: int, bottom: int | None = None) -> None:
        """Blend into yuv420p ``planes`` with the picture's top-left corner at luma ``(x, y)``.

        It may hang over any edge; rows from luma row ``bottom`` down are left alone.
        """
        x, y = x + self.offset[0], y + self.offset[1]
        for index, plane in enumerate(planes):
            if index >= len(self.masks) and index >= len(self.solid):
                return
            step = 1 if index == 0 else 2
            px, py = x // step, y // step
            n_rows, n_cols = (self.height, self.width) if step == 1 else (self.height // 2, self.width // 2)
            limit = plane.shape[0] if bottom is None else min(plane.shape[0], bottom // step)
            sy, sx = max(0, -py), max(0, -px)
            ey, ex = min(n_rows, limit - py), min(n_cols, plane.shape[1] - px)
            if sy >= ey or sx >= ex:
                continue
            region = plane[py + sy : py + ey, px + sx : px + ex]
            if self.solid:
                full, values, below = self.solid[index]
                split = min(max(below, sy), ey) - sy
                np.copyto(region[:split], values[sy : sy + split, sx:ex], where=full[sy : sy + split, sx:ex])
                np.copyto(region[split:], values[sy + split : ey, sx:ex])
                rows, cols, keep, paint_ = self.edges[index]
                lo, hi = np.searchsorted(cols, (sx, ex))
                rows, cols, keep, paint_ = rows[lo:hi], cols[lo:hi], keep[lo:hi], paint_[lo:hi]
                if sy > 0 or ey < n_rows:
                    inside = (rows >= sy) & (rows < ey)
                    rows, cols, keep, paint_ = rows[inside], cols[inside], keep[inside], paint_[inside]
                r, c = rows + py, cols + px
                plane[r, c] = (plane[r, c] * keep + paint_) >> 8
                continue
            keep, paint_ = self.masks[index]
            blended = np.multiply(region, keep[sy:ey, sx:ex], dtype=np.uint16)
            blended += paint_[sy:ey, sx:ex]
            blended >>= 8
            region[...] = blended


def _mask(alpha: np.ndarray, premultiplied: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(256 - alpha, value * alpha + 1/2) in 8-bit fixed point; the half rounds the final shift."""
    coverage = np.rint(alpha * 256).astype(np.uint16)
    paint_ = np.rint(np.clip(premultiplied, 0, 255) * 256).astype(np.uint16) + np.uint16(128)
    return (np.uint16(256) - coverage, paint_)


def opaque_planes(planes: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Float planes rounded to the bytes a frame holds."""
    return [np.rint(np.clip(p, 0, 255)).astype(np.uint8) for p in planes]
