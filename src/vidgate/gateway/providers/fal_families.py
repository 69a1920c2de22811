"""What each model family's endpoints on fal take, from fal's model schemas: the data the fal
adapter checks a job against before any call, kept apart from the adapter's wire handling."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class FalFamily:
    """What one model family's endpoints on fal take, per fal's model schemas.

    ``text``, ``image`` and ``first_last`` are endpoint suffixes after the family's base id (None:
    no such endpoint); ``tail`` says the image endpoint also takes a last frame (``tail_image_url``).
    Enums are the wire values. An empty ``resolutions`` means the endpoint takes no resolution and
    makes ``makes``; an empty ``image_aspect_ratios`` means the image endpoint follows the image.
    """

    name: str
    text: str | None
    image: str | None
    durations: tuple[int, ...]
    aspect_ratios: tuple[str, ...]
    image_aspect_ratios: tuple[str, ...] = ()
    first_last: str | None = None
    tail: bool = False
    seconds_suffix: bool = False  # "8s" rather than "8"
    resolutions: tuple[str, ...] = ()
    makes: str | None = None
    seed: bool = False
    negative_prompt: bool = False
    audio: bool = False  # takes generate_audio (on by default upstream, so always sent)
    enhance_field: str | None = None  # the field our enhance_prompt maps onto
    long_above_720p: int | None = None  # the one duration 1080p and 4k allow (Veo's rule)


_VEO_ASPECTS = ("16:9", "9:16")
_VEO31 = FalFamily(
    name="Veo 3.1",
    text="",
    image="/image-to-video",
    first_last="/first-last-frame-to-video",
    durations=(4, 6, 8),
    seconds_suffix=True,
    aspect_ratios=_VEO_ASPECTS,
    image_aspect_ratios=("auto", *_VEO_ASPECTS),
    resolutions=("720p", "1080p", "4k"),
    seed=True,
    negative_prompt=True,
    audio=True,
    long_above_720p=8,
)
_VEO3 = FalFamily(
    name="Veo 3",
    text="",
    image="/image-to-video",
    durations=(4, 6, 8),
    seconds_suffix=True,
    aspect_ratios=_VEO_ASPECTS,
    image_aspect_ratios=("auto", *_VEO_ASPECTS),
    resolutions=("720p", "1080p"),
    seed=True,
    negative_prompt=True,
    audio=True,
    long_above_720p=8,
)
_KLING_ASPECTS = ("16:9", "9:16", "1:1")


def _kling(tier: str) -> FalFamily:
    """Kling on fal: no resolution field (the tier decides it), no seed; pro tiers take a last frame."""
    return FalFamily(
        name=f"Kling {tier}",
        text="/text-to-video",
        image="/image-to-video",
        durations=(5, 10),
        aspect_ratios=_KLING_ASPECTS,
        tail=tier == "pro",
        makes="720p" if tier == "standard" else "1080p",
        negative_prompt=True,
    )


_WAN25 = FalFamily(
    name="Wan 2.5",
    text="/text-to-video",
    image="/image-to-video",
    durations=(5, 10),
    aspect_ratios=("16:9", "9:16", "1:1"),
    resolutions=("480p", "720p", "1080p"),
    seed=True,
    negative_prompt=True,
    enhance_field="enable_prompt_expansion",
)
_SEEDANCE_ASPECTS = ("21:9", "16:9", "4:3", "1:1", "3:4", "9:16")
_SEEDANCE = FalFamily(
    name="Seedance 1.0",
    text="/text-to-video",
    image="/image-to-video",
    durations=tuple(range(2, 13)),
    aspect_ratios=_SEEDANCE_ASPECTS,
    image_aspect_ratios=(*_SEEDANCE_ASPECTS, "auto"),
    resolutions=("480p", "720p", "1080p"),
    seed=True,
)
# (base id pattern, family); the base id is the model id less its endpoint suffix.
_FAMILIES: tuple[tuple[re.Pattern[str], FalFamily | None], ...] = (
    (re.compile(r"fal-ai/veo3\.1(/fast)?"), _VEO31),
    (re.compile(r"fal-ai/veo3(/fast)?"), _VEO3),
    (re.compile(r"fal-ai/kling-video/v[\d.]+/master"), _kling("master")),
    (re.compile(r"fal-ai/kling-video/v[\d.]+/pro"), _kling("pro")),
    (re.compile(r"fal-ai/kling-video/v[\d.]+/standard"), _kling("standard")),
    (re.compile(r"fal-ai/wan-25-preview"), _WAN25),
    (re.compile(r"fal-ai/bytedance/seedance/v1/pro"), _SEEDANCE),
)
_SUFFIXES = ("/text-to-video", "/image-to-video", "/first-last-frame-to-video", "/reference-to-video")


def family_of(model: str) -> tuple[FalFamily | None, str]:
    """The model's family and base id; None for a model whose schema is not in the table."""
    base = model.strip("/")
    for suffix in _SUFFIXES:
        base = base.removesuffix(suffix)
    for pattern, family in _FAMILIES:
        if pattern.fullmatch(base):
            return family, base
    return None, base
