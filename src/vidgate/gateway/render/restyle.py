"""``edit``: the source's frames made again under the prompt's light, with its scene showing through.

Each source picture keeps its shapes and motion: its brightness is mapped through a palette drawn
from the prompt's time of day (shadows from the sky overhead, middle tones from the horizon,
highlights from the sun or moon), and the prompt's animated scene is laid over it faintly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Final

import numpy as np

from vidgate.gateway.render.colour import Light, yuv
from vidgate.gateway.render.picture import Picture
from vidgate.gateway.render.sources import Planes, SourceVideo
from vidgate.gateway.render.spec import RenderSpec

SCENE_SHARE: Final = 0.25  # how much of the prompt's own scene shows over the recoloured source
_KEEP_LUMA: Final = 0.5  # of the source's brightness kept as it is: the edges stay where they were


def palette(light: Light) -> np.ndarray:
    """A ``(3, 256)`` float32 table: for each source luma (0..255), the Y, Cb, Cr it becomes."""
    shadow = tuple(c * 0.35 for c in light.zenith)
    stops = np.array([shadow, light.horizon, light.glow], dtype=np.float64)
    level = np.clip((np.arange(256) - 16) / 219, 0.0, 1.0)
    at = level * (len(stops) - 1)
    low = np.minimum(at.astype(np.intp), len(stops) - 2)
    frac = (at - low)[:, None]
    rgb = stops[low] * (1 - frac) + stops[low + 1] * frac
    table = np.stack([yuv(tuple(colour)) for colour in rgb], axis=1)
    table[0] = np.arange(256) * _KEEP_LUMA + table[0] * (1 - _KEEP_LUMA)
    return table.astype(np.float32)


class Restyle:
    """The source's first ``duration`` seconds (all of a shorter source), each frame recoloured: an edit
    is priced on ``duration``, so it never makes more than that."""

    def __init__(self, spec: RenderSpec) -> None:
        assert spec.source is not None
        self.source = SourceVideo(spec.source, spec.fps)
        self.frame_count = min(self.source.frame_count, spec.frame_count)
        self._frames: Iterator[Planes] = self.source.frames(spec.width, spec.height)
        seconds = max(1, min(20, math.ceil(self.frame_count / spec.fps)))
        scene = replace(spec, operation="generate", source=None, first_frame=None, last_frame=None, duration=seconds)
        self._picture = Picture(scene)
        self._table = palette(self._picture.stage.light)
        self._scratch: list[np.ndarray] = []

    def draw(self, index: int, planes: Sequence[np.ndarray]) -> None:
        luma = next(self._frames)[0]
        if not self._scratch:
            self._scratch = [np.empty_like(plane) for plane in planes]
        self._picture.draw(index, self._scratch)
        # Chroma follows the luma of each 2x2 quad, as the encoder's chroma sits at the quad's centre.
        wide = luma.astype(np.uint16)
        quad = ((wide[0::2, 0::2] + wide[1::2, 0::2] + wide[0::2, 1::2] + wide[1::2, 1::2] + 2) >> 2).astype(np.uint8)
        mapped = (self._table[0][luma], self._table[1][quad], self._table[2][quad])
        share = np.float32(SCENE_SHARE)
        for plane, recoloured, scene in zip(planes, mapped, self._scratch, strict=True):
            np.copyto(plane, np.rint(recoloured + (scene - recoloured) * share), casting="unsafe")

    def close(self) -> None:
        self.source.close()
