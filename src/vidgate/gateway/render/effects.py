"""What changes in place from frame to frame: waves rolling in, a lighthouse beam, rain and snow.

Each is computed per frame but only over the few pixels it touches (crest rows, the beam's wedge,
the particles), so its cost stays small next to the encoder's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from vidgate.gateway.render.colour import OFFSETS, RGB, lin, mix, yuv
from vidgate.gateway.render.dice import Dice, smooth_noise
from vidgate.gateway.render.stage import Stage


def _blend(region: np.ndarray, alpha: np.ndarray, value: float) -> None:
    """``region`` towards ``value`` by ``alpha`` (0..1), rounded back to bytes in place."""
    out = region + (np.float32(value) - region) * alpha
    region[...] = np.rint(out)


class Waves:
    """Lines of foam that roll from the horizon towards the camera, growing as they come.

    Crests are spaced evenly in distance and drawn where perspective puts them: a darker wave face
    under a broken line of foam. Every crest is a window onto one prepared strip (a finer-patterned
    one for far crests), squeezed to the crest's height by picking rows, so drawing it is the same
    integer blend as a ``Stamp``'s.
    """

    SPAN = 10.0  # distances (in multiples of the nearest) over which crests travel
    SPEED = 0.7  # of those per second
    COUNT = 8
    TOP, BOTTOM = -0.3, 2.5  # the strip's extent, in crest thicknesses around the crest line

    def __init__(self, stage: Stage, dice: Dice) -> None:
        self.stage = stage
        self.phases = [(k + dice.uniform(-0.3, 0.3)) * self.SPAN / self.COUNT for k in range(self.COUNT)]
        self.offsets = [2 * dice.integer(0, stage.width // 2) for _ in range(self.COUNT)]
        self.depth = stage.height - stage.horizon
        self.thickest = 0.07 * self.depth
        light = stage.light
        foam = lin(mix(light.surface((0.93, 0.96, 1.0), 1.5), (1.0, 1.0, 1.0), 0.25))
        face = lin(mix(light.water, (0.0, 0.0, 0.0), 0.5))
        width = 2 * stage.width + stage.shot.margin(1.0)
        rows = max(2, math.ceil((self.BOTTOM - self.TOP) * self.thickest))
        # Foam in patches of every length: two octaves of smooth noise, cut off softly.
        x = np.arange(3 * width, dtype=np.float32)  # long enough for the finer, far strip
        noise = smooth_noise(dice, x, 0.03 * stage.width) + 0.5 * smooth_noise(dice, x, 0.008 * stage.width)
        patches = np.clip((noise - np.float32(0.55)) * 3, 0.0, 1.0)
        self.strips = [self._strip(rows, foam, face, patches, scale) for scale in (1, 3)]
        self.picks: dict[int, np.ndarray] = {}  # rows of a strip to draw a crest so many rows tall

    def _strip(
        self, rows: int, foam: np.ndarray, face: np.ndarray, patches: np.ndarray, scale: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(256 - alpha, value * alpha) of luma for a crest ``rows`` tall, its foam ``scale`` times finer.

        Waves are drawn in luma only: foam and face are lighter and darker water, its own hue.
        """
        width = len(patches) // 3
        v = self.TOP + (np.arange(rows) + 0.5) / rows * (self.BOTTOM - self.TOP)
        foam_rows = np.clip(1 - np.abs(v - 0.35) / 0.75, 0.0, 1.0)[:, None]
        face_rows = np.clip(0.65 * (1 - np.abs(v - 1.4) / 1.0), 0.0, 1.0)[:, None]
        pattern = patches[: width * scale : scale][None, :]
        # The face runs the crest's whole length; foam only where it breaks.
        alpha = np.maximum(foam_rows * pattern, face_rows * (0.6 + 0.4 * pattern))
        value = np.where(foam_rows >= face_rows, foam[0], face[0]) + OFFSETS[0]
        keep = np.uint16(256) - np.rint(alpha * 256).astype(np.uint16)
        return keep, (np.rint(alpha * value * 256) + 128).astype(np.uint16)

    def draw(self, planes: Sequence[np.ndarray], t: float) -> None:
        stage, luma = self.stage, planes[0]
        for phase, offset in zip(self.phases, self.offsets, strict=True):
            z = 1 + (phase - self.SPEED * t) % self.SPAN
            thick = self.thickest / z
            y = stage.horizon + self.depth / z
            top = round(y + self.TOP * thick)
            height = min(stage.height - top, round((self.BOTTOM - self.TOP) * thick))
            if thick < 1.5 or height < 3:  # too far to make out
                continue
            x = offset + stage.shot.offset(t, stage.ground_depth(y))
            keep, paint = self.strips[0 if z < 3 else 1]
            # Squeeze the strip to the crest's height: pick evenly spaced rows of it.
            pick = self.picks.get(height)
            if pick is None:
                pick = self.picks[height] = ((np.arange(height) + 0.5) * (keep.shape[0] / height)).astype(np.intp)
            cols = slice(x, x + stage.width)
            region = luma[top : top + height]
            blended = np.multiply(region, keep[pick, cols], dtype=np.uint16)
            blended += paint[pick, cols]
            blended >>= 8
            region[...] = blended


