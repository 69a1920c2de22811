"""``GET /v1/videos/models``: the catalogue with each provider's availability and health."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from vidgate.gateway.api.http import json_response
from vidgate.gateway.billing.pricing import usd
from vidgate.gateway.catalog.catalog import Model
from vidgate.gateway.providers.registry import Providers
from vidgate.gateway.services import services
from vidgate.types import ModelCapabilities, ModelProvider, Price, VideoModel, VideoModelList


def model_view(model: Model, providers: Providers) -> VideoModel:
    now = time.monotonic()
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
    )
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
    return VideoModel(
        id=model.id,
        name=model.name,
        description=model.description,
        capabilities=caps,
        providers=[
            ModelProvider(
                name=p.name,
                alpha=p.alpha,
                available=providers.is_available(p.name),
                healthy=not providers.health(p.name).is_open(now),
            )
            for p in model.providers
        ],
        pricing=price,
    )


async def list_models(request: Request) -> Response:
    g = services(request)
    await g.keys.authenticate(request.headers.get("authorization"))
    return json_response(VideoModelList(data=[model_view(m, g.providers) for m in g.catalog.models]))
