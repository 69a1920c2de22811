"""Which providers may run a job, in which order: a pure function of the catalogue and the request."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from msgspec import UNSET

from vidgate.gateway.catalog.catalog import AUDIO_OFF, Model
from vidgate.gateway.jobs.spec import VideoSpec


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: str
    provider_model: str
    alpha: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    candidates: tuple[Candidate, ...]
    skipped: tuple[tuple[str, str], ...]  # (provider, why)


def features(spec: VideoSpec) -> frozenset[str]:
    """The request features a provider must support to take this job (``op:extend`` / ``op:edit``
    for a job on a source video)."""
    used = set()
    used.add("audio" if spec.audio else AUDIO_OFF)
    if spec.seed is not None:
        used.add("seed")
    if spec.negative_prompt:
        used.add("negative_prompt")
    if spec.sample_count > 1:
        used.add("sample_count")
    used.update(r.feature for r in spec.references)
    if spec.operation is not UNSET:
        used.add(f"op:{spec.operation}")
    used.update(spec.extras.names())
    return frozenset(used)


def plan(
    model: Model,
    spec: VideoSpec,
    *,
    available: Collection[str],
    unhealthy: Collection[str] = (),
) -> Plan:
    """Candidates in the order to try them, and every provider left out with the reason."""
    routing = spec.routing
    only = None if routing.only is UNSET else routing.only
    ignore = set(() if routing.ignore is UNSET else routing.ignore)
    used = features(spec)
    kept: list[Candidate] = []
    skipped: list[tuple[str, str]] = []
    for ref in model.providers:
        if only is not None and ref.name not in only:
            skipped.append((ref.name, "not in provider.only"))
        elif ref.name in ignore:
            skipped.append((ref.name, "in provider.ignore"))
        elif ref.alpha and routing.include_alpha is not True:
            skipped.append((ref.name, "alpha provider (set provider.include_alpha)"))
        elif ref.name not in available:
            skipped.append((ref.name, "not configured"))
        elif missing := used & ref.unsupported:
            skipped.append((ref.name, f"does not support {', '.join(sorted(missing))}"))
        else:
            kept.append(Candidate(ref.name, ref.model, ref.alpha))
    order = [] if routing.order is UNSET else list(routing.order)
    if order:
        rank = {name: i for i, name in enumerate(order)}
        kept.sort(key=lambda c: rank.get(c.provider, len(order)))
    healthy = [c for c in kept if c.provider not in unhealthy]
    if healthy and len(healthy) < len(kept):
        skipped.extend((c.provider, "circuit open after repeated failures") for c in kept if c.provider in unhealthy)
        kept = healthy
    if routing.allow_fallbacks is False:
        kept = kept[:1]
    return Plan(tuple(kept), tuple(skipped))
