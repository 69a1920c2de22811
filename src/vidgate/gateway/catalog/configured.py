"""Models an operator declares in the config file (``[models."maker/name"]``), over the shipped catalogue.

A table for an id the catalogue lacks adds a model, in the catalogue's own format (``providers``,
``durations``, ``resolutions`` or ``sizes``, ``aspect_ratios``, reference roles, ``pricing``...); one
for a shipped id overrides the keys it names; ``enabled = false`` leaves the model out. Each table is
checked when the settings load, so a mistake is one line naming the file, the table and the key.

A retired model (``retired``: its maker stopped serving it) comes back where the operator says an
upstream still serves it: ``retired = false`` on its table, or a ``base_url`` of their own on one of
its providers' ``[providers.NAME]`` tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vidgate.gateway.catalog.catalog import (
    RESOLUTION_SHORT_SIDE,
    ROLES,
    Catalog,
    Model,
    build_catalog,
    catalog_tables,
    model_from_table,
)
from vidgate.gateway.catalog.operations import CatalogKeyError
from vidgate.gateway.providers.base import ProviderConfig


class ConfigError(ValueError):
    """A mistake in the config file, as one line: ``file: [table].key: what is wrong``."""


@dataclass(frozen=True)
class ConfiguredModel:
    """One ``[models."id"]`` table: the catalogue keys it sets, or ``enabled = false``."""

    id: str
    keys: Mapping[str, Any]
    enabled: bool = True


def _each(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(check(x) for x in v)


def _table_of(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, dict) and all(isinstance(k, str) and check(x) for k, x in v.items())


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: Any) -> bool:
    return _int(v) or isinstance(v, float)


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _bool(v: Any) -> bool:
    return isinstance(v, bool)


_INTS, _STRS = _each(_int), _each(_str)
_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "name": (_str, "a string"),
    "description": (_str, "a string"),
    "durations": (_INTS, "a list of integers"),
    "duration_range": (_bool, "true or false"),
    "default_duration": (_int, "an integer"),
    "resolutions": (_STRS, "a list of strings"),
    "aspect_ratios": (_STRS, "a list of strings"),
    "default_resolution": (_str, "a string"),
    "default_aspect_ratio": (_str, "a string"),
    "sizes": (_STRS, "a list of strings"),
    "size_range": (_table_of(_int), "a table of integers (min_side, max_side, max_pixels)"),
    "default_size": (_str, "a string"),
    "audio": (_bool, "true or false"),
    "default_audio": (_bool, "true or false"),
    "audio_always": (_bool, "true or false"),
    "seed": (_bool, "true or false"),
    "negative_prompt": (_bool, "true or false"),
    "sample_count": (lambda v: _INTS(v) and len(v) == 2, "a list of two integers"),
    "input_reference_roles": (_STRS, "a list of strings"),
    "video_reference_roles": (_STRS, "a list of strings"),
    "audio_reference_roles": (_STRS, "a list of strings"),
    "required_roles": (_STRS, "a list of strings"),
    "extra_params": (_STRS, "a list of strings"),
    "cancellable": (_bool, "true or false"),
    "expected_seconds": (_number, "a number"),
    "deadline_seconds": (_int, "an integer"),
    "pricing": (_table_of(lambda v: _int(v) or _each(_table_of(lambda x: True))(v)), "a price table"),
    "providers": (_each(_table_of(lambda v: True)), "a list of tables (name, model)"),
    "input_video_seconds": (lambda v: _each(_number)(v) and len(v) == 2, "a list of two numbers"),
    "input_audio_seconds": (lambda v: _each(_number)(v) and len(v) == 2, "a list of two numbers"),
    "durations_by_resolution": (_table_of(_INTS), "a table of lists of integers"),
    "role_durations": (_table_of(_INTS), "a table of lists of integers"),
    "role_resolutions": (_table_of(_STRS), "a table of lists of strings"),
    "exclusive": (_each(_STRS), "a list of lists of strings"),
    "retired": (lambda v: _str(v) or v is False, "a date (YYYY-MM-DD) or false"),
    "operations": (_STRS, "a list of strings (extend, edit)"),
    "max_reference_images": (lambda v: _int(v) and v >= 1, "a whole number of at least 1"),
    "extend_durations": (_INTS, "a list of integers"),
}
_PROVIDER_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "name": (_str, "a string"),
    "model": (_str, "a string"),
    "alpha": (_bool, "true or false"),
    "unsupported": (_STRS, "a list of strings"),
    "media": (_STRS, "a list of strings"),
    "audio_always": (_bool, "true or false"),
    "pricing": _KINDS["pricing"],
}


def parse_models(table: Any, source: str) -> tuple[ConfiguredModel, ...]:
    """The ``models`` table of the config file at ``source``, each key's type checked."""
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: [models]: expected tables named by model id")
    out = []
    for model_id, raw in table.items():
        where = f'{source}: [models."{model_id}"]'
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a table")
        keys = dict(raw)
        enabled = keys.pop("enabled", True)
        if not _bool(enabled):
            raise ConfigError(f"{where}.enabled: expected true or false")
        for key, value in keys.items():
            _check(where, key, value, _KINDS)
        for i, provider in enumerate(keys.get("providers", ())):
            for key, value in provider.items():
                _check(f"{where}.providers[{i}]", key, value, _PROVIDER_KINDS)
            if missing := [k for k in ("name", "model") if k not in provider]:
                raise ConfigError(f"{where}.providers[{i}]: {missing[0]} is required")
        out.append(ConfiguredModel(model_id, keys, enabled))
    return tuple(out)


