"""What a job's hold becomes when the job ends: pure arithmetic over its quote, what it produced and
the price card. The ledger writes the result (``ledger.settle`` / ``ledger.void``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from vidgate.gateway.billing import pricing
from vidgate.gateway.catalog.catalog import Model
from vidgate.gateway.jobs.spec import VideoSpec


@dataclass(frozen=True, slots=True)
class Settlement:
    """The whole hold is released; ``charge`` of it is charged (never more than the hold)."""

    state: Literal["settled", "void"]
    held: int  # micro-dollars, as every amount
    charge: int

    @property
    def refund(self) -> int:
        """What the owner gets back of the hold."""
        return self.held - self.charge


def settle(
    held: int,
    spec: VideoSpec,
    produced_seconds: Sequence[float] | None,
    *,
    model: Model | None,
    provider: str | None,
    byok_fee: int | None = None,
) -> Settlement:
    """A completed job: the seconds it produced (the requested ones when unknown) at its provider's
    price card, or at the gateway's fee alone (``byok_fee``) on the owner's own provider key. A model
    no longer in the catalogue is charged nothing."""
    produced = list(produced_seconds or [float(spec.duration)] * spec.sample_count)
    charge = 0
    if byok_fee is not None:
        charge = pricing.byok_cost(byok_fee, produced, held)
    elif model is not None:
        charge = pricing.actual_cost(
            model,
            produced_seconds=produced,
            resolution=spec.resolution,
            audio=spec.audio,
            held=held,
            size=spec.size,
            provider=provider,
        )
    return Settlement("settled", held, charge)


def void(held: int) -> Settlement:
    """A job that failed, was cancelled or expired: nothing is charged."""
    return Settlement("void", held, 0)
