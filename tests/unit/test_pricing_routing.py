"""Pricing and routing are pure functions of the catalogue."""

from __future__ import annotations

from dataclasses import replace

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from vidgate.gateway.billing import pricing
from vidgate.gateway.catalog.catalog import ModelProviderRef, load_catalog
from vidgate.gateway.jobs.spec import VideoSpec
from vidgate.gateway.routing import plan

MODEL = load_catalog().by_id["vidgate/procedural"]


@given(
    seconds=st.integers(1, 20),
    samples=st.integers(1, 4),
    audio=st.booleans(),
    resolution=st.sampled_from(["360p", "720p", "1080p"]),
)
def test_quote_is_integer_and_settle_never_exceeds_it(seconds: int, samples: int, audio: bool, resolution: str) -> None:
    held = pricing.quote(MODEL, seconds=seconds, resolution=resolution, audio=audio, sample_count=samples)
    assert isinstance(held, int) and held > 0
    exact = pricing.actual_cost(
        MODEL, produced_seconds=[float(seconds)] * samples, resolution=resolution, audio=audio, held=held
    )
    assert exact == held
    shorter = pricing.actual_cost(
        MODEL, produced_seconds=[seconds - 0.5] * samples, resolution=resolution, audio=audio, held=held
    )
    assert shorter == held  # partial seconds round up
    longer = pricing.actual_cost(
        MODEL, produced_seconds=[seconds + 5.0] * samples, resolution=resolution, audio=audio, held=held
    )
    assert longer == held


def test_tiers_and_audio() -> None:
    base = pricing.quote(MODEL, seconds=4, resolution="720p", audio=False, sample_count=1)
    assert base == 4 * 1000
    assert pricing.quote(MODEL, seconds=4, resolution="1080p", audio=False, sample_count=1) == 4 * 2000
    assert pricing.quote(MODEL, seconds=4, resolution="720p", audio=True, sample_count=2) == 2 * 4 * 1200
    assert pricing.actual_cost(MODEL, produced_seconds=[2.0], resolution="720p", audio=False, held=base) == 2000


TWO = replace(
    MODEL,
    providers=(
        ModelProviderRef("a", "a-1"),
        ModelProviderRef("b", "b-1"),
        ModelProviderRef("c", "c-1", alpha=True, unsupported=frozenset({"audio"})),
    ),
)


def spec_of(fields: dict) -> VideoSpec:
    required = {"model": "m", "prompt": "p", "duration": 4, "width": 640, "height": 360}
    return msgspec.convert({**required, **fields}, VideoSpec)


def names(spec: dict, available=("a", "b", "c"), unhealthy=()) -> list[str]:
    return [c.provider for c in plan(TWO, spec_of(spec), available=available, unhealthy=unhealthy).candidates]


def test_routing_order_only_ignore_alpha() -> None:
    assert names({}) == ["a", "b"]
    assert names({"routing": {"include_alpha": True}}) == ["a", "b", "c"]
    assert names({"routing": {"order": ["b"]}}) == ["b", "a"]
    assert names({"routing": {"only": ["b", "c"], "include_alpha": True}}) == ["b", "c"]
    assert names({"routing": {"ignore": ["a"]}}) == ["b"]
    assert names({"routing": {"include_alpha": True}, "audio": True}) == ["a", "b"]
    assert names({}, available=("b",)) == ["b"]
    assert names({"routing": {"allow_fallbacks": False, "order": ["b"]}}) == ["b"]
    assert names({}, unhealthy=("a",)) == ["b"]
    assert names({}, unhealthy=("a", "b")) == ["a", "b"]
    skipped = dict(plan(TWO, spec_of({"routing": {"ignore": ["a"]}}), available=("b",)).skipped)
    assert skipped == {"a": "in provider.ignore", "c": "alpha provider (set provider.include_alpha)"}


@given(st.lists(st.sampled_from(["a", "b", "c"]), unique=True), st.lists(st.sampled_from(["a", "b", "c"]), unique=True))
def test_routing_never_picks_ignored_or_outside_only(only: list[str], ignore: list[str]) -> None:
    got = names({"routing": {"only": only, "ignore": ignore, "include_alpha": True}})
    assert all(n in only and n not in ignore for n in got)


@given(st.integers(0, 10**15) | st.integers(0, 10**7))
def test_usd_is_the_six_decimal_amount(micros: int) -> None:
    """Dollars shown in the API are exact to the micro-dollar, with no rounding step needed."""
    assert pricing.usd(micros) == round(micros / 1_000_000, 6)
    assert pricing.micros(pricing.usd(micros)) == micros
