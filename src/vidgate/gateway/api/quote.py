"""``POST /v1/videos/quote``: what a create with this body would hold, priced line by line, and no job.

The body goes through the create's own first half (``jobs.intake``: validation, references, webhook
endpoint, routing, own provider keys, price), so a form can show the exact hold and refuse what the
API refuses before anything is spent. Balance and spend limits are not checked: a quote reserves nothing.
"""

from __future__ import annotations

from typing import Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from vidgate.gateway.api.http import json_response, owner, read_body
from vidgate.gateway.api.videos import provider_keys
from vidgate.gateway.billing import pricing
from vidgate.gateway.billing.pricing import usd
from vidgate.gateway.catalog.catalog import PriceCard
from vidgate.gateway.jobs.intake import intake
from vidgate.gateway.jobs.spec import VideoSpec
from vidgate.gateway.services import services


class QuoteLine(msgspec.Struct):
    """One line of the price: ``unit_price`` (USD) times ``quantity`` is ``amount``."""

    kind: Literal["video_seconds", "audio_seconds", "request", "gateway_fee_seconds"]
    description: str
    unit_price: float
    quantity: int
    amount: float


class VideoQuote(msgspec.Struct):
    """What ``POST /v1/videos`` with the same body would hold now (``amount``, USD), and why."""

    model: str
    amount: float
    seconds: int
    sample_count: int
    size: str
    resolution: str | None
    audio: bool
    provider: str | None  # whose price card sets the amount (the dearest candidate's); none with own keys
    providers: list[str]  # the candidates, in the order they would be tried
    lines: list[QuoteLine]
    currency: str = "USD"
    object: str = "video.quote"


def card_lines(card: PriceCard, spec: VideoSpec) -> list[QuoteLine]:
    """The card's lines for ``spec``: they add up to ``pricing.quote`` for that card."""
    samples, seconds = spec.sample_count, spec.duration
    audio_rate = card.audio_per_second if spec.audio else 0
    video_rate = pricing.per_second_rate(card, spec.resolution, spec.audio, spec.size) - audio_rate
    tier = next(
        (
            t
            for t in reversed(card.tiers)
            if all(t[k] == v for k, v in (("resolution", spec.resolution), ("size", spec.size)) if k in t)
            and ("audio" not in t or bool(t["audio"]) == spec.audio)
        ),
        None,
    )
    at = ", ".join(f"{k} {tier[k]}" for k in ("resolution", "size", "audio") if k in tier) if tier else ""
    each = f" × {samples} samples" if samples > 1 else ""
    lines = [
        _line("video_seconds", f"video, per second{f' at {at}' if at else ''}{each}", video_rate, seconds * samples)
    ]
    if audio_rate:
        lines.append(_line("audio_seconds", f"audio, per second{each}", audio_rate, seconds * samples))
    if card.per_request:
        lines.append(_line("request", "per request (each sample)", card.per_request, samples))
    return lines


def _line(kind: str, description: str, unit_micros: int, quantity: int) -> QuoteLine:
    return QuoteLine(kind, description, usd(unit_micros), quantity, usd(unit_micros * quantity))  # type: ignore[arg-type]


async def quote_video(request: Request) -> Response:
    g = services(request)
    who = await owner(request)
    body = await read_body(request, g.settings.max_body_bytes)
    byok = provider_keys(request.headers.get("x-provider-key"))
    jobs = g.jobs
    taken = await intake(
        g.db, g.catalog, g.providers, who, body, byok=byok, allow_http=jobs.allow_http_urls, byok_fee=jobs.byok_fee
    )
    spec, model = taken.spec, taken.model
    names = [c.provider for c in taken.plan.candidates]
    samples = spec.sample_count
    if byok:
        lines = [_line("gateway_fee_seconds", "gateway fee, per second", jobs.byok_fee, spec.duration * samples)]
        dearest: str | None = None
    else:
        dearest = max(names, key=lambda p: (_card_total(model.price_card(p), spec), -names.index(p)))
        lines = card_lines(model.price_card(dearest), spec)
    return json_response(
        VideoQuote(
            model=model.id,
            amount=usd(taken.amount),
            seconds=spec.duration,
            sample_count=samples,
            size=spec.size,
            resolution=spec.resolution,
            audio=spec.audio,
            provider=dearest,
            providers=names,
            lines=lines,
        )
    )


def _card_total(card: PriceCard, spec: VideoSpec) -> int:
    rate = pricing.per_second_rate(card, spec.resolution, spec.audio, spec.size)
    return (rate * spec.duration + card.per_request) * spec.sample_count
