"""``GET /v1/videos/models``: the catalogue with each provider's availability and health, in the
reference's shape (``model``, ``status``, ``supported_params``…) with vidgate's own fields alongside.

``?params=a,b`` (comma-separated, or repeated) keeps the models that take every field named, by any
name a field is accepted under. A model none of whose providers is configured is ``unavailable``.
A retired model (its maker no longer serves it) is left out unless ``?include_retired=true``, and then
listed with ``status: "retired"`` and the date.
"""

from __future__ import annotations

from typing import Any

from msgspec import UNSET
from starlette.requests import Request
from starlette.responses import Response

from vidgate.gateway.api.http import bool_param, json_response
from vidgate.gateway.billing.pricing import usd
from vidgate.gateway.catalog import capabilities
from vidgate.gateway.catalog.catalog import Model
from vidgate.gateway.providers.registry import Providers
from vidgate.gateway.services import services
from vidgate.types import ModelCapabilities, ModelProvider, Price, VideoModel, VideoModelList


def model_view(model: Model, providers: Providers) -> VideoModel:
    caps = ModelCapabilities(
        durations=model.duration_list(),
        resolutions=list(model.resolutions),
        aspect_ratios=list(model.aspect_ratios),
        audio=model.audio,
        seed=model.seed,
        negative_prompt=model.negative_prompt,
        sample_count=list(model.sample_count),
        input_reference_roles=list(model.input_reference_roles),
        required_reference_roles=list(model.required_roles),
        extra_parameters=sorted(model.extra_params),
        cancellable=model.cancellable,
        operations=capabilities.jobs(model),
        video_reference_roles=list(model.video_reference_roles),
        audio_reference_roles=list(model.audio_reference_roles),
    )
    _rules(model, caps)
    _inputs(model, caps)
    if model.sizes:
        caps.sizes = list(model.sizes)
    if model.size_range:
        caps.size_range = dict(model.size_range)
    card = model.pricing
    tiers: list[dict[str, Any]] = [
        {**{k: v for k, v in t.items() if k != "per_second"}, "per_second": usd(int(t["per_second"]))}
        for t in card.tiers
    ]
    price = Price(currency="USD", per_second=usd(card.per_second), per_request=usd(card.per_request))
    if tiers or card.audio_per_second:
        price.tiers = tiers + (
            [{"audio": True, "add_per_second": usd(card.audio_per_second)}] if card.audio_per_second else []
        )
    known = capabilities.profile(model)
    listed = []
    for p in model.providers:
        names, detail = known.providers[p.name]
        listed.append(
            ModelProvider(
                name=p.name,
                alpha=p.alpha,
                available=providers.is_available(p.name),
                healthy=providers.is_healthy(p.name),
                id=p.name,
                supported_params=names,
                supported_parameters=names,
                supported_params_detail=detail,
                supported_parameters_detail=detail,
            )
        )
    names, detail = known.supported, known.details
    status = "active" if any(p.available for p in listed) else "unavailable"
    return VideoModel(
        id=model.id,
        name=model.name,
        description=model.description,
        capabilities=caps,
        providers=listed,
        pricing=price,
        model=model.id,
        status="retired" if model.retired else status,
        retired=model.retired or UNSET,
        input_types=capabilities.input_types(model),
        output_types=capabilities.output_types(model),
        supported_params=names,
        supported_parameters=names,
        supported_params_detail=detail,
        supported_parameters_detail=detail,
    )


def _rules(model: Model, caps: ModelCapabilities) -> None:
    """The rules the upstreams enforce, on the capabilities, where the model has them."""
    if model.durations_by_resolution:
        caps.durations_by_resolution = {r: list(d) for r, d in model.durations_by_resolution.items()}
    if model.role_durations:
        caps.role_durations = {r: list(d) for r, d in model.role_durations.items()}
    if model.role_resolutions:
        caps.role_resolutions = {r: list(v) for r, v in model.role_resolutions.items()}
    if model.exclusive:
        caps.exclusive = [list(group) for group in model.exclusive]
    if model.audio_always:
        caps.audio_always = True


def _inputs(model: Model, caps: ModelCapabilities) -> None:
    """The bounds on input media, where the model has them."""
    if model.max_reference_images is not None:
        caps.max_reference_images = model.max_reference_images
    if model.extend_durations:
        caps.extend_durations = list(model.extend_durations)
    if model.input_video_seconds is not None:
        caps.input_video_seconds = list(model.input_video_seconds)
    if model.input_audio_seconds is not None:
        caps.input_audio_seconds = list(model.input_audio_seconds)


def wanted_params(request: Request) -> list[str]:
    """The ``params`` filter: every name given, comma-separated or in repeated parameters."""
    return [n.strip() for raw in request.query_params.getlist("params") for n in raw.split(",") if n.strip()]


async def list_models(request: Request) -> Response:
    g = services(request)
    await g.keys.authenticate(request.headers.get("authorization"))
    await g.providers.refresh_health()  # what the workers last wrote, read at most every couple of seconds
    wanted = wanted_params(request)
    retired = bool_param(request, "include_retired")
    models = [m for m in g.catalog.models if (retired or not m.retired) and capabilities.supports_all(m, wanted)]
    return json_response(VideoModelList(data=[model_view(m, g.providers) for m in models]))
