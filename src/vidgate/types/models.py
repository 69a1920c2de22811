"""The model catalogue: each model's capabilities, parameters, providers and price."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

from vidgate.types.base import _Response


class ParamDetail(_Response):
    """What a model (or one of its providers) takes for one request field: its kind, the values or
    bounds it accepts, its default, the other names it is accepted under, and (model-wide) which
    providers take it."""

    supported: bool = True
    type: str | UnsetType = UNSET
    values: list[Any] | UnsetType = UNSET
    min: float | UnsetType = UNSET
    max: float | UnsetType = UNSET
    default: Any | UnsetType = UNSET
    aliases: list[str] | UnsetType = UNSET
    roles: dict[str, list[str]] | UnsetType = UNSET  # input references: the roles taken, by kind of medium
    providers: list[str] | UnsetType = UNSET


class ModelProvider(_Response):
    """A provider of a model: vidgate's ``name`` and state, and the reference's ``id`` and ``supported_*``."""

    name: str
    alpha: bool = False
    available: bool = True
    healthy: bool = True
    id: str = ""
    supported_params: list[str] = msgspec.field(default_factory=list)
    supported_parameters: list[str] = msgspec.field(default_factory=list)
    supported_params_detail: dict[str, ParamDetail] = msgspec.field(default_factory=dict)
    supported_parameters_detail: dict[str, ParamDetail] = msgspec.field(default_factory=dict)


class ModelCapabilities(_Response):
    durations: list[int]
    resolutions: list[str]
    aspect_ratios: list[str]
    sizes: list[str] | UnsetType = UNSET
    size_range: dict[str, int] | UnsetType = UNSET
    audio: bool = False
    seed: bool = False
    negative_prompt: bool = False
    sample_count: list[int] = msgspec.field(default_factory=lambda: [1, 1])
    input_reference_roles: list[str] = msgspec.field(default_factory=list)
    required_reference_roles: list[str] = msgspec.field(default_factory=list)
    extra_parameters: list[str] = msgspec.field(default_factory=list)
    cancellable: bool = False
    # Rules the upstreams enforce, present where the model has them: the durations a resolution is
    # made at, the durations and resolutions a reference role needs, features one request may not
    # combine, and audio that no provider can turn off.
    durations_by_resolution: dict[str, list[int]] | UnsetType = UNSET
    role_durations: dict[str, list[int]] | UnsetType = UNSET
    role_resolutions: dict[str, list[str]] | UnsetType = UNSET
    exclusive: list[list[str]] | UnsetType = UNSET
    audio_always: bool | UnsetType = UNSET
    # The jobs the model runs: ``generate`` (unless it needs a source video) and, on a source video
    # (an input reference of type video with role source), ``extend`` and ``edit``.
    operations: list[str] = msgspec.field(default_factory=lambda: ["generate"])
    video_reference_roles: list[str] = msgspec.field(default_factory=list)
    audio_reference_roles: list[str] = msgspec.field(default_factory=list)
    max_reference_images: int | UnsetType = UNSET  # images with the role reference
    extend_durations: list[int] | UnsetType = UNSET  # the seconds an extend adds, where not ``durations``
    input_video_seconds: list[float] | UnsetType = UNSET  # [shortest, longest] input video it takes
    input_audio_seconds: list[float] | UnsetType = UNSET


class Price(_Response):
    currency: str
    per_second: float
    per_request: float = 0.0
    tiers: list[dict[str, Any]] | UnsetType = UNSET


class VideoModel(_Response):
    """A model of the catalogue: vidgate's ``id`` and ``capabilities`` alongside the reference's
    ``model``, ``status``, ``input_types``, ``output_types`` and ``supported_*`` (``supported_params``
    and ``supported_parameters`` are one list under two names, as are their ``_detail``)."""

    id: str
    name: str
    capabilities: ModelCapabilities
    providers: list[ModelProvider]
    pricing: Price | UnsetType = UNSET
    object: str = "video.model"
    description: str | UnsetType = UNSET
    model: str = ""
    status: str = "active"  # "unavailable" when none of its providers is configured; "retired"
    retired: str | UnsetType = UNSET  # the date its maker stopped serving it (listed with include_retired)
    input_types: list[str] = msgspec.field(default_factory=list)
    output_types: list[str] = msgspec.field(default_factory=list)
    supported_params: list[str] = msgspec.field(default_factory=list)
    supported_parameters: list[str] = msgspec.field(default_factory=list)
    supported_params_detail: dict[str, ParamDetail] = msgspec.field(default_factory=dict)
    supported_parameters_detail: dict[str, ParamDetail] = msgspec.field(default_factory=dict)


class VideoModelList(_Response):
    data: list[VideoModel]
    object: str = "list"
