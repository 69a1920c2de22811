"""Which providers may run a job, in which order: a pure function of the catalogue and the request."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from vidgate.gateway.catalog.catalog import Model


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: str
    provider_model: str
    alpha: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    candidates: tuple[Candidate, ...]
    skipped: tuple[tuple[str, str], ...]  # (provider, why)


def features(spec: Mapping[str, Any]) -> frozenset[str]:
    """The request features a provider must support to take this job."""
    used = set()
    if spec.get("audio"):
        used.add("audio")
    if spec.get("seed") is not None:
        used.add("seed")
    if spec.get("negative_prompt"):
        used.add("negative_prompt")
    if spec.get("sample_count", 1) > 1:
        used.add("sample_count")
    used.update(f"role:{r['role']}" for r in spec.get("references", ()))
    used.update(spec.get("extras", {}).keys())
    return frozenset(used)


def plan(
    model: Model,
    spec: Mapping[str, Any],
    *,
    available: Collection[str],
    unhealthy: Collection[str] = (),
) -> Plan:
    """Candidates in the order to try them, and every provider left out with the reason."""
    routing: Mapping[str, Any] = spec.get("routing") or {}
    only, ignore = routing.get("only"), set(routing.get("ignore") or ())
    used = features(spec)
    kept: list[Candidate] = []
    skipped: list[tuple[str, str]] = []
    for ref in model.providers:
        if only is not None and ref.name not in only:
            skipped.append((ref.name, "not in provider.only"))
        elif ref.name in ignore:
            skipped.append((ref.name, "in provider.ignore"))
        elif ref.alpha and not routing.get("include_alpha", False):
            skipped.append((ref.name, "alpha provider (set provider.include_alpha)"))
        elif ref.name not in available:
            skipped.append((ref.name, "not configured"))
        elif missing := used & ref.unsupported:
            skipped.append((ref.name, f"does not support {', '.join(sorted(missing))}"))
        else:
            kept.append(Candidate(ref.name, ref.model, ref.alpha))
    order = list(routing.get("order") or ())
    if order:
        rank = {name: i for i, name in enumerate(order)}
        kept.sort(key=lambda c: rank.get(c.provider, len(order)))
    healthy = [c for c in kept if c.provider not in unhealthy]
    if healthy and len(healthy) < len(kept):
        skipped.extend((c.provider, "circuit open after repeated failures") for c in kept if c.provider in unhealthy)
        kept = healthy
    if not routing.get("allow_fallbacks", True):
        kept = kept[:1]
    return Plan(tuple(kept), tuple(skipped))
