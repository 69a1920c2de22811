"""The model catalogue, loaded once from the TOML shipped in the package (or a file of one's own).

The package ships one file per model maker (``google.toml``, ``kling.toml``, ...), each a list of
``[[models]]``: what a model accepts, who serves it (``providers``: each adapter's name and its own
model id, with ``unsupported`` naming what that provider cannot take) and what it costs, in integer
micro-dollars (1 USD = 1_000_000) per output second with optional tiers. ``listing.toml`` holds the
order the models are listed in.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

RESOLUTION_SHORT_SIDE = {
    "360p": 360,
    "480p": 480,
    "540p": 540,
    "720p": 720,
    "768p": 768,
    "1080p": 1080,
    "1K": 1080,
    "1440p": 1440,
    "2K": 1440,
    "4K": 2160,
}


@dataclass(frozen=True)
class PriceCard:
    """Micro-dollars per output second, with tiers by resolution and audio and a per-request fee."""

    per_second: int
    per_request: int = 0
    audio_per_second: int = 0
    tiers: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class ModelProviderRef:
    name: str
    model: str
    alpha: bool = False
    unsupported: frozenset[str] = frozenset()
    pricing: PriceCard | None = None


@dataclass(frozen=True)
class Model:
    id: str
    name: str
    providers: tuple[ModelProviderRef, ...]
    durations: tuple[int, ...]
    duration_range: bool
    default_duration: int
    resolutions: tuple[str, ...]
    aspect_ratios: tuple[str, ...]
    default_resolution: str | None
    default_aspect_ratio: str | None
    sizes: tuple[str, ...] = ()
    size_range: dict[str, int] | None = None
    default_size: str | None = None
    audio: bool = False
    default_audio: bool = False
    seed: bool = False
    negative_prompt: bool = False
    sample_count: tuple[int, int] = (1, 1)
    input_reference_roles: tuple[str, ...] = ()
    required_roles: tuple[str, ...] = ()
    extra_params: frozenset[str] = frozenset()
    cancellable: bool = False
    expected_seconds: float = 60.0
    deadline_seconds: int = 3600
    pricing: PriceCard = field(default_factory=lambda: PriceCard(per_second=0))
    description: str = ""

    def supports_duration(self, seconds: int) -> bool:
        if self.duration_range:
            return self.durations[0] <= seconds <= self.durations[1]
        return seconds in self.durations

    def duration_text(self) -> str:
        if self.duration_range:
            return f"any whole number of seconds from {self.durations[0]} to {self.durations[1]}"
        return ", ".join(str(d) for d in self.durations)

    def price_card(self, provider: str | None) -> PriceCard:
        """The provider's own card where it has one, else the model's."""
        ref = next((p for p in self.providers if p.name == provider), None)
        return ref.pricing if ref is not None and ref.pricing is not None else self.pricing

    def duration_list(self) -> list[int]:
        if self.duration_range:
            return list(range(self.durations[0], self.durations[1] + 1))
        return list(self.durations)


def _price(raw: dict[str, Any]) -> PriceCard:
    return PriceCard(
        per_second=int(raw.get("per_second", 0)),
        per_request=int(raw.get("per_request", 0)),
        audio_per_second=int(raw.get("audio_per_second", 0)),
        tiers=tuple(raw.get("tiers", ())),
    )


def _model(raw: dict[str, Any]) -> Model:
    durations = raw.get("durations", [raw.get("default_duration", 4)])
    is_range = bool(raw.get("duration_range", False))
    return Model(
        id=raw["id"],
        name=raw.get("name", raw["id"]),
        description=raw.get("description", ""),
        providers=tuple(
            ModelProviderRef(
                p["name"],
                p["model"],
                bool(p.get("alpha", False)),
                frozenset(p.get("unsupported", ())),
                _price(p["pricing"]) if "pricing" in p else None,
            )
            for p in raw["providers"]
        ),
        durations=tuple(durations),
        duration_range=is_range,
        default_duration=raw.get("default_duration", durations[0]),
        resolutions=tuple(raw.get("resolutions", ())),
        aspect_ratios=tuple(raw.get("aspect_ratios", ())),
        default_resolution=raw.get("default_resolution"),
        default_aspect_ratio=raw.get("default_aspect_ratio"),
        sizes=tuple(raw.get("sizes", ())),
        size_range=raw.get("size_range"),
        default_size=raw.get("default_size"),
        audio=raw.get("audio", False),
        default_audio=raw.get("default_audio", False),
        seed=raw.get("seed", False),
        negative_prompt=raw.get("negative_prompt", False),
        sample_count=tuple(raw.get("sample_count", (1, 1))),
        input_reference_roles=tuple(raw.get("input_reference_roles", ())),
        required_roles=tuple(raw.get("required_roles", ())),
        extra_params=frozenset(raw.get("extra_params", ())),
        cancellable=raw.get("cancellable", False),
        expected_seconds=float(raw.get("expected_seconds", 60)),
        deadline_seconds=int(raw.get("deadline_seconds", 3600)),
        pricing=_price(raw.get("pricing", {})),
    )


@dataclass(frozen=True)
class Catalog:
    models: tuple[Model, ...]

    @cached_property
    def by_id(self) -> dict[str, Model]:
        return {m.id: m for m in self.models}

    def get(self, model_id: str) -> Model | None:
        return self.by_id.get(model_id)

    @cached_property
    def provider_names(self) -> frozenset[str]:
        return frozenset(p.name for m in self.models for p in m.providers)


LISTING = "listing.toml"


def load_catalog(path: Path | None = None) -> Catalog:
    """The shipped catalogue, or the one file at ``path`` (listed in its own order)."""
    models = _models(path.read_text()) if path is not None else _shipped(resources.files(__package__))
    ids = [m.id for m in models]
    if len(ids) != len(set(ids)):
        raise ValueError(f"duplicate model ids in the catalogue: {sorted({i for i in ids if ids.count(i) > 1})}")
    return Catalog(tuple(models))


def _models(text: str) -> list[Model]:
    return [_model(m) for m in tomllib.loads(text).get("models", ())]


def _shipped(folder: Traversable) -> list[Model]:
    """Every maker's file beside this module, in the listing's order; models it does not name come
    after, by file name and then in file order."""
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".toml") and f.name != LISTING), key=_name)
    models = [m for f in files for m in _models(f.read_text())]
    listing = tomllib.loads(folder.joinpath(LISTING).read_text())["order"]
    if stale := sorted(set(listing) - {m.id for m in models}):
        raise ValueError(f"{LISTING} names models no catalogue file has: {stale}")
    rank = {model_id: i for i, model_id in enumerate(listing)}
    return sorted(models, key=lambda m: rank.get(m.id, len(rank)))


def _name(file: Traversable) -> str:
    return file.name
