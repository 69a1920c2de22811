"""Pricing: pure functions over a model's price card. Amounts are integer micro-dollars."""

from __future__ import annotations

import math

from vidgate.gateway.catalog.catalog import Model, PriceCard

MICROS_PER_USD = 1_000_000


def per_second_rate(card: PriceCard, resolution: str | None, audio: bool, size: str | None = None) -> int:
    """The per-second price after tiers: the last tier whose conditions all match wins."""
    rate = card.per_second
    for tier in card.tiers:
        if "resolution" in tier and tier["resolution"] != resolution:
            continue
        if "size" in tier and tier["size"] != size:
            continue
        if "audio" in tier and bool(tier["audio"]) != audio:
            continue
        rate = int(tier["per_second"])
    if audio:
        rate += card.audio_per_second
    return rate


def quote(
    model: Model,
    *,
    seconds: int,
    resolution: str | None,
    audio: bool,
    sample_count: int,
    size: str | None = None,
    providers: tuple[str, ...] = (),
) -> int:
    """What a job is held for at create: the requested seconds of every sample, at the dearest candidate."""
    cards = [model.price_card(p) for p in providers] or [model.pricing]
    return max(_quote(card, seconds, resolution, audio, sample_count, size) for card in cards)


def _quote(
    card: PriceCard, seconds: int, resolution: str | None, audio: bool, sample_count: int, size: str | None
) -> int:
    return (per_second_rate(card, resolution, audio, size) * seconds + card.per_request) * sample_count


def actual_cost(
    model: Model,
    *,
    produced_seconds: list[float],
    resolution: str | None,
    audio: bool,
    held: int,
    size: str | None = None,
    provider: str | None = None,
) -> int:
    """What a completed job costs: seconds really produced (whole seconds, rounded up), never above the hold."""
    card = model.price_card(provider)
    rate = per_second_rate(card, resolution, audio, size)
    cost = sum(rate * math.ceil(round(s, 3)) + card.per_request for s in produced_seconds)
    return min(cost, held)


def byok_quote(fee_per_second: int, seconds: int, sample_count: int) -> int:
    """A job on the owner's own provider key pays only the gateway's fee."""
    return fee_per_second * seconds * sample_count


def byok_cost(fee_per_second: int, produced_seconds: list[float], held: int) -> int:
    return min(held, sum(fee_per_second * math.ceil(round(s, 3)) for s in produced_seconds))


def usd(micros: int) -> float:
    # The quotient of an integer by 10**6 is already the float nearest its six-decimal value (a
    # property test checks it up to 10**15 micro-dollars), so round(x, 6) would only cost time.
    return micros / MICROS_PER_USD


def micros(amount_usd: float) -> int:
    return round(amount_usd * MICROS_PER_USD)
