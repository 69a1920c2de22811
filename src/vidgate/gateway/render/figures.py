"""How each object looks: small vector drawings, sized in pixels and lit by the time of day.

Each painter returns a ``Figure``: the drawing as a ``Stamp`` and the point of it that rests on the
ground or the water, so placing it needs no knowledge of its shape.
"""

from __future__ import annotations

import numpy as np

from vidgate.gateway.render.colour import RGB, Light, mix
from vidgate.gateway.render.shapes import Canvas
from vidgate.gateway.render.stage import Figure
from vidgate.gateway.render.stamp import Stamp

WHITE: RGB = (0.95, 0.95, 0.93)
RED: RGB = (0.72, 0.12, 0.1)
DARK: RGB = (0.12, 0.12, 0.14)
LAMP: RGB = (1.0, 0.92, 0.6)


def _figure(canvas: Canvas, anchor: tuple[float, float], mirror: bool = False) -> Figure:
    rgb, alpha = canvas.straight()
    if mirror:
        rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
        anchor = (canvas.width - anchor[0], anchor[1])
    return Figure(Stamp.from_rgb(np.ascontiguousarray(rgb), np.ascontiguousarray(alpha)), anchor)


def lighthouse(height: float, light: Light, lamp_lit: bool, sun_right: bool) -> tuple[Figure, tuple[float, float]]:
    """A striped tower with a gallery, lantern and cap; also returns the lamp's offset from the anchor."""
    h = max(height, 12.0)
    w = 0.5 * h
    canvas = Canvas(round(w), round(h * 1.04))
    cx, base, shoulder = w / 2, h * 1.03, h * 0.24
    bottom_half, top_half = 0.085 * h, 0.058 * h

    def half_at(y: float) -> float:
        return top_half + (bottom_half - top_half) * (y - shoulder) / (base - shoulder)

    lit, shade = light.surface(WHITE, 1.3), light.surface(WHITE, 0.75)
    canvas.polygon(
        [(cx - top_half, shoulder), (cx + top_half, shoulder), (cx + bottom_half, base), (cx - bottom_half, base)], lit
    )
    for y0 in (0.38, 0.62, 0.86):  # red bands
        a, b = shoulder + (base - shoulder) * (y0 - 0.24) / 0.76, shoulder + (base - shoulder) * (y0 - 0.13) / 0.76
        canvas.polygon(
            [(cx - half_at(a), a), (cx + half_at(a), a), (cx + half_at(b), b), (cx - half_at(b), b)],
            light.surface(RED, 1.2),
        )
    # The side turned from the light.
    side = -1 if sun_right else 1
    canvas.polygon(
        [(cx, shoulder), (cx + side * top_half, shoulder), (cx + side * bottom_half, base), (cx, base)], shade, 0.55
    )
    canvas.box(cx - top_half * 1.45, shoulder - 0.03 * h, cx + top_half * 1.45, shoulder, light.surface(DARK))
    lamp = (cx, shoulder - 0.09 * h)
    glass = LAMP if lamp_lit else mix(light.horizon, (0.6, 0.7, 0.75), 0.5)
    canvas.box(cx - top_half * 0.8, shoulder - 0.15 * h, cx + top_half * 0.8, shoulder - 0.03 * h, glass)
    canvas.polygon(
        [(cx - top_half, shoulder - 0.15 * h), (cx + top_half, shoulder - 0.15 * h), (cx, shoulder - 0.22 * h)],
        light.surface(RED, 0.9),
    )
    if lamp_lit:
        canvas.ellipse(lamp[0], lamp[1], 0.09 * h, 0.09 * h, LAMP, 0.35)
        canvas.ellipse(lamp[0], lamp[1], top_half * 0.6, 0.04 * h, (1.0, 1.0, 0.9))
    anchor = (cx, base)
    return _figure(canvas, anchor), (lamp[0] - anchor[0], lamp[1] - anchor[1])