class Beam:
    """A lighthouse's turning beam, as seen from below the lamp: a narrow wedge of light that swings
    from one side to the other, longest when it points across the view, tilting down towards the
    horizon as it turns away and up as it turns towards the camera, which it lights with a flash.

    The wedge is kept as a list of its pixels (offsets from the lamp and how lit each is); each
    frame moves them by the turn's length, side and tilt and blends just those pixels.
    """

    PERIOD = 5.0  # seconds per turn
    TILT = 0.25  # slope of the beam when it points straight away from the camera

    def __init__(self, stage: Stage, lamp: tuple[float, float], depth: float, dice: Dice) -> None:
        self.stage, self.lamp, self.depth = stage, lamp, depth
        # Start pointing across the wider side of the frame, so the first seconds show the sweep.
        wide = 1 if lamp[0] < stage.width / 2 else -1
        self.phase = wide * math.pi / 2 - 0.35 + dice.uniform(-0.25, 0.25)
        self.reach = math.ceil(0.75 * stage.width)
        half = max(4, math.ceil(0.06 * self.reach + 0.01 * stage.unit))
        self.core = max(1.5, 0.008 * stage.unit)
        dx = np.arange(self.reach, dtype=np.float32) + np.float32(0.5)
        dy = np.arange(-half, half, dtype=np.float32) + np.float32(0.5)
        # Closeness to the beam's axis: 1 on it, 0 at its edge; the wedge widens with distance.
        across = np.clip(1 - np.abs(dy)[None, :] / (self.core + 0.05 * dx[:, None]), 0.0, 1.0) ** 1.5
        # Pixels ordered by distance from the lamp, so a shorter beam is a prefix of the list.
        along, offset = np.nonzero(across > 1 / 32)
        self.along, self.rise = along.astype(np.intp), (offset - half).astype(np.intp)
        self.slope = along.astype(np.float32) * np.float32(self.TILT)  # rows of tilt per unit of ``away``
        self.light = across[along, offset]
        self.colour = np.float32(yuv((1.0, 0.93, 0.7))[0])

    def draw(self, planes: Sequence[np.ndarray], t: float) -> None:
        luma = planes[0]
        h, w = luma.shape
        angle = 2 * math.pi * t / self.PERIOD + self.phase
        across, away = math.sin(angle), math.cos(angle)
        length = self.reach * (0.2 + 0.8 * abs(across))
        lx = round(self.lamp[0] - self.stage.shot.offset(t, self.depth))
        # Pixels are ordered by distance from the lamp: the part of the beam that is long enough and
        # inside the frame's width is a prefix of the list.
        inside = w - lx if across >= 0 else lx
        count = int(np.searchsorted(self.along, min(math.ceil(length), max(inside, 0))))
        if count == 0:
            return
        along = self.along[:count]
        xs = lx + along if across >= 0 else lx - 1 - along
        ys = round(self.lamp[1]) + self.rise[:count] + np.rint(self.slope[:count] * np.float32(away)).astype(np.intp)
        # Brightness along the beam, per distance from the lamp, then per pixel.
        steps = np.arange(int(along[-1]) + 1, dtype=np.float32)
        fade = np.clip(1 - steps / np.float32(length), 0.0, 1.0)
        fade *= np.sqrt(fade) * np.float32(0.65 * (0.5 + 0.5 * abs(across)))
        alpha = self.light[:count] * fade[along]
        if ys[0] < 0 or ys.min() < 0 or ys.max() >= h:
            seen = (ys >= 0) & (ys < h)
            xs, ys, alpha = xs[seen], ys[seen], alpha[seen]
        # Light, drawn in luma only: the beam brightens what it crosses and keeps its hue.
        values = luma[ys, xs].astype(np.float32)
        luma[ys, xs] = np.rint(values + (self.colour - values) * alpha)
        if away < -0.9:  # facing the camera: the lamp flares
            r = round(self.core * 6 * (-away - 0.9) / 0.1) + 1
            flare = np.arange(-r, r + 1, dtype=np.float32)
            glow = np.clip(1 - np.hypot(flare[:, None], flare[None, :]) / r, 0.0, 1.0) * np.float32(0.9)
            top, left = round(self.lamp[1]) - r, lx - r
            sx, sy = max(0, -left), max(0, -top)
            ex, ey = min(glow.shape[1], w - left), min(glow.shape[0], h - top)
            if sx < ex and sy < ey:
                _blend(luma[top + sy : top + ey, left + sx : left + ex], glow[sy:ey, sx:ex], float(self.colour))


