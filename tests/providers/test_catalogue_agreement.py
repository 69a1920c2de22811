"""The catalogue and the adapters agree on what each provider of a model takes.

An adapter keeps its upstream's own limits (durations, resolutions, wire enums, per upstream model,
including model ids the catalogue never names); the catalogue says what we offer per model. Every
duration and resolution the catalogue offers for a model (at each resolution, the durations its
``durations_by_resolution`` allows there) must map through each of its providers' adapters without a
refusal, except the per-host gaps below, where routing fails over to the next provider. A limit changed
on one side only shows up here.
"""

from __future__ import annotations

from typing import Any

import pytest

from providers.harness import PNG, job_maker
from providers.wiring import WIRINGS
from vidgate.gateway.catalog.catalog import RESOLUTION_SHORT_SIDE, Model, load_catalog
from vidgate.gateway.providers.base import ReferenceImage, Rejected

# (model, provider, resolution) -> the durations that provider refuses there (None: every one).
GAPS: dict[tuple[str, str, str], tuple[int, ...] | None] = {
    ("google/veo-3.1", "replicate", "4K"): None,  # Replicate's Veo 3.1 stops at 1080p
    ("luma/ray-2", "replicate", "1080p"): None,  # Replicate hosts Ray at 540p and 720p only
    ("luma/ray-2", "replicate", "4K"): None,
    ("luma/ray-flash-2", "replicate", "1080p"): None,
    ("luma/ray-flash-2", "replicate", "4K"): None,
}
# The method that maps a job onto the upstream's request, where it is not ``build_request``.
MAPPING = {"openai": "_form", "google": "_body"}
CATALOG = load_catalog()
SERVED = [(m, ref.name) for m in CATALOG.models for ref in m.providers if ref.name in WIRINGS]


def frame(model: Model, resolution: str) -> tuple[int, int]:
    """Width and height of ``resolution`` at the model's default aspect ratio (one of its sizes if it lists them)."""
    w, h = (int(x) for x in (model.default_aspect_ratio or "16:9").split(":"))
    short = RESOLUTION_SHORT_SIDE[resolution]
    for size in model.sizes:
        width, height = (int(x) for x in size.split("x"))
        if min(width, height) == short and (width >= height) == (w >= h) and abs(width / height - w / h) < 0.02:
            return width, height
    long = round(short * max(w, h) / min(w, h) / 2) * 2
    return (long, short) if w >= h else (short, long)


def refused(model: Model, provider: str) -> set[tuple[int, str]]:
    """The (duration, resolution) pairs the model offers that the provider's adapter refuses."""
    wiring = WIRINGS[provider]
    adapter: Any = wiring.adapter(wiring.config("http://127.0.0.1:9"))  # never called: mapping only
    mapping = getattr(adapter, MAPPING.get(provider, "build_request"))
    ref = next(p for p in model.providers if p.name == provider)
    images = tuple(
        ReferenceImage(role=role, url=f"https://example.test/{role}.png", data=PNG, mime_type="image/png")
        for role in model.required_roles
        if role != "source"
    )
    # A model that only extends or edits is offered its durations for that, on a source video.
    source = ReferenceImage("source", "https://example.test/in.mp4", b"", "video/mp4", kind="video")
    make_job = job_maker(
        model=model.id,
        provider_model=ref.model,
        prompt="a paper boat on a rainy street",
        aspect_ratio=model.default_aspect_ratio,
        audio=model.default_audio,
        references=(*images, source) if model.requires_source else images,
        **({"operation": model.operations[0]} if model.requires_source else {}),
    )
    out = set()
    for resolution in model.resolutions:
        for duration in model.durations_at(resolution):
            width, height = frame(model, resolution)
            try:
                mapping(make_job(duration=duration, resolution=resolution, width=width, height=height))
            except Rejected:
                out.add((duration, resolution))
    return out


@pytest.mark.parametrize(("model", "provider"), SERVED, ids=[f"{m.id}@{p}" for m, p in SERVED])
def test_every_offered_duration_and_resolution_maps(model: Model, provider: str) -> None:
    expected = {
        (duration, resolution)
        for (model_id, name, resolution), durations in GAPS.items()
        if (model_id, name) == (model.id, provider)
        for duration in (durations or model.durations_at(resolution))
    }
    assert refused(model, provider) == expected