def boat(length: float, light: Light, mirror: bool) -> Figure:
    """A sailing boat: hull, mast, mainsail and jib."""
    L = max(length, 10.0)
    canvas = Canvas(round(L), round(1.05 * L))
    deck = 0.9 * L
    canvas.polygon(
        [(0.0, deck), (L, deck), (0.84 * L, deck + 0.12 * L), (0.14 * L, deck + 0.12 * L)],
        light.surface((0.3, 0.16, 0.12)),
    )
    canvas.line((0.46 * L, deck), (0.46 * L, deck - 0.84 * L), max(1.0, 0.02 * L), light.surface((0.3, 0.25, 0.2)))
    sail = light.surface(WHITE, 1.15)
    canvas.polygon([(0.49 * L, deck - 0.82 * L), (0.49 * L, deck - 0.05 * L), (0.9 * L, deck - 0.05 * L)], sail)
    canvas.polygon(
        [(0.43 * L, deck - 0.72 * L), (0.43 * L, deck - 0.05 * L), (0.12 * L, deck - 0.05 * L)],
        light.surface(WHITE, 0.85),
    )
    return _figure(canvas, (0.5 * L, deck + 0.1 * L), mirror)


def car(length: float, light: Light, body: RGB, headlights: bool, mirror: bool) -> Figure:
    """A car facing right (left when mirrored), with lamps lit at dusk and night."""
    L = max(length, 12.0)
    reach = 0.7 * L if headlights else 0.0
    canvas = Canvas(round(L + reach), round(0.46 * L))
    paint, glass = light.surface(body), mix(light.surface((0.55, 0.65, 0.75)), DARK, 0.6 if headlights else 0.1)
    canvas.polygon([(0.22 * L, 0.2 * L), (0.33 * L, 0.05 * L), (0.66 * L, 0.05 * L), (0.8 * L, 0.2 * L)], paint)
    canvas.polygon([(0.27 * L, 0.19 * L), (0.35 * L, 0.08 * L), (0.64 * L, 0.08 * L), (0.74 * L, 0.19 * L)], glass)
    canvas.box(0.0, 0.19 * L, L, 0.36 * L, paint)
    canvas.ellipse(0.02 * L, 0.275 * L, 0.03 * L, 0.085 * L, paint)
    canvas.ellipse(0.98 * L, 0.275 * L, 0.03 * L, 0.085 * L, paint)
    for x in (0.22 * L, 0.78 * L):
        canvas.ellipse(x, 0.36 * L, 0.085 * L, 0.085 * L, light.surface(DARK))
        canvas.ellipse(x, 0.36 * L, 0.04 * L, 0.04 * L, light.surface((0.6, 0.6, 0.62)))
    canvas.ellipse(0.99 * L, 0.23 * L, 0.02 * L, 0.03 * L, LAMP if headlights else light.surface((0.9, 0.9, 0.8)))
    canvas.ellipse(0.01 * L, 0.23 * L, 0.015 * L, 0.025 * L, (0.95, 0.1, 0.05) if headlights else light.surface(RED))
    if headlights:
        canvas.polygon([(L, 0.2 * L), (L + reach, 0.12 * L), (L + reach, 0.42 * L), (L, 0.27 * L)], LAMP, 0.3)
    return _figure(canvas, (0.5 * L, 0.44 * L), mirror)


