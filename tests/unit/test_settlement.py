"""Settlement: what a job's hold becomes at its end is pure arithmetic over quote, seconds and price card."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vidgate.gateway.billing import pricing, settlement
from vidgate.gateway.catalog.catalog import load_catalog
from vidgate.gateway.jobs.spec import VideoSpec

MODEL = load_catalog().by_id["vidgate/procedural"]


def spec(seconds: int = 4, samples: int = 1, resolution: str = "720p", audio: bool = False) -> VideoSpec:
    width, height = {"720p": (1280, 720), "1080p": (1920, 1080)}[resolution]
    return VideoSpec(
        model=MODEL.id,
        prompt="p",
        duration=seconds,
        width=width,
        height=height,
        resolution=resolution,
        audio=audio,
        sample_count=samples,
    )


def test_a_completed_job_is_charged_what_it_produced_and_refunded_the_rest() -> None:
    held = pricing.quote(MODEL, seconds=4, resolution="720p", audio=False, sample_count=1)
    done = settlement.settle(held, spec(), [2.0], model=MODEL, provider="vidgate")
    assert (done.state, done.held, done.charge, done.refund) == ("settled", held, 2000, held - 2000)


def test_unknown_seconds_are_the_requested_ones_of_every_sample() -> None:
    s = spec(seconds=3, samples=2, resolution="1080p", audio=True)
    held = pricing.quote(MODEL, seconds=3, resolution="1080p", audio=True, sample_count=2)
    for produced in (None, []):
        assert settlement.settle(held, s, produced, model=MODEL, provider="vidgate").charge == held


def test_own_key_jobs_pay_the_fee_alone_and_a_model_gone_from_the_catalogue_pays_nothing() -> None:
    held = pricing.byok_quote(50, 4, 1)
    assert settlement.settle(held, spec(), [3.2], model=MODEL, provider="vidgate", byok_fee=50).charge == 4 * 50
    assert settlement.settle(held, spec(), [3.2], model=None, provider="vidgate").charge == 0


def test_void_charges_nothing_and_releases_the_hold() -> None:
    done = settlement.void(12_345)
    assert (done.state, done.held, done.charge, done.refund) == ("void", 12_345, 0, 12_345)


@given(
    seconds=st.integers(1, 20),
    samples=st.integers(1, 4),
    audio=st.booleans(),
    resolution=st.sampled_from(["720p", "1080p"]),
    produced=st.lists(st.floats(0.0, 40.0), max_size=4),
    byok=st.booleans(),
)
def test_the_charge_is_never_above_the_hold_nor_below_zero(
    seconds: int, samples: int, audio: bool, resolution: str, produced: list[float], byok: bool
) -> None:
    s = spec(seconds, samples, resolution, audio)
    held = (
        pricing.byok_quote(7, seconds, samples)
        if byok
        else pricing.quote(MODEL, seconds=seconds, resolution=resolution, audio=audio, sample_count=samples)
    )
    done = settlement.settle(held, s, produced, model=MODEL, provider="vidgate", byok_fee=7 if byok else None)
    assert 0 <= done.charge <= held and done.refund == held - done.charge