def _check(where: str, key: str, value: Any, kinds: dict[str, tuple[Callable[[Any], bool], str]]) -> None:
    if key not in kinds:
        raise ConfigError(f"{where}.{key}: unknown key; keys: {', '.join(kinds)}")
    check, expected = kinds[key]
    if not check(value):
        raise ConfigError(f"{where}.{key}: expected {expected}")


def configured_catalog(
    models: tuple[ConfiguredModel, ...] = (),
    providers: Mapping[str, ProviderConfig] | None = None,
    *,
    source: str = "config",
    shipped: list[dict[str, Any]] | None = None,
) -> Catalog:
    """The shipped catalogue with the operator's models added, overridden or left out, and the
    retired models an operator's upstream still serves brought back."""
    tables = {t["id"]: dict(t) for t in (catalog_tables() if shipped is None else shipped)}
    for entry in models:
        where = f'{source}: [models."{entry.id}"]'
        if not entry.enabled:
            tables.pop(entry.id, None)
            continue
        base = tables.get(entry.id)
        if base is None and "providers" not in entry.keys:
            raise ConfigError(f"{where}.providers: a new model needs its providers (name and model)")
        if base is None and "durations" not in entry.keys:
            raise ConfigError(f"{where}.durations: a new model needs its durations")
        merged = {**(base or {}), **entry.keys, "id": entry.id}
        if merged.get("retired") is False:
            merged.pop("retired")
        try:
            model = model_from_table(merged)
        except CatalogKeyError as exc:
            raise ConfigError(f"{where}.{exc.key}: {exc.message}") from None
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if problem := check_model(model):
            key, message = problem
            raise ConfigError(f"{where}.{key}: {message}")
        tables[entry.id] = merged
    served = {name for name, cfg in (providers or {}).items() if cfg.enabled and cfg.base_url}
    for table in tables.values():
        if table.get("retired") and any(p["name"] in served for p in table["providers"]):
            table.pop("retired")
    return build_catalog(list(tables.values()))


def check_model(model: Model) -> tuple[str, str] | None:
    """The first key of ``model`` that contradicts another, and why; None when it holds together."""
    if not model.providers:
        return "providers", "at least one provider is needed"
    if model.duration_range and len(model.durations) != 2:
        return "durations", "a duration_range is [shortest, longest]"
    if not model.durations or not model.supports_duration(model.default_duration):
        return "default_duration", f"{model.default_duration} is not one of the durations"
    if unknown := [r for r in model.resolutions if r not in RESOLUTION_SHORT_SIDE]:
        return "resolutions", f"{unknown[0]} is not a resolution; use one of {', '.join(RESOLUTION_SHORT_SIDE)}"
    if model.default_resolution is not None and model.default_resolution not in model.resolutions:
        return "default_resolution", f"{model.default_resolution} is not one of the resolutions"
    if model.default_aspect_ratio is not None and model.default_aspect_ratio not in model.aspect_ratios:
        return "default_aspect_ratio", f"{model.default_aspect_ratio} is not one of the aspect_ratios"
    if not model.sizes and not model.size_range and not (model.resolutions and model.aspect_ratios):
        return "resolutions", "a model needs sizes, a size_range, or resolutions and aspect_ratios"
    for resolution, durations in model.durations_by_resolution.items():
        if resolution not in model.resolutions:
            return "durations_by_resolution", f"{resolution} is not one of the resolutions"
        if not all(model.supports_duration(d) for d in durations):
            return "durations_by_resolution", f"{resolution}: not every duration is one of the durations"
    roles = {r for kind in ("image", "video", "audio") for r in model.reference_roles(kind)}
    for key, by_role in (("role_durations", model.role_durations), ("role_resolutions", model.role_resolutions)):
        if unknown := [r for r in by_role if r not in roles]:
            return key, f"{unknown[0]} is not a role the model takes; roles: {', '.join(ROLES)}"
    if bad := [r for rs in model.role_resolutions.values() for r in rs if r not in model.resolutions]:
        return "role_resolutions", f"{bad[0]} is not one of the resolutions"
    if any(p.audio_always for p in model.providers) and not model.audio:
        return "audio_always", "a model that makes no audio cannot always make it"
    if model.audio_always and not model.default_audio:
        return "default_audio", "must be true where audio cannot be turned off"
    return None