def tree(height: float, light: Light, snowy: bool, sun_right: bool) -> Figure:
    """A broad-leaved tree, or a snow-laden pine when the scene has snow."""
    h = max(height, 10.0)
    w = 0.7 * h
    canvas = Canvas(round(w), round(h))
    cx = w / 2
    canvas.box(cx - 0.035 * h, 0.45 * h, cx + 0.035 * h, h, light.surface((0.35, 0.24, 0.16)))
    leaf = (0.2, 0.45, 0.18)
    lit_dx = 0.06 * h if sun_right else -0.06 * h
    if snowy:
        for tier in range(4):
            y, half = 0.12 * h + tier * 0.2 * h, 0.1 * h + tier * 0.07 * h
            canvas.polygon(
                [(cx, y - 0.12 * h), (cx + half, y + 0.12 * h), (cx - half, y + 0.12 * h)],
                light.surface(mix(leaf, (0.08, 0.25, 0.12), 0.5)),
            )
            canvas.polygon([(cx, y - 0.12 * h), (cx + half * 0.5, y), (cx - half * 0.5, y)], light.surface(WHITE))
    else:
        for dx, dy, r in ((0.0, 0.3, 0.22), (-0.14, 0.4, 0.16), (0.14, 0.4, 0.16), (0.0, 0.18, 0.15)):
            canvas.ellipse(cx + dx * h, dy * h, r * h, r * h * 0.9, light.surface(leaf, 0.8))
        canvas.ellipse(cx + lit_dx, 0.26 * h, 0.15 * h, 0.13 * h, light.surface(leaf, 1.15), 0.8)
    return _figure(canvas, (cx, h - 1))


_ANIMALS: dict[str, tuple[float, float, float, float]] = {
    # legs, body depth, neck length (fractions of the body's length), leg width
    "deer": (0.78, 0.34, 0.45, 0.045),
    "horse": (0.72, 0.42, 0.5, 0.07),
    "dog": (0.42, 0.34, 0.22, 0.08),
    "fox": (0.36, 0.3, 0.18, 0.06),
}


def animal(kind: str, length: float, light: Light, coat: RGB, mirror: bool) -> Figure:
    """A four-legged animal standing side-on: body, legs, neck, head, ears or antlers, and tail."""
    legs, depth, neck, leg_width = _ANIMALS[kind]
    L = max(length, 10.0)
    canvas = Canvas(round(1.9 * L), round((legs + depth + neck + 0.55) * L))
    ground = canvas.height - 1.0
    bx, by = 0.85 * L, ground - legs * L - depth * L / 2
    colour, shade = light.surface(coat), light.surface(coat, 0.7)
    for x, tone in ((-0.3, shade), (0.3, shade), (-0.36, colour), (0.36, colour)):
        canvas.line((bx + x * L, by), (bx + x * L * 1.05, ground - leg_width * L / 2), leg_width * L, tone)
    head = (bx + (0.42 + 0.32 * neck) * L, by - (0.15 + 0.85 * neck) * L)
    canvas.line((bx + 0.38 * L, by - 0.05 * L), head, (0.2 if kind == "horse" else 0.14) * L, colour)
    canvas.ellipse(bx, by, 0.5 * L, depth * L / 2, colour)
    snout = (head[0] + (0.2 if kind == "horse" else 0.13) * L, head[1] + (0.1 if kind == "horse" else 0.04) * L)
    canvas.line(head, snout, (0.11 if kind == "horse" else 0.09) * L, colour)
    canvas.ellipse(head[0], head[1], 0.1 * L, 0.08 * L, colour)
    if kind == "deer":
        for dx in (-0.03, 0.03):
            base = (head[0] + dx * L, head[1] - 0.06 * L)
            tip = (base[0] - 0.08 * L, base[1] - 0.3 * L)
            canvas.line(base, tip, 0.025 * L, light.surface((0.45, 0.35, 0.25)))
            for k in (0.35, 0.65):
                fork = (base[0] + (tip[0] - base[0]) * k, base[1] + (tip[1] - base[1]) * k)
                canvas.line(fork, (fork[0] + 0.08 * L, fork[1] - 0.08 * L), 0.02 * L, light.surface((0.45, 0.35, 0.25)))
    else:
        ear = 0.07 * L if kind in ("dog", "fox") else 0.05 * L
        canvas.polygon(
            [
                (head[0] - 0.05 * L, head[1] - 0.03 * L),
                (head[0] + 0.01 * L, head[1] - 0.05 * L),
                (head[0] - 0.03 * L, head[1] - 0.05 * L - ear),
            ],
            colour,
        )
    tail_root = (bx - 0.48 * L, by - 0.05 * L)
    if kind == "horse":
        canvas.line(tail_root, (bx - 0.6 * L, by + 0.45 * L), 0.07 * L, shade)
        canvas.line((head[0] - 0.08 * L, head[1]), (bx + 0.3 * L, by - 0.2 * L), 0.05 * L, shade)  # mane
    elif kind == "fox":
        canvas.ellipse(bx - 0.78 * L, by + 0.02 * L, 0.32 * L, 0.1 * L, colour)
        canvas.ellipse(bx - 1.02 * L, by + 0.04 * L, 0.09 * L, 0.07 * L, light.surface(WHITE))
    elif kind == "dog":
        canvas.line(tail_root, (bx - 0.68 * L, by - 0.32 * L), 0.06 * L, colour)
    else:
        canvas.ellipse(tail_root[0], tail_root[1], 0.05 * L, 0.06 * L, light.surface(WHITE))
    return _figure(canvas, (bx, ground), mirror)


