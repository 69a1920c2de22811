"""What a model and each of its providers take, in the reference's terms: the request fields it
supports (``supported_params``), each with its kind, values or bounds, default and other names
(``supported_params_detail``), and the media it takes and makes. Pure: derived from the catalogue.

A provider takes what its model takes except what its ``unsupported`` names; the model-wide detail
of a field lists the providers that take it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vidgate.gateway.catalog.catalog import Model, ModelProviderRef
from vidgate.gateway.catalog.validate import MAX_SEED
from vidgate.types import ParamDetail

# Other names a field is accepted under (in a request, and in the listing's ``params`` filter).
ALIASES: dict[str, tuple[str, ...]] = {"duration": ("duration_seconds",)}
CANONICAL = {alias: name for name, aliases in ALIASES.items() for alias in aliases}
# ``unsupported`` names in the catalogue that are not the request field's own name.
FEATURE_FIELD = {"audio": "generate_audio"}
FRAME_ROLES = ("first_frame", "last_frame")
_EXTRA_TYPES = {
    "enhance_prompt": "boolean",
    "compression_quality": "integer",
    "person_generation": "string",
    "resize_mode": "string",
}


@dataclass(frozen=True, slots=True)
class Profile:
    """What a model takes, worked out once: its fields and their detail, and each provider's (by name)."""

    supported: list[str]
    details: dict[str, ParamDetail]
    providers: dict[str, tuple[list[str], dict[str, ParamDetail]]]


# By model identity; the model is held too, so an id is never taken for another model's.
_PROFILES: dict[int, tuple[Model, Profile]] = {}


def profile(model: Model) -> Profile:
    """``model``'s profile, built on first use (a catalogue does not change while the process runs).
    Shared between answers: read it, never change it."""
    held = _PROFILES.get(id(model))
    if held is None or held[0] is not model:
        built = Profile(
            supported(model),
            details(model),
            {p.name: (supported(model, p), details(model, p)) for p in model.providers},
        )
        held = _PROFILES[id(model)] = (model, built)
    return held[1]


def canonical(name: str) -> str:
    """A field's own name for any name it is accepted under."""
    return CANONICAL.get(name, name)


def input_types(model: Model) -> list[str]:
    return ["text", *model.reference_kinds]


def output_types(model: Model) -> list[str]:
    return ["video"]


def supported(model: Model, provider: ModelProviderRef | None = None) -> list[str]:
    """The request fields the model takes (through ``provider``, when given), in a stable order."""
    roles = _roles(model, provider)
    names = ["duration", "size"]
    names += ["resolution"] if model.resolutions else []
    names += ["aspect_ratio"] if model.aspect_ratios else []
    names += ["seed"] if model.seed else []
    names += ["negative_prompt"] if model.negative_prompt else []
    names += ["generate_audio"] if model.audio else []
    names += ["sample_count"] if model.sample_count[1] > 1 else []
    names += ["input_references"] if any(roles.values()) else []
    names += ["frame_images"] if set(roles.get("image", ())) & set(FRAME_ROLES) else []
    names += ["input_video_duration"] if model.input_video_seconds else []
    names += ["input_audio_duration"] if model.input_audio_seconds else []
    names += ["operation"] if operations(model, provider) else []
    names += sorted(model.extra_params)
    if provider is None:
        return names
    cannot = {FEATURE_FIELD.get(f, f) for f in provider.unsupported}
    return [n for n in names if n not in cannot]


def operations(model: Model, provider: ModelProviderRef | None = None) -> list[str]:
    """What the model (through ``provider``) does with a source video: ``extend``, ``edit``."""
    cannot = provider.unsupported if provider is not None else frozenset()
    if "video:source" in cannot:
        return []
    return [op for op in model.operations if f"op:{op}" not in cannot]


def jobs(model: Model) -> list[str]:
    """Every kind of job the model runs: ``generate`` unless it needs a source, then its operations."""
    return ([] if model.requires_source else ["generate"]) + list(model.operations)


def supports_all(model: Model, names: Iterable[str]) -> bool:
    """Whether the model takes every field in ``names`` (each by any name it is accepted under)."""
    taken = profile(model).supported
    return all(canonical(n) in taken for n in names)


def details(model: Model, provider: ModelProviderRef | None = None) -> dict[str, ParamDetail]:
    """Each field ``supported`` lists, described; model-wide, with the providers that take it."""
    out = {name: _detail(model, name, provider) for name in supported(model, provider)}
    if provider is None:
        takers = {p.name: set(supported(model, p)) for p in model.providers}
        for name, detail in out.items():
            detail.providers = [p for p, names in takers.items() if name in names]
    return out


def _roles(model: Model, provider: ModelProviderRef | None) -> dict[str, list[str]]:
    """The roles the model takes references in, by kind; less those ``provider`` cannot take."""
    cannot = provider.unsupported if provider is not None else frozenset()
    out = {}
    for kind in model.reference_kinds:
        feature = "role" if kind == "image" else kind
        out[kind] = [r for r in model.reference_roles(kind) if f"{feature}:{r}" not in cannot]
    return {kind: roles for kind, roles in out.items() if roles}


def _detail(model: Model, name: str, provider: ModelProviderRef | None) -> ParamDetail:
    d = ParamDetail()
    if name == "duration":
        d.type, d.default, d.aliases = "integer", model.default_duration, list(ALIASES["duration"])
        if model.duration_range:  # any whole number of seconds in a range
            d.min, d.max = model.durations[0], model.durations[1]
        else:
            d.values = list(model.durations)
    elif name == "size":
        _size(model, d)
    elif name in ("resolution", "aspect_ratio"):
        values = model.resolutions if name == "resolution" else model.aspect_ratios
        default = model.default_resolution if name == "resolution" else model.default_aspect_ratio
        d.type, d.values = "enum", list(values)
        if default is not None:
            d.default = default
    elif name == "seed":
        d.type, d.min, d.max = "integer", 0, MAX_SEED
    elif name == "negative_prompt":
        d.type = "string"
    elif name == "generate_audio":
        d.type, d.default = "boolean", model.default_audio
    elif name == "sample_count":
        d.type, d.min, d.max, d.default = "integer", model.sample_count[0], model.sample_count[1], 1
    elif name == "input_references":
        d.type, d.roles = "array", _roles(model, provider)
    elif name == "frame_images":
        roles = _roles(model, provider).get("image", [])
        d.type, d.values = "array", [r for r in FRAME_ROLES if r in roles]
    elif name in ("input_video_duration", "input_audio_duration"):
        bounds = model.input_video_seconds if name == "input_video_duration" else model.input_audio_seconds
        assert bounds is not None
        d.type, d.min, d.max = "number", bounds[0], bounds[1]
    elif name == "operation":
        d.type, d.values = "enum", operations(model, provider)
    else:
        d.type = _EXTRA_TYPES.get(name, "string")
    return d


def _size(model: Model, d: ParamDetail) -> None:
    if model.sizes:
        d.type, d.values = "enum", list(model.sizes)
    else:
        rng: dict[str, Any] = model.size_range or {}
        d.type, d.min, d.max = "string", rng.get("min_side", 64), rng.get("max_side", 1920)
    if model.default_size:
        d.default = model.default_size
