"""Where the camera is at each moment: a sideways travel (scaled by depth for parallax) and a zoom.

The travel is bounded whatever the clip's length, so every layer is painted once on a canvas just
wider than the frame, and things placed in view stay in view for the whole clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vidgate.gateway.render.dice import Dice
from vidgate.gateway.render.scene import Camera


@dataclass(frozen=True, slots=True)
class Shot:
    """The camera's path for one clip."""

    kind: Camera
    travel: int  # luma pixels a layer at depth 1 moves over the clip (even)
    direction: int  # +1: the view moves right (the world slides left); -1: the opposite
    duration: float
    zoom: float  # magnification reached at the end, for "push"

    @classmethod
    def plan(cls, kind: Camera, width: int, duration: int, dice: Dice) -> Shot:
        # Pixels per second at depth 1, then capped so a long clip moves slower rather than further.
        speed, cap = {"pan": (0.07, 0.32), "flyover": (0.16, 0.7), "drift": (0.04, 0.12), "push": (0.02, 0.06)}[kind]
        travel = 2 * round(min(speed * duration, cap) * width / 2)
        return cls(
            kind=kind,
            travel=max(travel, 2),
            direction=1 if dice.uniform() < 0.5 else -1,
            duration=float(duration),
            zoom=1 + min(0.035 * duration, 0.3) if kind == "push" else 1.0,
        )

    def position(self, t: float) -> float:
        """How far along its travel (0..1) the camera is at ``t`` seconds."""
        u = min(max(t / self.duration, 0.0), 1.0)
        # A pan is eased at both ends, so it starts and settles gently; the others glide evenly.
        along = 0.5 - 0.5 * math.cos(math.pi * u) if self.kind == "pan" else u
        return along if self.direction > 0 else 1 - along

    def offset(self, t: float, depth: float) -> int:
        """Luma pixels a layer at ``depth`` is shifted left at ``t`` (whole pixels: x264 predicts those)."""
        return round(self.travel * depth * self.position(t))

    def magnification(self, t: float) -> float:
        if self.zoom == 1.0:
            return 1.0
        u = min(max(t / self.duration, 0.0), 1.0)
        return 1 + (self.zoom - 1) * u * u * (3 - 2 * u)

    def margin(self, depth: float) -> int:
        """Extra canvas width a layer at ``depth`` needs (even)."""
        return 2 * math.ceil(self.travel * depth / 2) + 2
