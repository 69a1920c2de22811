"""The near ground things stand on: a headland out of the water, a shore, a road.

Painted once, like the landscape, but only when something needs them: a lighthouse its headland,
an animal by the sea its shore, a car its road.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidgate.gateway.render.colour import RGB, Mixture, mix
from vidgate.gateway.render.dice import Dice
from vidgate.gateway.render.layers import GRASS, SNOW
from vidgate.gateway.render.stage import Band, Stage
from vidgate.gateway.render.stamp import Painter, Stamp, paint

CLIFF: RGB = (0.38, 0.32, 0.28)
SAND: RGB = (0.86, 0.76, 0.56)
ASPHALT: RGB = (0.2, 0.2, 0.22)
LINES: RGB = (0.92, 0.9, 0.8)


@dataclass(frozen=True, slots=True)
class Footing:
    """Where something can stand: a world x (at ``depth``) and the luma row of the ground there."""

    x: float
    y: float
    depth: float


def _heightfield(stage: Stage, top: np.ndarray, first: int, painter: Painter, depth: float) -> Band:
    planes = paint(len(top), first, stage.height, painter)
    rows = np.arange(first, stage.height, dtype=np.float32)[:, None] + np.float32(0.5)
    coverage = np.clip(rows - top[None, :] + np.float32(0.5), 0.0, 1.0)
    return Band(Stamp(planes, coverage), 0, first, depth, stage.shot)


def headland(stage: Stage, dice: Dice) -> tuple[Band, Footing]:
    """Rock with grass on top, from one edge of the frame into the water, and the spot at its end."""
    depth = 0.85
    width, unit, light = stage.canvas_width(depth), stage.unit, stage.light
    xs = np.arange(width, dtype=np.float32) + np.float32(0.5)
    left = dice.uniform() < 0.5
    spot = stage.span(depth, 0.14, 0.86, 0.0 if left else 1.0)
    plateau = stage.horizon - 0.03 * stage.height
    edge = spot + 0.09 * stage.width if left else spot - 0.09 * stage.width
    beyond = (xs - edge) if left else (edge - xs)  # > 0 past the plateau's end, towards the water
    drop = np.clip(beyond / np.float32(0.06 * stage.width), 0.0, 1.0)
    sea_level = stage.horizon + 0.08 * (stage.height - stage.horizon)
    rough = np.sin(xs / np.float32(0.011 * unit)) * np.float32(0.006 * unit)
    rough += np.sin(xs / np.float32(0.004 * unit)) * np.float32(0.004 * unit)
    top = plateau + (sea_level - plateau) * drop**1.5 + rough
    top = np.where(beyond > 0.06 * stage.width, np.float32(stage.height + 4), top).astype(np.float32)
    # Ledges: darker bands of rock that follow the ground's line, deeper with distance below it.
    ledge = np.float32(2 * np.pi / max(0.05 * stage.height, 2.0))
    rock, turf = light.surface(CLIFF), light.surface(SNOW if stage.scene.snow_cover else GRASS)
    dark = np.float32(0.3 * stage.height)
    # The cliff's face is lit when it is turned to the sun, as the sky's glow lights the rest.
    toward = (light.across > 0.5) == left
    lit_face = (np.float32(0.9 if toward else 0.3) * np.clip(beyond / np.float32(0.01 * stage.width) + 1, 0, 1))[
        None, :
    ]

    def painter(xs: np.ndarray, ys: np.ndarray) -> Mixture:
        below = ys - top[None, :]
        grass = (below < 0.012 * unit).astype(np.float32)
        strata = 1 - np.float32(0.18) * (np.sin(below * ledge + xs * np.float32(0.01)) > 0.5)
        shade = (1 - np.float32(0.4) * np.clip(below / dark, 0, 1)) * strata * (1 + lit_face)
        return Mixture().add(grass, turf).add((1 - grass) * shade, rock)

    first = max(0, 2 * (int(plateau - 0.02 * unit) // 2))
    return _heightfield(stage, top, first, painter, depth), Footing(spot, plateau + 1, depth)


def shore(stage: Stage) -> tuple[Band, float]:
    """A strip of sand (or snow) along the bottom of the frame; returns it and the row to stand on."""
    width = stage.canvas_width(1.0)
    xs = np.arange(width, dtype=np.float32) + np.float32(0.5)
    line = stage.height - 0.13 * stage.height
    top = (line + np.float32(0.012 * stage.height) * np.sin(xs / np.float32(0.09 * stage.width))).astype(np.float32)
    base = stage.light.surface(SNOW if stage.scene.snow_cover else SAND)
    wet = mix(base, stage.light.water, 0.35)

    def painter(xs: np.ndarray, ys: np.ndarray) -> Mixture:
        edge = (ys - top[None, :] < 0.01 * stage.height).astype(np.float32)
        return Mixture().add(edge, wet).add(1 - edge, base)

    first = max(0, 2 * (int(line - 0.02 * stage.height) // 2))
    return _heightfield(stage, top, first, painter, 1.0), stage.height - 0.05 * stage.height


def road(stage: Stage, dice: Dice) -> tuple[Band, float, float]:
    """A road across the near ground with a dashed centre line; returns it, its lane row and depth."""
    top_row = 2 * (round(stage.horizon + 0.62 * (stage.height - stage.horizon)) // 2)
    bottom_row = min(stage.height, top_row + 2 * max(2, round(0.09 * stage.height)))
    depth = stage.ground_depth((top_row + bottom_row) / 2)
    height = bottom_row - top_row
    line = max(1.0, 0.05 * height)
    period, phase = np.float32(0.09 * stage.width), np.float32(dice.uniform(0, 0.09 * stage.width))
    asphalt, lines = stage.light.surface(ASPHALT), stage.light.surface(LINES, 1.1)

    def painter(xs: np.ndarray, ys: np.ndarray) -> Mixture:
        y = ys - np.float32(top_row)
        edges = (y < line) | (y >= height - line)
        dashes = (np.abs(y - height / 2) < line / 2 + 0.5) & ((xs + phase) % period < period / 2)
        painted = (edges | dashes).astype(np.float32)
        return Mixture().add(painted, lines).add(1 - painted, asphalt)

    width = stage.canvas_width(depth)
    planes = paint(width, top_row, bottom_row, painter)
    band = Band(Stamp(planes, np.ones((height, width), np.float32)), 0, top_row, depth, stage.shot)
    return band, top_row + 0.62 * height, depth
