"""The model catalogue, loaded once from the TOML shipped in the package (or a file of one's own).

The package ships one file per model maker (``google.toml``, ``kling.toml``, ...), each a list of
``[[models]]``: what a model accepts, who serves it (``providers``: each adapter's name and its own
model id, with ``unsupported`` naming what that provider cannot take) and what it costs, in integer
micro-dollars (1 USD = 1_000_000) per output second with optional tiers. ``listing.toml`` holds the
order the models are listed in.

Input references are declared per kind of medium: ``input_reference_roles`` for images (a mask is an
image with the role ``mask``), ``video_reference_roles`` and ``audio_reference_roles`` for the others.
A provider sends only images unless its ``media`` names the other kinds it takes; routing never gives
it a job with a video or audio reference otherwise. ``input_video_seconds`` and ``input_audio_seconds``
bound the ``input_video_duration`` and ``input_audio_duration`` a request may state, and the inputs
themselves once measured. ``operations``, ``max_reference_images`` and ``extend_durations`` say what a
model does with a ``source`` video and how many reference images it takes (see ``operations``).

Rules the upstreams enforce, so a create breaking one is refused at once rather than upstream:
``durations_by_resolution`` (the durations a resolution is made at), ``role_durations`` and
``role_resolutions`` (the durations and resolutions a reference role needs), ``exclusive`` (lists of
features, in ``unsupported``'s terms, that one request may not combine) and ``audio_always`` (on a
model or a provider entry: audio cannot be turned off; the feature ``audio_off`` then joins that
provider's ``unsupported``). ``retired`` is the date the maker stopped serving the model.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from vidgate.gateway.catalog.operations import CatalogKeyError, model_problem, parse_keys
from vidgate.types import Operation

AUDIO_OFF = "audio_off"  # the feature of a job made without audio

ROLES = ("first_frame", "last_frame", "reference", "source", "mask")
MEDIA_KINDS = ("image", "video", "audio")
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
    media: frozenset[str] = frozenset({"image"})  # the kinds of input reference its adapter sends
    audio_always: bool = False  # it cannot turn audio off


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
    input_reference_roles: tuple[str, ...] = ()  # of images
    video_reference_roles: tuple[str, ...] = ()
    audio_reference_roles: tuple[str, ...] = ()
    required_roles: tuple[str, ...] = ()
    extra_params: frozenset[str] = frozenset()
    cancellable: bool = False
    expected_seconds: float = 60.0
    deadline_seconds: int = 3600
    pricing: PriceCard = field(default_factory=lambda: PriceCard(per_second=0))
    description: str = ""
    input_video_seconds: tuple[float, float] | None = None
    input_audio_seconds: tuple[float, float] | None = None
    durations_by_resolution: dict[str, tuple[int, ...]] = field(default_factory=dict)
    role_durations: dict[str, tuple[int, ...]] = field(default_factory=dict)
    role_resolutions: dict[str, tuple[str, ...]] = field(default_factory=dict)
    exclusive: tuple[tuple[str, ...], ...] = ()
    retired: str | None = None  # the date its maker stopped serving it
    operations: tuple[Operation, ...] = ()  # what it does with a source video: extend, edit
    max_reference_images: int | None = None  # images with the role reference (None: only the overall cap)
    extend_durations: tuple[int, ...] = ()  # the seconds an extend adds, where not its durations

    @property
    def audio_always(self) -> bool:
        """No provider of the model can make it without audio."""
        return self.audio and all(p.audio_always for p in self.providers)

    def durations_at(self, resolution: str | None) -> list[int]:
        """The durations the model makes at ``resolution``."""
        allowed = self.durations_by_resolution.get(resolution or "")
        every = self.duration_list()
        return every if allowed is None else [d for d in every if d in allowed]

    def reference_roles(self, kind: str) -> tuple[str, ...]:
        """The roles the model takes references of ``kind`` (image, video, audio) in."""
        if kind == "image":
            return self.input_reference_roles
        return self.video_reference_roles if kind == "video" else self.audio_reference_roles

    @property
    def reference_kinds(self) -> tuple[str, ...]:
        """The kinds of input reference the model takes, in ``MEDIA_KINDS`` order."""
        return tuple(k for k in MEDIA_KINDS if self.reference_roles(k))

    @property
    def requires_source(self) -> bool:
        """It only extends or edits: every job names a source video."""
        return "source" in self.required_roles and bool(self.operations)

    def supports_duration(self, seconds: int, operation: str = "generate") -> bool:
        if operation == "extend" and self.extend_durations:
            return seconds in self.extend_durations
        if self.duration_range:
            return self.durations[0] <= seconds <= self.durations[1]
        return seconds in self.durations

    def duration_text(self, operation: str = "generate") -> str:
        if operation == "extend" and self.extend_durations:
            return ", ".join(str(d) for d in self.extend_durations)
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


def _roles(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    roles = tuple(raw.get(key, ()))
    if unknown := sorted(set(roles) - set(ROLES)):
        raise ValueError(f"model {raw['id']}: {key} names unknown roles {unknown}; roles: {', '.join(ROLES)}")
    return roles


def _bounds(raw: dict[str, Any], key: str) -> tuple[float, float] | None:
    if key not in raw:
        return None
    lo, hi = (float(x) for x in raw[key])
    return lo, hi


def _provider(raw: dict[str, Any], model: dict[str, Any]) -> ModelProviderRef:
    """A provider of a model; the video and audio references the model takes but the provider does not
    send, and a job without audio where it always makes audio, are added to what it cannot take, so
    routing passes it over for such jobs."""
    media = frozenset(("image", *raw.get("media", ())))
    if unknown := sorted(media - set(MEDIA_KINDS)):
        raise ValueError(f"model {model['id']}: provider {raw['name']} names unknown media {unknown}")
    cannot = {
        f"{kind}:{role}"
        for kind in MEDIA_KINDS
        if kind not in media
        for role in model.get(f"{kind}_reference_roles", ())
    }
    always = bool(raw.get("audio_always", model.get("audio_always", False)))
    if always:
        cannot.add(AUDIO_OFF)
    return ModelProviderRef(
        raw["name"],
        raw["model"],
        bool(raw.get("alpha", False)),
        frozenset(raw.get("unsupported", ())) | cannot,
        _price(raw["pricing"]) if "pricing" in raw else None,
        media,
        always,
    )


def _model(raw: dict[str, Any]) -> Model:
    durations = raw.get("durations", [raw.get("default_duration", 4)])
    is_range = bool(raw.get("duration_range", False))
    operations, max_reference_images, extend_durations = parse_keys(raw)
    model = Model(
        id=raw["id"],
        name=raw.get("name", raw["id"]),
        description=raw.get("description", ""),
        providers=tuple(_provider(p, raw) for p in raw["providers"]),
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
        input_reference_roles=_roles(raw, "input_reference_roles"),
        video_reference_roles=_roles(raw, "video_reference_roles"),
        audio_reference_roles=_roles(raw, "audio_reference_roles"),
        required_roles=tuple(raw.get("required_roles", ())),
        extra_params=frozenset(raw.get("extra_params", ())),
        cancellable=raw.get("cancellable", False),
        expected_seconds=float(raw.get("expected_seconds", 60)),
        deadline_seconds=int(raw.get("deadline_seconds", 3600)),
        pricing=_price(raw.get("pricing", {})),
        input_video_seconds=_bounds(raw, "input_video_seconds"),
        input_audio_seconds=_bounds(raw, "input_audio_seconds"),
        durations_by_resolution=_by_key(raw, "durations_by_resolution", int),
        role_durations=_by_key(raw, "role_durations", int),
        role_resolutions=_by_key(raw, "role_resolutions", str),
        exclusive=tuple(tuple(group) for group in raw.get("exclusive", ())),
        retired=str(raw["retired"]) if raw.get("retired") else None,
        operations=operations,
        max_reference_images=max_reference_images,
        extend_durations=extend_durations,
    )
    if problem := operations_problem(model):
        raise CatalogKeyError(model.id, *problem)
    return model


def operations_problem(model: Model) -> tuple[str, str] | None:
    """The first of the model's operations keys that contradicts another, and why."""
    unsupported = [p.unsupported for p in model.providers]
    return model_problem(model.operations, model.extend_durations, model.video_reference_roles, unsupported)