def bird(span: float, light: Light, wings_up: bool) -> Figure:
    """A gull seen from afar: two bent strokes, wings raised or lowered."""
    s = max(span, 6.0)
    canvas = Canvas(round(s) + 2, round(0.6 * s) + 2)
    cx, cy = canvas.width / 2, canvas.height / 2
    tip = -0.28 * s if wings_up else 0.12 * s
    elbow = -0.1 * s if wings_up else -0.04 * s
    colour = (0.32, 0.32, 0.36) if light.ambient < 0.3 else (0.1, 0.1, 0.12)
    for side in (-1, 1):
        canvas.line((cx, cy), (cx + side * 0.22 * s, cy + elbow), max(1.0, 0.07 * s), colour)
        canvas.line((cx + side * 0.22 * s, cy + elbow), (cx + side * 0.48 * s, cy + tip), max(1.0, 0.05 * s), colour)
    return _figure(canvas, (cx, cy))


def whale(length: float, light: Light, mirror: bool) -> tuple[Figure, Figure]:
    """A whale's back with its dorsal fin, and the spout it blows when it surfaces."""
    L = max(length, 12.0)
    canvas = Canvas(round(L), round(0.34 * L))
    waterline = 0.2 * L
    body = light.surface((0.22, 0.26, 0.32))
    canvas.ellipse(0.5 * L, waterline + 0.05 * L, 0.48 * L, 0.14 * L, body)
    canvas.polygon(
        [(0.62 * L, waterline - 0.06 * L), (0.74 * L, waterline - 0.06 * L), (0.75 * L, waterline - 0.16 * L)], body
    )
    spout = Canvas(round(0.3 * L), round(0.3 * L))
    mist = light.surface(WHITE, 1.1)
    for dx, dy, r, o in (
        (0.0, 0.18, 0.05, 0.6),
        (-0.05, 0.1, 0.06, 0.45),
        (0.05, 0.1, 0.06, 0.45),
        (0.0, 0.05, 0.07, 0.3),
    ):
        spout.ellipse(0.15 * L + dx * L, dy * L, r * L, r * L, mist, o)
    return _figure(canvas, (0.5 * L, waterline), mirror), _figure(spout, (0.15 * L, 0.3 * L), mirror)


def fish(length: float, light: Light, mirror: bool) -> Figure:
    L = max(length, 6.0)
    canvas = Canvas(round(L), round(0.5 * L))
    silver = light.surface((0.72, 0.76, 0.82), 1.1)
    canvas.ellipse(0.58 * L, 0.25 * L, 0.36 * L, 0.13 * L, silver)
    canvas.polygon([(0.26 * L, 0.25 * L), (0.02 * L, 0.08 * L), (0.02 * L, 0.42 * L)], silver)
    return _figure(canvas, (0.5 * L, 0.25 * L), mirror)
