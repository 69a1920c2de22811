"""The picture of a spec: its scene painted once, then each frame drawn from the prepared parts.

Order is depth: sky and ground, the ranges and skylines on the horizon, birds, waves, things
afloat, the near ground and what stands on it, then rain or snow. A push-in camera draws the
frame into a scratch buffer and magnifies it; an optional first-frame image dissolves into the
scene over the first second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import av
import numpy as np

from vidgate.gateway.render.camera import Shot
from vidgate.gateway.render.colour import Light, light_for
from vidgate.gateway.render.dice import Dice
from vidgate.gateway.render.effects import Precipitation, Waves
from vidgate.gateway.render.image import ImageDecodeError, decode_image
from vidgate.gateway.render.layers import landscape
from vidgate.gateway.render.scene import Scene, describe
from vidgate.gateway.render.spec import RenderSpec
from vidgate.gateway.render.stage import Drawable, Stage
from vidgate.gateway.render.things import populate


def _horizon(scene: Scene, height: int, dice: Dice) -> int:
    """Where the horizon sits: higher for tall things on it, lower when flying over."""
    if scene.camera == "flyover":
        share = dice.uniform(0.42, 0.5)
    elif scene.mountains or scene.city:
        share = dice.uniform(0.62, 0.68)
    else:
        share = dice.uniform(0.55, 0.62)
    return 2 * round(share * height / 2)


def _light(scene: Scene, dice: Dice) -> Light:
    """The time of day's light, with the sun or moon moved a little by the seed."""
    light = light_for(scene.time, scene.weather == "rain")
    across = min(max(light.across + dice.uniform(-0.12, 0.12), 0.1), 0.9)
    height = min(max(light.height + dice.uniform(-0.06, 0.06), 0.08), 0.84)
    return replace(light, across=across, height=height)


class Picture:
    """Everything fixed for a spec, worked out once; ``draw`` fills one frame's yuv420p planes."""

    def __init__(self, spec: RenderSpec) -> None:
        dice = Dice("picture", *spec.identity)
        self.scene = describe(spec.prompt, spec.negative_prompt, spec.seed)
        shot = Shot.plan(self.scene.camera, spec.width, spec.duration, dice.child("camera"))
        self.stage = Stage(
            width=spec.width,
            height=spec.height,
            horizon=_horizon(self.scene, spec.height, dice.child("horizon")),
            scene=self.scene,
            light=_light(self.scene, dice.child("light")),
            shot=shot,
        )
        self.fps = spec.fps
        placed = populate(self.stage, dice.child("things"))
        self.parts: list[Drawable] = [*landscape(self.stage, dice.child("landscape")), *placed.sky]
        if self.scene.sea:
            self.parts.append(Waves(self.stage, dice.child("waves")))
        self.parts += placed.water + placed.near
        if self.scene.weather != "clear":
            self.parts.append(Precipitation(self.stage, dice.child("weather"), self.scene.weather))
        self.scratch = (
            [np.zeros((spec.height // s, spec.width // s), np.uint8) for s in (1, 2, 2)] if shot.zoom > 1 else None
        )
        self.still = still_planes(spec.first_frame, spec.width, spec.height) if spec.first_frame is not None else None

    def draw(self, index: int, planes: Sequence[np.ndarray]) -> None:
        t = index / self.fps
        target = planes if self.scratch is None else self.scratch
        for part in self.parts:
            part.draw(target, t)
        if self.scratch is not None:
            self._magnify(planes, self.stage.shot.magnification(t))
        if self.still is not None and index < self.fps:
            # Smoothstep from the supplied picture into the scene over the first second.
            a = np.float32((index / self.fps) ** 2 * (3 - 2 * index / self.fps))
            for plane, still in zip(planes, self.still, strict=True):
                plane[...] = np.rint(still + (plane - still) * a)

    def _magnify(self, planes: Sequence[np.ndarray], power: float) -> None:
        """Nearest-neighbour magnification about the horizon's centre: a slow push-in."""
        assert self.scratch is not None
        for plane, source in zip(planes, self.scratch, strict=True):
            h, w = plane.shape
            step = self.stage.width // w
            fx, fy = w / 2, self.stage.horizon / step
            xs = np.clip(np.floor(fx + (np.arange(w) + 0.5 - fx) / power), 0, w - 1).astype(np.intp)
            ys = np.clip(np.floor(fy + (np.arange(h) + 0.5 - fy) / power), 0, h - 1).astype(np.intp)
            # Whole rows first (plain copies), then columns with ``take``: twice as fast as one index.
            np.copyto(plane, np.take(source[ys], xs, axis=1))


def still_planes(data: bytes, w: int, h: int, what: str = "the first_frame image") -> list[np.ndarray]:
    """An input image as float yuv420p planes, converted with the stream's BT.709 matrix; a picture
    that cannot be decoded raises ``ImageDecodeError`` naming ``what`` it is."""
    try:
        pixels = decode_image(data, w, h)
    except ImageDecodeError as exc:
        raise ImageDecodeError(f"{what}: {exc}") from exc
    rgb = av.VideoFrame.from_ndarray(pixels, format="rgb24")
    yuv = rgb.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG").to_ndarray()
    flat = yuv.reshape(-1)
    return [
        flat[: w * h].reshape(h, w).astype(np.float32),
        flat[w * h : w * h * 5 // 4].reshape(h // 2, w // 2).astype(np.float32),
        flat[w * h * 5 // 4 :].reshape(h // 2, w // 2).astype(np.float32),
    ]