def _by_key(raw: dict[str, Any], key: str, kind: type) -> dict[str, Any]:
    return {name: tuple(kind(v) for v in values) for name, values in raw.get(key, {}).items()}


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
    return build_catalog(catalog_tables(path))


def catalog_tables(path: Path | None = None) -> list[dict[str, Any]]:
    """The catalogue's ``[[models]]`` tables as read, in listing order (before ``build_catalog``); a
    table that does not make a model is a ``ValueError`` naming its file, its model and the key."""
    if path is not None:
        return _tables(path.read_text(), str(path))
    return _shipped(resources.files(__package__))


def build_catalog(tables: list[dict[str, Any]]) -> Catalog:
    models = [model_from_table(t) for t in tables]
    ids = [m.id for m in models]
    if len(ids) != len(set(ids)):
        raise ValueError(f"duplicate model ids in the catalogue: {sorted({i for i in ids if ids.count(i) > 1})}")
    return Catalog(tuple(models))


def model_from_table(raw: dict[str, Any]) -> Model:
    """One ``[[models]]`` table as a ``Model``: the format's every key, with its defaults."""
    return _model(raw)


def _tables(text: str, source: str) -> list[dict[str, Any]]:
    tables = list(tomllib.loads(text).get("models", ()))
    for table in tables:
        _check_table(table, source)
    return tables


def _check_table(table: dict[str, Any], source: str) -> None:
    """Parse ``table`` once as read, so a mistake names the file it is in."""
    model_id = table.get("id", "?")
    try:
        _model(table)
    except KeyError as exc:
        raise ValueError(f"{source}: model {model_id}: {exc.args[0]} is required") from None
    except (ValueError, TypeError, IndexError) as exc:
        text = str(exc)
        where = "" if text.startswith(f"model {model_id}") else f"model {model_id}: "
        raise ValueError(f"{source}: {where}{text}") from None


def _shipped(folder: Traversable) -> list[dict[str, Any]]:
    """Every maker's file beside this module, in the listing's order; models it does not name come
    after, by file name and then in file order."""
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".toml") and f.name != LISTING), key=_name)
    tables = [t for f in files for t in _tables(f.read_text(), f.name)]
    listing = tomllib.loads(folder.joinpath(LISTING).read_text())["order"]
    if stale := sorted(set(listing) - {t["id"] for t in tables}):
        raise ValueError(f"{LISTING} names models no catalogue file has: {stale}")
    rank = {model_id: i for i, model_id in enumerate(listing)}
    return sorted(tables, key=lambda t: rank.get(t["id"], len(rank)))


def _name(file: Traversable) -> str:
    return file.name