class Precipitation:
    """Rain streaks or snowflakes falling through the frame, each on its own looping path."""

    def __init__(self, stage: Stage, dice: Dice, kind: str) -> None:
        self.stage, self.snow = stage, kind == "snow"
        w, h = stage.width, stage.height
        count = max(12, w * h // (2600 if self.snow else 5000))
        draws = dice.array(5 * count).reshape(5, count)
        self.x, self.y = draws[0] * w, draws[1] * h
        if self.snow:
            self.speed = (0.06 + 0.1 * draws[2]) * h
            self.size = (draws[3] > 0.6).astype(np.intp)  # the nearer flakes are crosses
            self.sway = draws[4] * 2 * math.pi
            colour: RGB = mix(stage.light.surface((1.0, 1.0, 1.0), 1.2), (1.0, 1.0, 1.0), 0.35)
            self.alpha = np.float32(0.85)
        else:
            self.speed = (0.9 + 0.5 * draws[2]) * h
            self.length = max(3, round(0.035 * h))
            self.slant = 0.12
            colour = mix(stage.light.surface((0.8, 0.82, 0.88), 1.3), stage.light.horizon, 0.3)
            self.alpha = np.float32(0.25)
        self.colour = yuv(colour)

    def draw(self, planes: Sequence[np.ndarray], t: float) -> None:
        w, h = self.stage.width, self.stage.height
        if self.snow:
            y = (self.y + self.speed * t) % h
            x = (self.x + 0.012 * w * np.sin(0.9 * t + self.sway) + 0.01 * w * t) % w
            xs, ys = x.astype(np.intp), y.astype(np.intp)
            big = self.size == 1
            xs = np.concatenate([xs, (xs[big] + 1) % w, (xs[big] - 1) % w, xs[big], xs[big]])
            ys = np.concatenate([ys, ys[big], ys[big], np.clip(ys[big] + 1, 0, h - 1), np.clip(ys[big] - 1, 0, h - 1)])
        else:
            y0 = (self.y + self.speed * t) % (h + self.length) - self.length
            steps = np.arange(self.length, dtype=np.float64)
            ys_f = y0[:, None] + steps[None, :]
            xs_f = (self.x[:, None] + self.slant * (self.speed[:, None] * t + steps[None, :])) % w
            keep = (ys_f >= 0) & (ys_f < h)
            xs, ys = xs_f[keep].astype(np.intp), ys_f[keep].astype(np.intp)
        luma = planes[0]
        values = luma[ys, xs].astype(np.float32)
        luma[ys, xs] = np.rint(values + (np.float32(self.colour[0]) - values) * self.alpha)
        if self.snow:
            for plane, value in zip(planes[1:], self.colour[1:], strict=True):
                cy, cx = ys // 2, xs // 2
                chroma = plane[cy, cx].astype(np.float32)
                plane[cy, cx] = np.rint(chroma + (np.float32(value) - chroma) * self.alpha)
