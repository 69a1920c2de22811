"""What a model does with a source video, as the catalogue declares it: the keys parsed and checked at
load (naming the file, the model and the key), a create's operation resolved or refused, reference
images counted, extend durations, input lengths, routing's ``op:`` features, and the listing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from vidgate.errors import UnsupportedParameterError, ValidationError, VidgateError
from vidgate.gateway import routing
from vidgate.gateway.catalog import capabilities, operations
from vidgate.gateway.catalog.catalog import Catalog, load_catalog
from vidgate.gateway.catalog.configured import ConfigError, configured_catalog, parse_models
from vidgate.gateway.catalog.validate import validate
from vidgate.gateway.jobs.spec import Reference

CLIP = "https://example.com/clip.mp4"
VOICE = "https://example.com/voice.mp3"
IMAGE = "https://example.com/a.png"
MODELS = """
[[models]]
id = "test/both"
durations = [4, 8]
extend_durations = [5]
default_duration = 4
resolutions = ["720p"]
aspect_ratios = ["16:9"]
default_resolution = "720p"
default_aspect_ratio = "16:9"
input_reference_roles = ["reference", "first_frame"]
video_reference_roles = ["source"]
audio_reference_roles = ["reference"]
operations = ["extend", "edit"]
max_reference_images = 2
input_video_seconds = [1, 10]
input_audio_seconds = [0.5, 5]
providers = [
  { name = "everything", model = "a", media = ["video", "audio"] },
  { name = "no-extend", model = "b", media = ["video", "audio"], unsupported = ["op:extend"] },
  { name = "images-only", model = "c" },
]

[[models]]
id = "test/edit-only"
durations = [4]
resolutions = ["720p"]
aspect_ratios = ["16:9"]
default_resolution = "720p"
default_aspect_ratio = "16:9"
video_reference_roles = ["source"]
required_roles = ["source"]
operations = ["edit"]
providers = [{ name = "everything", model = "d", media = ["video"] }]

[[models]]
id = "test/source-no-ops"
durations = [4]
resolutions = ["720p"]
aspect_ratios = ["16:9"]
default_resolution = "720p"
default_aspect_ratio = "16:9"
video_reference_roles = ["source"]
providers = [{ name = "everything", model = "e", media = ["video"] }]

