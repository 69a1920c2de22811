"""What a render does with its inputs, put together once: where each frame comes from, what is done
to it after, and what sound goes with it.

Frames come from the prompt's scene (``generate``, bent to a last frame by ``Keyframes``), from a
source played through and carried on (``extend``), or from a source recoloured (``edit``). Then
reference images grade them and a reference sound moves them. Output size and rate are always the
request's (the source is scaled to cover it and resampled to its frame rate), so the job's
advertised size is what the file holds.

The soundtrack is the reference sound if there is one, else the tune when ``audio`` is asked for,
else the source's own sound; each is trimmed or padded with silence to the video's length.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from vidgate.gateway.render.audio import AUDIO_RATE, Recording, Tune, loudness
from vidgate.gateway.render.continuation import Extension
from vidgate.gateway.render.dice import Dice
from vidgate.gateway.render.grade import Grade
from vidgate.gateway.render.keyframes import Keyframes
from vidgate.gateway.render.picture import Picture
from vidgate.gateway.render.pulse import Pulse
from vidgate.gateway.render.restyle import Restyle
from vidgate.gateway.render.sources import MediaDecodeError, SourceVideo, decode_sound
from vidgate.gateway.render.spec import RenderSpec


class Frames(Protocol):
    """Where the pictures come from; ``draw`` is called for each index in turn."""

    frame_count: int

    def draw(self, index: int, planes: Sequence[np.ndarray]) -> None: ...

    def close(self) -> None: ...


class Effect(Protocol):
    def apply(self, index: int, planes: Sequence[np.ndarray]) -> None: ...


class _Scene:
    """``generate``: the prompt's picture, dissolving from a first frame when one is given."""

    def __init__(self, spec: RenderSpec) -> None:
        self.picture = Picture(spec)
        self.frame_count = spec.frame_count

    def draw(self, index: int, planes: Sequence[np.ndarray]) -> None:
        self.picture.draw(index, planes)

    def close(self) -> None:
        """Nothing to release."""


class Plan:
    """One render's frames, effects and sound; ``close`` releases an open source."""

    def __init__(self, spec: RenderSpec) -> None:
        self.fps = spec.fps
        self.frames = _frames(spec)
        try:
            self.effects: list[Effect] = []
            if spec.references:
                self.effects.append(Grade(spec.references))
            self.sound: Tune | Recording | None = None
            seconds = self.frame_count / spec.fps
            if spec.sound is not None:
                samples = decode_sound(spec.sound, AUDIO_RATE, seconds)
                if not samples.size:
                    raise MediaDecodeError("the reference audio has no sound in it")
                self.sound = Recording(samples)
                self.effects.append(Pulse(loudness(samples, spec.fps, self.frame_count), Dice("pulse", *spec.identity)))
            elif spec.audio:
                self.sound = Tune(spec, None if spec.operation == "generate" else seconds)
            elif spec.source is not None:
                own = decode_sound(spec.source, AUDIO_RATE, seconds, what="the source video's sound")
                self.sound = Recording(own) if own.size else None
        except BaseException:
            self.frames.close()
            raise

    @property
    def frame_count(self) -> int:
        return self.frames.frame_count

    def draw(self, index: int, planes: Sequence[np.ndarray]) -> None:
        self.frames.draw(index, planes)
        for effect in self.effects:
            effect.apply(index, planes)

    def close(self) -> None:
        self.frames.close()


def frame_total(spec: RenderSpec) -> int:
    """How many frames ``spec`` renders; for ``extend`` and ``edit`` only the source's header is read."""
    if spec.source is None:
        return spec.frame_count
    source = SourceVideo(spec.source, spec.fps)
    source.close()
    if spec.operation == "edit":
        return min(source.frame_count, spec.frame_count)
    return source.frame_count + (spec.frame_count if spec.operation == "extend" else 0)


def _frames(spec: RenderSpec) -> Frames:
    if spec.operation == "extend":
        return Extension(spec)
    if spec.operation == "edit":
        return Restyle(spec)
    if spec.last_frame is not None:
        return Keyframes(spec)
    return _Scene(spec)
