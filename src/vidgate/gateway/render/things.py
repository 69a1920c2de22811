"""Where the named objects go and how they move: afloat, on the ground, on the road, in the sky.

Things are placed in the world so they stay in view while the camera travels, sized by how far
down the frame (how near) they stand, and given a small motion of their own: a boat bobs, a whale
surfaces and blows, fish jump, birds flap across, a car drives by.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vidgate.gateway.render import figures
from vidgate.gateway.render.dice import Dice
from vidgate.gateway.render.effects import Beam
from vidgate.gateway.render.ground import Footing, headland, road, shore
from vidgate.gateway.render.stage import Band, Drawable, Figure, Sprite, Stage

_COATS = {
    "deer": ((0.58, 0.38, 0.22), (0.5, 0.34, 0.2)),
    "horse": ((0.36, 0.22, 0.14), (0.12, 0.1, 0.1), (0.85, 0.82, 0.78), (0.6, 0.4, 0.25)),
    "dog": ((0.62, 0.46, 0.3), (0.15, 0.13, 0.12), (0.85, 0.8, 0.7)),
    "fox": ((0.86, 0.4, 0.12),),
}
_CARS = ((0.75, 0.1, 0.1), (0.12, 0.3, 0.7), (0.9, 0.75, 0.15), (0.9, 0.9, 0.9), (0.15, 0.15, 0.18))
_LAND = ("tree", "deer", "horse", "dog", "fox", "lighthouse")


@dataclass
class Population:
    """The things of a scene, in the order they are drawn: sky, water, then the near ground."""

    sky: list[Drawable] = field(default_factory=list)
    water: list[Drawable] = field(default_factory=list)
    near: list[Drawable] = field(default_factory=list)


def populate(stage: Stage, dice: Dice) -> Population:
    scene, light, unit = stage.scene, stage.light, stage.unit
    placed = Population()
    names: list[str] = list(scene.things)
    sun_right = light.across > 0.5
    lamp_lit = scene.time in ("dusk", "night")
    if "birds" in names:
        placed.sky += _flock(stage, dice.child("birds"))
    afloat: list[str] = [n for n in names if n in ("boat", "whale", "fish")] if scene.sea else []
    for slot, kind in enumerate(afloat):
        d = dice.child(kind)
        at = (slot + d.uniform(0.2, 0.8)) / len(afloat)
        placed.water += _afloat(stage, d, kind, at)
    if "lighthouse" in names and scene.sea:
        band, spot = headland(stage, dice.child("headland"))
        placed.near.append(band)
        figure, lamp = figures.lighthouse(0.42 * unit, light, lamp_lit, sun_right)
        placed.near.append(_standing(stage, figure, spot))
        if lamp_lit:
            placed.near.append(Beam(stage, (spot.x + lamp[0], spot.y + lamp[1]), spot.depth, dice.child("beam")))
        names.remove("lighthouse")
    land = [n for n in names if n in _LAND]
    footings: list[tuple[str, Footing, float]] = []
    if land and scene.sea:
        band, row = shore(stage)
        placed.near.append(band)
        for slot, name in enumerate(land):
            x = stage.span(1.0, 0.1, 0.9, (slot + dice.uniform(0.3, 0.7)) / len(land))
            footings.append((name, Footing(x, row, 1.0), 0.8))
    else:
        rows = sorted(dice.uniform(0.35, 0.85) for _ in land)
        for slot, (name, down) in enumerate(zip(land, rows, strict=True)):
            y = stage.horizon + down * (stage.height - stage.horizon)
            depth = stage.ground_depth(y)
            x = stage.span(depth, 0.1, 0.9, (slot + dice.uniform(0.3, 0.7)) / len(land))
            footings.append((name, Footing(x, y, depth), 0.35 + 0.65 * down))
    if scene.road:
        band, lane, depth = road(stage, dice.child("road"))
        placed.near.append(band)
        footings.append(
            ("road", Footing(0.0, lane, depth), 0.35 + 0.65 * (lane - stage.horizon) / (stage.height - stage.horizon))
        )
    footings.sort(key=lambda item: item[1].y)
    alone = 1.4 if len(land) == 1 else 1.0  # a lone animal or tree is the subject: show it larger
    for name, spot, scale in footings:
        d = dice.child(name)
        if name == "road":
            if "car" in names:
                placed.near.append(_car(stage, d, spot, scale, lamp_lit))
            continue
        mirror = d.uniform() < 0.5
        if name == "tree":
            figure = figures.tree(0.55 * unit * scale * alone, light, scene.snow_cover, sun_right)
        elif name == "lighthouse":
            figure, _ = figures.lighthouse(0.45 * unit * scale, light, lamp_lit, sun_right)
        else:
            size = {"deer": 0.22, "horse": 0.26, "dog": 0.14, "fox": 0.13}[name] * unit * scale * alone
            figure = figures.animal(name, size, light, d.choice(_COATS[name]), mirror)
        placed.near.append(_standing(stage, figure, spot))
    return placed


def _standing(stage: Stage, figure: Figure, spot: Footing) -> Band:
    return Band(
        figure.stamp, round(spot.x - figure.anchor[0]), round(spot.y - figure.anchor[1]), spot.depth, stage.shot
    )


def _roam(stage: Stage, d: Dice, depth: float, speed: float, at: float) -> tuple[float, float]:
    """A start (world x) and a velocity for something that roams sideways and stays in view."""
    direction = 1 if d.uniform() < 0.5 else -1
    velocity = direction * min(speed * stage.width, 0.2 * stage.width / stage.shot.duration)
    travel = abs(velocity) * stage.shot.duration / stage.width
    lo, hi = (0.12, 0.88 - travel) if direction > 0 else (0.12 + travel, 0.88)
    return stage.span(depth, lo, hi, at), velocity


def _afloat(stage: Stage, d: Dice, name: str, at: float) -> list[Drawable]:
    light, unit = stage.light, stage.unit
    down = {"boat": d.uniform(0.18, 0.4), "whale": d.uniform(0.25, 0.45), "fish": d.uniform(0.35, 0.6)}[name]
    waterline = stage.horizon + down * (stage.height - stage.horizon)
    scale = 0.3 + 0.9 * down
    depth = stage.ground_depth(waterline)
    if name == "boat":
        x0, velocity = _roam(stage, d, depth, 0.012, at)
        boat = figures.boat(0.2 * unit * scale, light, velocity < 0)
        bob = max(1.0, 0.004 * unit * scale)

        def sail(t: float) -> tuple[float, float, int]:
            return x0 + velocity * t, waterline + bob * math.sin(2 * math.pi * t / 2.6), 0

        return [Sprite([boat], sail, depth, stage)]
    if name == "whale":
        x0, velocity = _roam(stage, d, depth, 0.01, at)
        back, spout = figures.whale(0.34 * unit * scale, light, velocity < 0)
        period, phase = d.uniform(5.5, 7.5), d.uniform(0, 1)
        sink = 0.2 * unit * scale

        def surface(t: float) -> tuple[float, float, int]:
            u = (t / period + phase) % 1
            rise = math.sin(math.pi * min(u / 0.6, 1.0))
            return x0 + velocity * t, waterline + sink * (1 - rise), 0

        def blow(t: float) -> tuple[float, float, int]:
            u = (t / period + phase) % 1
            x, y, _ = surface(t)
            return (
                x + 0.12 * 0.34 * unit * scale * (1 if velocity > 0 else -1),
                y - 0.06 * unit * scale,
                (0 if 0.22 < u < 0.4 else -1),
            )

        return [Sprite([back], surface, depth, stage, waterline + 1), Sprite([spout], blow, depth, stage)]
    sprites: list[Drawable] = []
    for _ in range(3):
        x0, _ = _roam(stage, d, depth, 0.0, min(max(at + d.uniform(-0.25, 0.25), 0.0), 1.0))
        direction = 1 if d.uniform() < 0.5 else -1
        pair = [figures.fish(0.05 * unit * scale, light, mirror) for mirror in (False, True)]
        period, phase, hop = d.uniform(2.2, 3.6), d.uniform(0, 1), 0.12 * (stage.height - stage.horizon) * scale
        reach = 0.06 * stage.width * scale

        def jump(
            t: float,
            x0: float = x0,
            direction: int = direction,
            period: float = period,
            phase: float = phase,
            hop: float = hop,
            reach: float = reach,
        ) -> tuple[float, float, int]:
            u = (t / period + phase) % 1
            if u > 0.3:
                return 0.0, 0.0, -1
            k = u / 0.3
            return x0 + direction * reach * k, waterline - 4 * hop * k * (1 - k) + 2, 0 if direction > 0 else 1

        sprites.append(Sprite(pair, jump, depth, stage, waterline + 1))
    return sprites


def _flock(stage: Stage, d: Dice) -> list[Drawable]:
    unit = stage.unit
    span = max(6.0, 0.04 * unit)
    frames = [figures.bird(span, stage.light, up) for up in (True, False)]
    direction = 1 if d.uniform() < 0.5 else -1
    velocity = direction * 0.07 * stage.width
    loop = 1.6 * stage.width
    start = d.uniform(0.2, 0.6) * stage.width
    height = d.uniform(0.25, 0.5) * stage.horizon
    sprites: list[Drawable] = []
    for i in range(d.integer(5, 9)):
        rank, side = (i + 1) // 2, 1 if i % 2 else -1
        dx, dy = -direction * rank * 0.8 * span, rank * 0.4 * span * side + d.uniform(-0.2, 0.2) * span
        beat, flap = d.uniform(0, 1), d.uniform(2.6, 3.4)

        def fly(
            t: float, dx: float = dx, dy: float = dy, beat: float = beat, flap: float = flap
        ) -> tuple[float, float, int]:
            x = (start + velocity * t + dx + 0.3 * stage.width) % loop - 0.3 * stage.width
            return x, height + dy + 0.1 * span * math.sin(3 * t + beat * 6), int(t * flap * 2 + beat * 2) % 2

        sprites.append(Sprite(frames, fly, 0.0, stage))
    return sprites


def _car(stage: Stage, d: Dice, spot: Footing, scale: float, lamps: bool) -> Sprite:
    direction = 1 if d.uniform() < 0.5 else -1
    length = 0.24 * stage.unit * scale
    figure = figures.car(length, stage.light, d.choice(_CARS), lamps, direction < 0)
    span = stage.width + 2.5 * length
    start, speed = d.uniform(0, span), direction * 0.16 * stage.width

    def drive(t: float) -> tuple[float, float, int]:
        return (start + speed * t) % span - 1.25 * length, spot.y, 0

    return Sprite([figure], drive, 0.0, stage)