[[models]]
id = "test/images"
durations = [4]
resolutions = ["720p"]
aspect_ratios = ["16:9"]
default_resolution = "720p"
default_aspect_ratio = "16:9"
input_reference_roles = ["first_frame"]
providers = [{ name = "everything", model = "f" }]
"""
ALL = {"everything", "no-extend", "images-only"}


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    path = tmp_path_factory.mktemp("catalog") / "catalog.toml"
    path.write_text(MODELS)
    return load_catalog(path)


def source(**extra: Any) -> dict[str, Any]:
    return {"type": "video_url", "media_url": {"url": CLIP}, "role": "source", **extra}


def body(model: str = "test/both", **fields: Any) -> bytes:
    return msgspec.json.encode({"model": model, "prompt": "the tide comes in", **fields})


def refused(catalog: Catalog, model: str = "test/both", **fields: Any) -> VidgateError:
    with pytest.raises(VidgateError) as exc:
        validate(body(model, **fields), catalog)
    return exc.value


def test_the_keys_are_read_onto_the_model(catalog: Catalog) -> None:
    both = catalog.by_id["test/both"]
    assert both.operations == ("extend", "edit") and both.max_reference_images == 2
    assert both.extend_durations == (5,) and both.input_video_seconds == (1.0, 10.0)
    assert catalog.by_id["test/edit-only"].requires_source and not both.requires_source
    plain = catalog.by_id["test/images"]
    assert (plain.operations, plain.max_reference_images, plain.extend_durations) == ((), None, ())


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"operations": ["extend", "dub"]}, "operations", "dub is not an operation"),
        ({"operations": "extend"}, "operations", "expected a list"),
        ({"video_reference_roles": []}, "operations", 'list "source" in video_reference_roles'),
        ({"max_reference_images": 0}, "max_reference_images", "at least 1"),
        ({"extend_durations": [5, "7"]}, "extend_durations", "whole numbers"),
        ({"operations": ["edit"]}, "extend_durations", 'operations include "extend"'),
    ],
)
def test_a_catalogue_file_mistake_names_the_file_model_and_key(
    tmp_path: Path, change: dict[str, Any], key: str, words: str
) -> None:
    lines = [line for line in MODELS.split("\n\n")[0].splitlines() if line.split(" =")[0] not in change]
    lines += [f"{k} = {msgspec.json.encode(v).decode()}" for k, v in change.items()]
    path = tmp_path / "mine.toml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError) as exc:
        load_catalog(path)
    assert str(exc.value).startswith(f"{path}: model test/both: {key}: "), exc.value
    assert words in str(exc.value)


def test_a_provider_naming_an_unknown_operation_is_a_load_error(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(MODELS.replace('unsupported = ["op:extend"]', 'unsupported = ["op:dub"]'))
    with pytest.raises(ValueError, match=r"model test/both: providers: unsupported names op:dub"):
        load_catalog(path)


def test_config_declared_models_take_the_keys_and_name_the_key() -> None:
    table = {
        "acme/extender": {
            "durations": [4],
            "resolutions": ["720p"],
            "aspect_ratios": ["16:9"],
            "video_reference_roles": ["source"],
            "operations": ["extend"],
            "extend_durations": [3, 6],
            "max_reference_images": 1,
            "providers": [{"name": "vidgate", "model": "procedural-v1", "media": ["video"]}],
        }
    }
    made = configured_catalog(parse_models(table, "vidgate.toml")).by_id["acme/extender"]
    assert made.operations == ("extend",) and made.extend_durations == (3, 6) and made.max_reference_images == 1
    wrong = {"acme/extender": {**table["acme/extender"], "video_reference_roles": []}}
    with pytest.raises(ConfigError) as exc:
        configured_catalog(parse_models(wrong, "vidgate.toml"), source="vidgate.toml")
    assert str(exc.value).startswith('vidgate.toml: [models."acme/extender"].operations: a model with operations')
    bad_type = {"acme/extender": {**table["acme/extender"], "max_reference_images": "2"}}
    with pytest.raises(ConfigError, match=r"\.max_reference_images: expected a whole number of at least 1"):
        parse_models(bad_type, "vidgate.toml")


def test_a_source_video_with_an_operation_sets_it(catalog: Catalog) -> None:
    spec = validate(body(input_references=[source()], operation="edit"), catalog)
    assert spec.operation == "edit" and spec.op == "edit"
    assert "op:edit" in routing.features(spec)
    plain = validate(body(), catalog)
    assert plain.op == "generate" and not any(f.startswith("op:") for f in routing.features(plain))


def test_a_model_with_one_operation_takes_a_source_without_saying_which(catalog: Catalog) -> None:
    spec = validate(body("test/edit-only", input_references=[source()]), catalog)
    assert spec.operation == "edit"


def test_a_source_without_an_operation_is_edited_where_the_model_also_extends(catalog: Catalog) -> None:
    assert validate(body(input_references=[source()]), catalog).operation == "edit"
    assert validate(body(input_references=[source()], operation="extend", duration=5), catalog).operation == "extend"


def test_an_operation_the_model_does_not_do_is_refused(catalog: Catalog) -> None:
    exc = refused(catalog, "test/edit-only", input_references=[source()], operation="extend")
    assert isinstance(exc, ValidationError) and exc.param == "operation"
    assert "supported: edit" in str(exc)


def test_an_operation_without_a_source_video_is_refused(catalog: Catalog) -> None:
    exc = refused(catalog, operation="extend")
    assert isinstance(exc, ValidationError) and exc.param == "operation" and "source video" in str(exc)
    image_source = [{"type": "image_url", "image_url": {"url": IMAGE}, "role": "reference"}]
    assert refused(catalog, input_references=image_source, operation="edit").param == "operation"


def test_a_model_without_operations_refuses_a_source_video(catalog: Catalog) -> None:
    exc = refused(catalog, "test/source-no-ops", input_references=[source()])
    assert isinstance(exc, UnsupportedParameterError) and exc.param == "input_references[0].role"
    assert "does not extend or edit videos" in str(exc) and "video references with role source" in str(exc)
    images = refused(catalog, "test/images", input_references=[source()])
    assert isinstance(images, UnsupportedParameterError) and images.param == "input_references[0].type"
    assert "does not extend or edit videos" in str(images) and "image references with role first_frame" in str(images)


def test_a_model_that_needs_a_source_refuses_a_job_without_one(catalog: Catalog) -> None:
    exc = refused(catalog, "test/edit-only")
    assert exc.param == "input_references" and "needs a source video" in str(exc)


def test_reference_images_over_the_limit_are_refused(catalog: Catalog) -> None:
    image = {"type": "image_url", "image_url": {"url": IMAGE}, "role": "reference"}
    first = {"type": "image_url", "image_url": {"url": IMAGE}, "role": "first_frame"}
    assert len(validate(body(input_references=[image, image, first]), catalog).references) == 3
    exc = refused(catalog, input_references=[image, image, image])
    assert exc.param == "input_references" and "at most 2 reference images (3 given)" in str(exc)


def test_an_extend_takes_its_own_durations(catalog: Catalog) -> None:
    extend = validate(body(input_references=[source()], operation="extend"), catalog)
    assert extend.duration == 5  # the model's default (4) is no extend duration: the first one is
    assert validate(body(input_references=[source()], operation="extend", duration=5), catalog).duration == 5
    exc = refused(catalog, input_references=[source()], operation="extend", duration=8)
    assert exc.param == "duration" and "supported: 5" in str(exc) and "an extend" in str(exc)
    assert validate(body(input_references=[source()], operation="edit", duration=8), catalog).duration == 8
    assert refused(catalog, input_references=[source()], operation="edit", duration=5).param == "duration"


def test_stated_input_lengths_are_held_to_the_bounds(catalog: Catalog) -> None:
    assert validate(body(input_references=[source()], operation="edit", input_video_duration=9.5), catalog)
    exc = refused(catalog, input_references=[source()], operation="edit", input_video_duration=12)
    assert exc.param == "input_video_duration" and "between 1 and 10" in str(exc)
    assert refused(catalog, input_audio_duration=6).param == "input_audio_duration"


def test_routing_passes_over_a_provider_that_cannot_run_the_operation(catalog: Catalog) -> None:
    model = catalog.by_id["test/both"]
    extend = validate(body(input_references=[source()], operation="extend"), catalog)
    plan = routing.plan(model, extend, available=ALL)
    assert [c.provider for c in plan.candidates] == ["everything"]
    assert dict(plan.skipped) == {
        "no-extend": "does not support op:extend",
        "images-only": "does not support video:source",
    }
    edit = validate(body(input_references=[source()], operation="edit"), catalog)
    assert [c.provider for c in routing.plan(model, edit, available=ALL).candidates] == ["everything", "no-extend"]


def test_the_listing_shows_operations_per_model_and_provider(catalog: Catalog) -> None:
    both, edit_only = catalog.by_id["test/both"], catalog.by_id["test/edit-only"]
    assert capabilities.jobs(both) == ["generate", "extend", "edit"]
    assert capabilities.jobs(edit_only) == ["edit"]
    assert capabilities.details(both)["operation"].values == ["extend", "edit"]
    no_extend, images_only = both.providers[1], both.providers[2]
    assert capabilities.details(both, no_extend)["operation"].values == ["edit"]
    assert "operation" not in capabilities.supported(both, images_only)
    assert capabilities.details(both)["operation"].providers == ["everything", "no-extend"]
    assert "operation" not in capabilities.supported(catalog.by_id["test/images"])
    assert capabilities.jobs(catalog.by_id["test/images"]) == ["generate"]


def ref(kind: str, role: str) -> Reference:
    return Reference(role, CLIP if kind == "video" else VOICE, kind=kind)  # type: ignore[arg-type]


def test_input_checks_bound_every_input_and_hold_the_first_to_what_was_stated(catalog: Catalog) -> None:
    spec = validate(
        body(
            input_references=[
                {"type": "audio_url", "media_url": {"url": VOICE}, "role": "reference"},
                source(),
            ],
            operation="edit",
            input_video_duration=4,
        ),
        catalog,
    )
    checks = operations.input_checks(spec, (1, 10), (0.5, 5))
    assert [(c.index, c.ref.kind, c.stated) for c in checks] == [(0, "audio", msgspec.UNSET), (1, "video", 4)]
    video = checks[1]
    assert video.problem(4.3, "test/both") is None  # within half a second of what was stated
    assert video.problem(4.8, "test/both") == (
        "input_references[1] (source video) lasts 4.8 seconds, but input_video_duration says 4"
    )
    assert video.problem(11, "test/both") == (
        "input_references[1] (source video) lasts 11 seconds; test/both takes video inputs of 1 to 10 seconds"
    )
    assert checks[0].problem(0.2, "test/both") is not None and checks[0].problem(2, "test/both") is None
    stated_only = operations.input_checks(spec, None, None)  # unbounded, but the video's length was stated
    assert [(c.index, c.bounds, c.stated) for c in stated_only] == [(1, None, 4)]
    unbounded = validate(body(input_references=[source()], operation="edit"), catalog)
    assert operations.input_checks(unbounded, None, None) == []
