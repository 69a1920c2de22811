"""The landscape, painted once per render: sky, water or ground, and the ridges standing on them.

Each layer is a silhouette over the horizon (mountains, skyline, tree line, hills) or a backdrop,
coloured by the time of day's light and faded into the horizon's haze the farther it is, and placed
at a depth that sets how fast it slides when the camera moves. Big areas are painted as mixtures
of a few colours straight into yuv420p planes; only small shapes go through an RGB canvas.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from vidgate.gateway.render.colour import RGB, Mixture, mix
from vidgate.gateway.render.dice import Dice, hashed, smooth_noise
from vidgate.gateway.render.shapes import Canvas
from vidgate.gateway.render.stage import GROUND_FAR, Backdrop, Band, Drawable, Figure, Scenery, Sprite, Stage
from vidgate.gateway.render.stamp import Painter, Stamp, opaque_planes, paint

SKY_DEPTH = 0.03
Painter1 = Callable[[np.ndarray, np.ndarray], np.ndarray]  # a weight at each pixel centre
FLOOR_HAZE = 0.35  # how hazy the ground or water is at the horizon; ridges end in the same haze

ROCK: RGB = (0.42, 0.42, 0.48)
SNOW: RGB = (0.96, 0.97, 1.0)
GRASS: RGB = (0.32, 0.55, 0.22)
PINE: RGB = (0.09, 0.30, 0.15)
WALL: RGB = (0.52, 0.55, 0.62)
PAVEMENT: RGB = (0.36, 0.36, 0.38)
NIGHT_WALL: RGB = (0.045, 0.05, 0.085)
WINDOW: RGB = (1.0, 0.80, 0.42)
CLOUD: RGB = (0.98, 0.98, 1.0)
CITY_GLOW: RGB = (0.5, 0.36, 0.34)


def landscape(stage: Stage, dice: Dice) -> list[Drawable]:
    """Every layer the scene names, far to near: the still scenery above the horizon (sky, ranges,
    skylines, tree lines), the ground or water, then what moves in the sky."""
    scene = stage.scene
    backdrop, extras = sky(stage, dice.child("sky"))
    ridges: list[Band] = []
    if scene.mountains:
        ridges += mountains(stage, dice.child("mountains"))
    if scene.hills:
        ridges += hills(stage, dice.child("hills"))
    if scene.city:
        ridges += city(stage, dice.child("city"))
    if scene.forest:
        ridges += forest(stage, dice.child("forest"))
    scenery = Scenery([backdrop, *sorted(ridges, key=lambda band: band.depth)], stage)
    return [scenery, floor(stage, dice.child("floor")), *extras]


def sky(stage: Stage, dice: Dice) -> tuple[Backdrop, list[Drawable]]:
    """Gradient, glow of the sun or moon and the sun or moon itself; then what changes over them:
    twinkling stars and drifting clouds."""
    light, scene, unit = stage.light, stage.scene, stage.unit
    width, height = stage.canvas_width(SKY_DEPTH), stage.horizon
    sx, sy = stage.sun
    sx += stage.shot.margin(SKY_DEPTH) / 2
    reach, strength = {
        "dawn": (0.45, 0.5),
        "dusk": (0.5, 0.6),
        "day": (0.25, 0.25),
        "noon": (0.2, 0.2),
        "night": (0.12, 0.18),
    }[scene.time]
    if scene.weather == "rain":
        strength *= 0.3
    spread = np.float32((reach * unit) ** 2)
    city_glow = scene.city and scene.time in ("dusk", "night")
    deck = _overcast(stage, dice, width) if scene.weather == "rain" else None
    grey = mix(light.horizon, (0.3, 0.32, 0.36), 0.5)

    def painter(xs: np.ndarray, ys: np.ndarray) -> Mixture:
        up = (1 - ys / np.float32(height)) ** np.float32(0.7)  # 0 at the horizon, 1 at the top
        glow = np.exp(-((xs - np.float32(sx)) ** 2) / spread) * (
            np.exp(-((ys - np.float32(sy)) ** 2) / spread) * strength
        )
        mixture = Mixture().add(1 - up, light.horizon).add(up, light.zenith).add(glow, light.glow)
        if deck is not None:
            mixture.add(deck(xs, ys), grey)
        if city_glow:  # a city's lights glow in the air over it
            mixture.add(np.exp((ys - np.float32(height)) / np.float32(0.3 * height)) * np.float32(0.3), CITY_GLOW)
        return mixture

    planes = opaque_planes(paint(width, 0, height, painter))
    if scene.sun:
        r = 0.05 * unit
        _disc(planes, sx, sy, r, light.glow, mix(light.glow, (1.0, 1.0, 0.95), 0.55), 0.25)
    if scene.moon:
        r = 0.04 * unit
        canvas = Canvas(math.ceil(3.4 * r), math.ceil(3.4 * r))
        c = canvas.width / 2
        canvas.ellipse(c, c, r * 1.6, r * 1.6, light.glow, 0.12)
        canvas.ellipse(c, c, r, r, (0.93, 0.93, 0.86))
        for _ in range(3):
            canvas.ellipse(
                c + dice.uniform(-0.5, 0.5) * r,
                c + dice.uniform(-0.5, 0.5) * r,
                dice.uniform(0.15, 0.3) * r,
                dice.uniform(0.15, 0.3) * r,
                (0.74, 0.75, 0.72),
                0.6,
            )
        Stamp.from_rgb(*canvas.straight()).blit(planes, round(sx - c), round(sy - c))
    extras: list[Drawable] = [Stars(planes[0], stage, dice, (sx, sy, 0.09 * unit))] if scene.stars else []
    return Backdrop(planes, 0, SKY_DEPTH, stage.shot), extras + _clouds(stage, dice)


def _overcast(stage: Stage, dice: Dice, width: int) -> Painter1:
    """Rain's low cloud deck: streaks of grey, each a band of rows broken up along its length."""
    xs = np.arange(width, dtype=np.float32)
    layers = []
    for _ in range(5):
        breaks = smooth_noise(dice, xs, dice.uniform(0.1, 0.3) * stage.width)
        layers.append((dice.uniform(0.05, 0.75) * stage.horizon, dice.uniform(0.06, 0.14) * stage.horizon, breaks))

    def weight(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        total = np.zeros(np.broadcast_shapes(xs.shape, ys.shape), np.float32)
        for centre, thick, breaks in layers:
            rows = np.clip(1 - np.abs(ys - np.float32(centre)) / np.float32(thick), 0.0, 1.0)
            total += rows * np.clip(breaks[None, : xs.shape[1]] * 1.6 - 0.3, 0.0, 1.0)
        return np.minimum(total, 1) * np.float32(0.45)

    return weight


def _disc(planes: list[np.ndarray], x: float, y: float, r: float, halo: RGB, colour: RGB, opacity: float) -> None:
    canvas = Canvas(math.ceil(3.2 * r), math.ceil(3.2 * r))
    c = canvas.width / 2
    canvas.ellipse(c, c, r * 1.5, r * 1.5, halo, opacity)
    canvas.ellipse(c, c, r, r, colour)
    Stamp.from_rgb(*canvas.straight()).blit(planes, round(x - c), round(y - c))


def _clouds(stage: Stage, dice: Dice) -> list[Drawable]:
    """A few clouds drifting on the wind; none at night or in rain (the sky is overcast then)."""
    scene, light, unit = stage.scene, stage.light, stage.unit
    if scene.time == "night" or scene.weather == "rain":
        return []
    count = dice.integer(1, 4)
    colour = mix(light.surface(CLOUD, 1.1), light.glow, 0.35) if scene.time in ("dawn", "dusk") else CLOUD
    wind = dice.uniform(0.012, 0.025) * stage.width * (1 if dice.uniform() < 0.5 else -1)
    clouds: list[Drawable] = []
    for _ in range(count):
        size = dice.uniform(0.05, 0.1) * unit
        canvas = Canvas(math.ceil(7.6 * size), math.ceil(1.6 * size))
        cx, cy = canvas.width / 2, canvas.height * 0.6
        for _ in range(dice.integer(3, 6)):
            dx, r = dice.uniform(-2.2, 2.2) * size, dice.uniform(0.6, 1.1) * size
            canvas.ellipse(cx + dx, cy - 0.25 * r, r * 1.6, r * 0.55, colour, 0.35)
            canvas.ellipse(cx + dx, cy - 0.25 * r, r * 1.2, r * 0.4, colour, 0.5)
        figure = Figure(Stamp.from_rgb(*canvas.straight()), (0.0, 0.0))
        loop = stage.width + canvas.width
        start, y = dice.uniform(0, loop), dice.uniform(0.05, 0.55) * stage.horizon
        speed = wind * dice.uniform(0.8, 1.2)

        def drift(
            t: float, start: float = start, y: float = y, speed: float = speed, loop: int = loop
        ) -> tuple[float, float, int]:
            return (start + speed * t) % loop - (loop - stage.width), y, 0

        clouds.append(Sprite([figure], drift, 0.0, stage))
    return clouds


class Stars:
    """Stars painted into the sky, then made to twinkle: each frame rewrites their own pixels only."""

    def __init__(self, luma: np.ndarray, stage: Stage, dice: Dice, moon: tuple[float, float, float]) -> None:
        height, width = luma.shape
        count = max(8, width * height // 900)
        draws = dice.array(5 * count).reshape(5, count)
        xs = (draws[0] * width).astype(np.intp)
        ys = (draws[1] ** 1.4 * height * 0.92).astype(np.intp)  # fewer low down, in the haze
        brightness = 0.35 + 0.65 * draws[2] ** 3
        keep = np.hypot(xs - moon[0], ys - moon[1]) > moon[2]
        self.xs, self.ys, brightness = xs[keep], ys[keep], brightness[keep]
        self.rate = (2 + 3 * draws[3][keep]).astype(np.float32)
        self.phase = (6.3 * draws[4][keep]).astype(np.float32)
        self.value = (219 * brightness).astype(np.float32)
        star = np.rint(16 + self.value).astype(np.uint8)
        luma[self.ys, self.xs] = np.maximum(luma[self.ys, self.xs], star)
        self.under = luma[self.ys, self.xs].astype(np.float32) - self.value  # the sky behind each star
        self.painted = luma[self.ys, self.xs].copy()
        big = brightness > 0.8  # the brightest get a small cross
        for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            y, x = np.clip(self.ys[big] + dy, 0, height - 1), np.clip(self.xs[big] + dx, 0, width - 1)
            luma[y, x] = np.maximum(luma[y, x], (star[big] // 2 + 8).astype(np.uint8))
        self.stage = stage

    def draw(self, planes: Sequence[np.ndarray], t: float) -> None:
        luma = planes[0]
        xs = self.xs - self.stage.shot.offset(t, SKY_DEPTH)
        seen = np.nonzero((xs >= 0) & (xs < luma.shape[1]))[0]
        # Drawn after the ranges in front of them: a star twinkles only where it is still as painted.
        seen = seen[luma[self.ys[seen], xs[seen]] == self.painted[seen]]
        wave = np.sin(self.rate[seen] * np.float32(t) + self.phase[seen])
        shine = self.value[seen] * (np.float32(0.7) + np.float32(0.3) * wave)
        luma[self.ys[seen], xs[seen]] = np.rint(np.clip(self.under[seen] + shine, 16, 235))


def floor(stage: Stage, dice: Dice) -> Backdrop:
    """Water (with the sun's or moon's path of glints) or ground, from the horizon down; each strip
    of rows slides at the depth of its distance."""
    light, scene = stage.light, stage.scene
    width, top = stage.canvas_width(1.0), stage.horizon
    span = np.float32(max(stage.height - top, 1))
    if scene.sea:
        far = mix(light.water, light.horizon, 0.55)
        glints = scene.sun or scene.moon
        row_key = np.float32(dice.uniform(1, 100))

        def painter(xs: np.ndarray, ys: np.ndarray) -> Mixture:
            down = (ys - np.float32(top)) / span
            near = np.sqrt(down)
            mixture = Mixture().add(1 - near, far).add(near, light.water)
            if glints:
                mixture.add(_glints(stage, xs, ys, down, row_key), light.glow)
            return mixture

    else:
        # Snow holds on to what light there is: moonlit snow is the brightest thing at night.
        moonlit = 1.8 if scene.snow_cover and scene.time == "night" else 1.0
        ground = light.surface(SNOW if scene.snow_cover else PAVEMENT if scene.city else GRASS, moonlit)
        wobble = np.float32(0.012 if scene.snow_cover else 0.03)
        hazy = mix(ground, light.horizon, FLOOR_HAZE)
        waves = np.float32(0.07 * stage.width)

        def painter(xs: np.ndarray, ys: np.ndarray) -> Mixture:
            down = (ys - np.float32(top)) / span
            near = np.minimum(down * 3, 1)
            # Furrows that widen towards the camera, so the ground reads as a plane going away.
            furrows = 1 + np.float32(0.05) * np.sin(np.float32(0.04 * stage.height) / (down + np.float32(0.02))) * down
            shade = furrows * (1 + wobble * np.sin(xs / waves + down * 5))
            return Mixture().add((1 - near) * shade, hazy).add(near * shade, ground)

    planes = opaque_planes(paint(width, top, stage.height, painter))
    return Backdrop(planes, top, GROUND_FAR, stage.shot, near_depth=1.0)


def _glints(stage: Stage, xs: np.ndarray, ys: np.ndarray, down: np.ndarray, key: np.float32) -> np.ndarray:
    """Broken dashes of light under the sun or moon, wider and longer towards the camera."""
    # Centred under the sun halfway through the camera's travel (each row slides at its own depth).
    sx = np.float32(stage.sun[0]) + np.float32(0.5 * stage.shot.travel) * (GROUND_FAR + (1 - GROUND_FAR) * down)
    spread = (0.02 + 0.1 * down) * np.float32(stage.width)
    low = np.float32(0.25 + 0.6 * (1 - stage.light.height))  # a low sun makes a long bright path
    row = np.floor(ys)
    phase = np.sin(row * np.float32(12.9898) + key) * np.float32(43758.5)
    dash = 1 + 5 * down
    lit = np.sin(xs / dash + phase) > np.float32(0.35)
    return np.exp(-(((xs - sx) / spread) ** 2)) * low * lit


def _ridge(stage: Stage, top: np.ndarray, painter: Painter, depth: float, bottom: int | None = None) -> Band:
    """A ``Band`` of everything below the ridge line ``top`` (one row value per canvas column)."""
    bottom = stage.horizon if bottom is None else bottom
    first = max(0, 2 * (math.floor(float(top.min())) // 2) - 2)
    planes = paint(len(top), first, bottom, painter)
    rows = np.arange(first, bottom, dtype=np.float32)[:, None] + np.float32(0.5)
    coverage = np.clip(rows - top[None, :] + np.float32(0.5), 0.0, 1.0)
    return Band(Stamp(planes, coverage), 0, first, depth, stage.shot)


def _ridge_painter(
    stage: Stage, top: np.ndarray, base: RGB, haze: float, reach: float, cap: np.ndarray | None = None
) -> Painter:
    """Colour under a ridge line: lit or shaded by the slope's side to the light near the top, hazier
    lower down, with snow above ``top + cap`` when ``cap`` is given."""
    light = stage.light
    # The slope of the ridge smoothed over a few percent of the width: whole faces are lit or shaded,
    # not every wrinkle of the line.
    size = max(3, round(0.02 * stage.width)) | 1
    smooth = np.convolve(np.pad(top, size // 2, mode="edge"), np.full(size, 1 / size, np.float32), mode="valid")
    slope = np.gradient(smooth)  # rows per column: < 0 where the ridge climbs to the right
    facing = 1 if light.across > 0.5 else -1
    shade = (0.22 * np.tanh(2 * slope * facing)).astype(np.float32)[None, :]
    low = np.float32(max(haze, FLOOR_HAZE) - haze)

    def painter(xs: np.ndarray, ys: np.ndarray) -> Mixture:
        below = ys - top[None, :]
        depth = np.clip(below / np.float32(reach), 0.0, 1.0)
        amount = haze + low * depth
        lit = (1 - amount) * (np.float32(0.85) + shade * (1 - depth) ** 2)
        mixture = Mixture().add(amount, light.horizon)
        if cap is None:
            return mixture.add(lit, light.surface(base))
        snowy = (below < cap[None, :]).astype(np.float32)
        return mixture.add(lit * (1 - snowy), light.surface(base)).add(lit * snowy, light.surface(SNOW))

    return painter


def _peaks(xs: np.ndarray, dice: Dice, stage: Stage, tallest: float) -> np.ndarray:
    """Heights of a mountain range: overlapping sharp peaks with rough detail."""
    width = stage.width
    count = max(2, round(len(xs) / width * dice.uniform(2.5, 4.5)))
    heights = np.zeros_like(xs)
    for _ in range(count):
        centre = dice.uniform(-0.1, 1.1) * len(xs)
        peak = dice.uniform(0.55, 1.0) * tallest
        half = dice.uniform(0.12, 0.3) * width
        heights = np.maximum(heights, peak * (1 - np.abs(xs - centre) / half))
    for wavelength, amount in ((0.06, 0.05), (0.023, 0.025), (0.011, 0.012)):
        heights += amount * tallest * np.sin(xs / np.float32(wavelength * width) + np.float32(dice.uniform(0, 6.3)))
    return np.maximum(heights, 0.12 * tallest)


def _columns(width: int) -> np.ndarray:
    return np.arange(width, dtype=np.float32) + np.float32(0.5)


def mountains(stage: Stage, dice: Dice) -> list[Band]:
    """Three ranges, the farthest tallest and palest; snow-capped when the scene has snow."""
    rock = mix(ROCK, SNOW, 0.45) if stage.scene.snow_cover else ROCK
    bands = []
    for depth, haze, tallest in ((0.06, 0.55, 0.62), (0.12, 0.32, 0.48), (0.2, 0.12, 0.34)):
        xs = _columns(stage.canvas_width(depth))
        heights = _peaks(xs, dice, stage, tallest * stage.horizon)
        top = (stage.horizon - heights).astype(np.float32)
        cap = None
        if stage.scene.snow_cover:
            rough = 1 + 0.35 * np.sin(xs / np.float32(0.013 * stage.width))
            cap = (0.5 * heights * (heights / heights.max()) ** 1.5 * rough).astype(np.float32)
        painter = _ridge_painter(stage, top, rock, haze, 0.6 * stage.horizon, cap)
        bands.append(_ridge(stage, top, painter, depth))
    return bands


def hills(stage: Stage, dice: Dice) -> list[Band]:
    """Two soft ridges of rolling hills: the quiet landscape when nothing else was named."""
    base = SNOW if stage.scene.snow_cover else GRASS
    bands = []
    for depth, haze, tallest in ((0.15, 0.45, 0.2), (0.3, 0.2, 0.11)):
        xs = _columns(stage.canvas_width(depth))
        shape = np.full_like(xs, 0.6)
        for share, amount in ((dice.uniform(0.5, 1.1), 0.28), (dice.uniform(0.2, 0.4), 0.1), (0.07, 0.02)):
            shape += amount * np.sin(xs / np.float32(share * stage.width) + np.float32(dice.uniform(0, 6.3)))
        top = (stage.horizon - tallest * stage.horizon * shape).astype(np.float32)
        bands.append(_ridge(stage, top, _ridge_painter(stage, top, base, haze, 0.3 * stage.horizon), depth))
    return bands


def forest(stage: Stage, dice: Dice) -> list[Band]:
    """Two rows of pines on the horizon, the back one hazier."""
    base = mix(PINE, SNOW, 0.35) if stage.scene.snow_cover else PINE
    bands = []
    for depth, haze, tallest, spacing in ((0.3, 0.35, 0.12, 0.016), (0.42, 0.08, 0.2, 0.026)):
        xs = _columns(stage.canvas_width(depth))
        heights = np.zeros_like(xs)
        x = -dice.uniform(0, spacing) * stage.width
        while x < len(xs) + spacing * stage.width:
            tall = dice.uniform(0.55, 1.0) * tallest * stage.horizon
            half = tall * dice.uniform(0.22, 0.3)
            lo, hi = max(0, math.floor(x - half)), min(len(xs), math.ceil(x + half) + 1)
            if lo < hi:  # only the columns the tree covers
                heights[lo:hi] = np.maximum(heights[lo:hi], tall * (1 - np.abs(xs[lo:hi] - x) / half))
            x += dice.uniform(0.5, 1.2) * spacing * stage.width
        top = (stage.horizon - np.maximum(heights, 0.08 * tallest * stage.horizon)).astype(np.float32)
        bands.append(_ridge(stage, top, _ridge_painter(stage, top, base, haze, 0.25 * stage.horizon), depth))
    return bands


def city(stage: Stage, dice: Dice) -> list[Band]:
    """Two rows of buildings; windows glow at dusk and night, and reflect the sky by day."""
    lit_share = {"night": 0.42, "dusk": 0.3, "dawn": 0.12}.get(stage.scene.time, 0.0)
    bands = []
    for depth, haze, tallest in ((0.22, 0.4, 0.42), (0.36, 0.1, 0.7)):
        width = stage.canvas_width(depth)
        xs = _columns(width)
        starts, tops = [], []
        x = -dice.uniform(0, 0.03) * stage.width
        while x < width:
            starts.append(x)
            tops.append(stage.horizon - dice.uniform(0.25, 1.0) ** 1.5 * tallest * stage.horizon)
            x += dice.uniform(0.03, 0.075) * stage.width
        edges = np.asarray(starts, np.float32)
        building = np.clip(np.searchsorted(edges, xs, side="right") - 1, 0, len(starts) - 1)
        left = xs - edges[building]
        top = np.asarray(tops, np.float32)[building]
        # A sliver of sky between some neighbours, so the buildings read as separate.
        gaps = hashed(building.astype(np.uint64), dice.integer(0, 2**62)) < 0.35
        top = np.where(gaps & (left < max(1.0, 0.004 * stage.width)), np.float32(stage.horizon), top)
        tone = (0.85 + 0.3 * hashed(building.astype(np.uint64), dice.integer(0, 2**62))).astype(np.float32)
        painter = _facades(stage, top, haze, building, left, tone, dice.integer(0, 2**62), lit_share)
        bands.append(_ridge(stage, top.astype(np.float32), painter, depth))
    return bands


def _facades(
    stage: Stage,
    top: np.ndarray,
    haze: float,
    building: np.ndarray,
    left: np.ndarray,
    tone: np.ndarray,
    key: int,
    lit_share: float,
) -> Painter:
    light, unit = stage.light, stage.unit
    night = stage.scene.time == "night"
    wall = NIGHT_WALL if night else light.surface(WALL)
    reflect = mix(light.horizon, light.zenith, 0.5)
    pitch_x, pitch_y = max(3, round(0.012 * unit)), max(3, round(0.016 * unit))
    size_x, size_y = max(1, pitch_x // 2), max(1, pitch_y // 2)
    column = (left.astype(np.int64) - pitch_x // 2)[None, :]
    in_column = (column >= 0) & (column % pitch_x < size_x)
    amount = np.float32(haze * (0.4 if night else 1.0))

    def painter(xs: np.ndarray, ys: np.ndarray) -> Mixture:
        below = ys - top[None, :]
        row = below.astype(np.int64) - pitch_y // 2
        inside = in_column & (row >= 0) & (row % pitch_y < size_y) & (ys < stage.horizon - pitch_y)
        ids = (building.astype(np.int64) * 1_000_003)[None, :] + (column // pitch_x) * 1009 + row // pitch_y
        chance = hashed(ids.astype(np.uint64), key).astype(np.float32)
        lit = inside & (chance < lit_share)
        solid = 1 - amount
        glow = lit * (0.75 + 0.25 * chance / max(lit_share, 1e-3)) * solid
        return (
            Mixture()
            .add(amount, light.horizon)
            .add(~inside * tone[None, :] * solid, wall)
            .add((inside & ~lit) * np.float32(0.8 * solid), reflect)
            .add(glow.astype(np.float32), WINDOW)
        )

    return painter
