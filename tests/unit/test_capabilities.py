"""What the models listing says each model and provider takes, derived from the catalogue, and the
kinds of input reference routing lets each provider run."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from vidgate.errors import ValidationError
from vidgate.gateway import routing
from vidgate.gateway.catalog import capabilities
from vidgate.gateway.catalog.catalog import load_catalog
from vidgate.gateway.catalog.validate import validate

CATALOG = load_catalog()
BUILT_IN = CATALOG.by_id["vidgate/procedural"]
VIDEO_MODEL = """
[[models]]
id = "test/restyle"
durations = [5]
resolutions = ["720p"]
aspect_ratios = ["16:9"]
default_resolution = "720p"
default_aspect_ratio = "16:9"
input_reference_roles = ["first_frame"]
video_reference_roles = ["source"]
operations = ["edit"]
input_video_seconds = [1, 10]
providers = [
  { name = "images-only", model = "a" },
  { name = "with-video", model = "b", media = ["video"] },
]
"""


def test_the_built_in_model_lists_what_it_takes() -> None:
    names = capabilities.supported(BUILT_IN)
    assert {"duration", "size", "resolution", "aspect_ratio", "seed", "negative_prompt"} <= set(names)
    assert {"generate_audio", "sample_count", "input_references", "frame_images"} <= set(names)
    detail = capabilities.details(BUILT_IN)
    assert set(detail) == set(names)
    duration = detail["duration"]
    assert (duration.min, duration.max, duration.default, duration.aliases) == (1, 20, 4, ["duration_seconds"])
    roles = {"image": ["first_frame", "last_frame", "reference"], "video": ["source"], "audio": ["reference"]}
    assert detail["input_references"].roles == roles
    assert detail["frame_images"].values == ["first_frame", "last_frame"]
    assert detail["seed"].providers == ["vidgate"]
    assert capabilities.input_types(BUILT_IN) == ["text", "image", "video", "audio"]
    assert capabilities.output_types(BUILT_IN) == ["video"]


def test_a_provider_lists_its_model_less_what_it_cannot_take() -> None:
    veo = CATALOG.by_id["google/veo-3.1"]
    fal = next(p for p in veo.providers if p.name == "fal")
    names = capabilities.supported(veo, fal)
    assert "sample_count" not in names and "duration" in names
    assert capabilities.details(veo, fal)["input_references"].roles == {"image": ["first_frame", "last_frame"]}
    assert "google" not in (capabilities.details(veo)["seed"].providers or [])


def test_the_params_filter_takes_every_name_a_field_has() -> None:
    assert capabilities.supports_all(BUILT_IN, ["seed", "negative_prompt"])
    assert capabilities.supports_all(BUILT_IN, ["duration_seconds"])
    assert not capabilities.supports_all(BUILT_IN, ["enhance_prompt"])
    assert not capabilities.supports_all(BUILT_IN, ["no_such_field"])


def test_video_references_go_only_to_providers_that_send_them(tmp_path: Path) -> None:
    path = tmp_path / "catalog.toml"
    path.write_text(VIDEO_MODEL)
    catalog = load_catalog(path)
    model = catalog.by_id["test/restyle"]
    assert capabilities.input_types(model) == ["text", "image", "video"]
    assert capabilities.details(model)["input_references"].providers == ["images-only", "with-video"]
    assert capabilities.details(model, model.providers[0])["input_references"].roles == {"image": ["first_frame"]}
    body = {
        "model": "test/restyle",
        "prompt": "p",
        "input_references": [
            {"type": "video_url", "media_url": {"url": "https://example.com/a.mp4"}, "role": "source"}
        ],
    }
    spec = validate(msgspec.json.encode(body), catalog)
    plan = routing.plan(model, spec, available={"images-only", "with-video"})
    assert [c.provider for c in plan.candidates] == ["with-video"]
    assert plan.skipped == (("images-only", "does not support video:source"),)
    image_only = validate(msgspec.json.encode({**body, "input_references": []}), catalog)
    assert len(routing.plan(model, image_only, available={"images-only", "with-video"}).candidates) == 2
    assert validate(msgspec.json.encode({**body, "input_video_duration": 4}), catalog).input_video_duration == 4
    with pytest.raises(ValidationError, match="between 1 and 10") as exc:
        validate(msgspec.json.encode({**body, "input_video_duration": 11}), catalog)
    assert exc.value.param == "input_video_duration"
