"""Colour for the renderer: the light of each time of day, and RGB to the stream's yuv420p planes.

Pictures are painted in RGB floats once per render and converted here with the BT.709
limited-range matrix that the encoder tags the stream with, so players show the colours painted.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from vidgate.gateway.render.scene import TimeOfDay

RGB = tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Light:
    """The sky and the light falling on everything under it."""

    zenith: RGB  # sky colour overhead
    horizon: RGB  # sky colour at the horizon, and the haze far things fade into
    tint: RGB  # colour of the light on lit surfaces
    ambient: float  # how bright lit surfaces are
    glow: RGB  # colour of the sun or moon and the glow around it
    height: float  # sun or moon height, as a fraction of the sky above the horizon
    across: float  # sun or moon position, as a fraction of the width
    water: RGB  # deep water colour

    def surface(self, base: RGB, shade: float = 1.0) -> RGB:
        """``base`` as this light shows it (``shade`` < 1 for faces turned away)."""
        k = self.ambient * shade
        return (base[0] * self.tint[0] * k, base[1] * self.tint[1] * k, base[2] * self.tint[2] * k)


LIGHTS: Final[dict[TimeOfDay, Light]] = {
    "dawn": Light(
        (0.30, 0.36, 0.62),
        (1.00, 0.72, 0.58),
        (1.00, 0.84, 0.74),
        0.78,
        (1.00, 0.86, 0.62),
        0.14,
        0.24,
        (0.24, 0.30, 0.46),
    ),
    "day": Light(
        (0.22, 0.48, 0.88),
        (0.72, 0.85, 0.97),
        (1.00, 0.98, 0.94),
        0.95,
        (1.00, 0.98, 0.86),
        0.62,
        0.72,
        (0.10, 0.34, 0.55),
    ),
    "noon": Light(
        (0.12, 0.40, 0.90),
        (0.64, 0.81, 1.00),
        (1.00, 1.00, 0.97),
        1.05,
        (1.00, 1.00, 0.94),
        0.86,
        0.55,
        (0.05, 0.32, 0.55),
    ),
    "dusk": Light(
        (0.20, 0.16, 0.40),
        (1.00, 0.52, 0.20),
        (1.00, 0.64, 0.42),
        0.58,
        (1.00, 0.66, 0.28),
        0.12,
        0.74,
        (0.24, 0.17, 0.28),
    ),
    "night": Light(
        (0.01, 0.02, 0.07),
        (0.06, 0.09, 0.20),
        (0.55, 0.66, 0.95),
        0.24,
        (0.96, 0.95, 0.86),
        0.62,
        0.28,
        (0.02, 0.04, 0.10),
    ),
}
_OVERCAST: Final = (0.50, 0.53, 0.58)


def light_for(time: TimeOfDay, rain: bool) -> Light:
    """The light of ``time``; rain greys the sky and dims everything under it."""
    light = LIGHTS[time]
    if not rain:
        return light
    grey = tuple(c * min(1.0, 0.35 + light.ambient * 0.6) for c in _OVERCAST)
    return replace(
        light,
        zenith=mix(light.zenith, grey, 0.7),
        horizon=mix(light.horizon, grey, 0.6),
        ambient=light.ambient * 0.75,
        water=mix(light.water, grey, 0.3),
    )


def mix(a: tuple[float, ...], b: tuple[float, ...], t: float) -> RGB:
    return (a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t)


def yuv(rgb: tuple[float, ...]) -> np.ndarray:
    """One RGB colour (0..1) as BT.709 limited-range Y, Cb, Cr (floats, 16..235/240)."""
    return lin(rgb) + OFFSETS


OFFSETS: Final = np.array([16.0, 128.0, 128.0])


def lin(rgb: tuple[float, ...]) -> np.ndarray:
    """One RGB colour as Y, Cb, Cr without their offsets: linear in RGB, so colours can be mixed,
    scaled and summed in this form and the offsets added once at the end."""
    r, g, b = (min(max(c, 0.0), 1.0) for c in rgb[:3])
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return np.array([219 * y, 224 * (b - y) / 1.8556, 224 * (r - y) / 1.5748])


def full_planes(rgb: np.ndarray) -> list[np.ndarray]:
    """An ``(h, w, 3)`` float RGB picture as float Y, Cb, Cr planes, all at full resolution."""
    rgb = np.clip(rgb, 0.0, 1.0, dtype=np.float32)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = np.float32(0.2126) * r + np.float32(0.7152) * g + np.float32(0.0722) * b
    cb = np.float32(224 / 1.8556) * (b - y) + np.float32(128)
    cr = np.float32(224 / 1.5748) * (r - y) + np.float32(128)
    return [np.float32(219) * y + np.float32(16), cb, cr]


def quarter(plane: np.ndarray) -> np.ndarray:
    """2x2 averages: chroma sampled as a scaler would, at the centre of each luma quad."""
    return (plane[0::2, 0::2] + plane[1::2, 0::2] + plane[0::2, 1::2] + plane[1::2, 1::2]) * np.float32(0.25)


class Mixture:
    """A picture described as weights of a few fixed colours: ``sum(weight_k * colour_k)``.

    Painting big areas this way never builds an RGB image: each plane is a handful of passes over
    one weight array per colour, evaluated on that plane's own grid (chroma on the half grid).
    """

    def __init__(self) -> None:
        self.terms: list[tuple[np.ndarray | float | np.floating, np.ndarray]] = []

    def add(self, weight: np.ndarray | float | np.floating, colour: tuple[float, ...]) -> Mixture:
        self.terms.append((weight, lin(colour)))
        return self

    def halved(self) -> Mixture:
        """The same mixture on the half-resolution chroma grid: every weight averaged over 2x2."""
        out = Mixture()
        for weight, colour in self.terms:
            if isinstance(weight, np.ndarray):
                if weight.shape[0] > 1:
                    weight = (weight[0::2] + weight[1::2]) * np.float32(0.5)
                if weight.shape[1] > 1:
                    weight = (weight[:, 0::2] + weight[:, 1::2]) * np.float32(0.5)
            out.terms.append((weight, colour))
        return out

    def plane(self, channel: int, shape: tuple[int, int]) -> np.ndarray:
        out = np.full(shape, OFFSETS[channel], dtype=np.float32)
        for weight, colour in self.terms:
            out += np.float32(colour[channel]) * weight
        return out
