"""Rules the upstreams enforce are refused at create; retired models answer 410; config models apply."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from vidgate.errors import ModelRetiredError, VidgateError, from_envelope
from vidgate.gateway.catalog.catalog import load_catalog
from vidgate.gateway.catalog.configured import (
    ConfigError,
    ConfiguredModel,
    check_model,
    configured_catalog,
    parse_models,
)
from vidgate.gateway.catalog.validate import validate
from vidgate.gateway.providers.base import ProviderConfig
from vidgate.gateway.routing import plan

CATALOG = load_catalog()
FRAME = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}


def body(model: str, **fields: Any) -> bytes:
    return msgspec.json.encode({"model": model, "prompt": "p", **fields})


def refusal(model: str, **fields: Any) -> VidgateError:
    with pytest.raises(VidgateError) as info:
        validate(body(model, **fields), CATALOG)
    return info.value


def test_every_shipped_model_holds_together() -> None:
    assert [(m.id, check_model(m)) for m in CATALOG.models if check_model(m)] == []


def test_a_resolution_made_only_at_some_durations() -> None:
    err = refusal("google/veo-3.1", resolution="1080p", duration=4)
    assert err.status == 400 and err.param == "duration"
    assert "veo-3.1 makes 1080p only at 8 seconds (duration 4 given)" in err.message
    assert validate(body("google/veo-3.1", resolution="1080p", duration=8), CATALOG).duration == 8
    assert validate(body("google/veo-3.1", resolution="720p", duration=4), CATALOG).duration == 4
    err = refusal("minimax/hailuo-02", resolution="1080p", duration=10)
    assert "1080p only at 6 seconds" in err.message


def test_a_role_that_needs_a_duration() -> None:
    ref = {**FRAME, "role": "reference"}
    err = refusal("google/veo-3.1", duration=6, input_references=[ref])
    assert err.param == "duration" and "reference images only at 8 seconds (duration 6 given)" in err.message
    assert validate(body("google/veo-3.1", duration=8, input_references=[ref]), CATALOG).references


def test_a_role_that_needs_a_resolution() -> None:
    frames = [{**FRAME, "role": "first_frame"}, {**FRAME, "role": "last_frame"}]
    err = refusal("kling/kling-2.1", resolution="720p", input_references=frames)
    assert err.param == "resolution" and "a last_frame image only at 1080p (resolution 720p given)" in err.message
    assert validate(body("kling/kling-2.1", resolution="1080p", input_references=frames), CATALOG)


def test_exclusive_options() -> None:
    last = [{**FRAME, "role": "last_frame"}]
    err = refusal("kling/kling-2.6", generate_audio=True, input_references=last)
    assert err.code == "unsupported_parameter" and err.param == "generate_audio"
    assert "cannot combine generate_audio with a last_frame image" in err.message
    assert validate(body("kling/kling-2.6", generate_audio=False, input_references=last), CATALOG)


def test_audio_that_no_provider_can_turn_off() -> None:
    err = refusal("google/veo-3.1-lite", generate_audio=False)
    assert err.code == "unsupported_parameter" and err.param == "generate_audio"
    assert "always makes audio" in err.message


def test_audio_off_routes_past_the_providers_that_cannot() -> None:
    spec = validate(body("google/veo-3.1", generate_audio=False), CATALOG)
    veo = CATALOG.by_id["google/veo-3.1"]
    routed = plan(veo, spec, available={"google", "google-vertex", "fal"})
    assert [c.provider for c in routed.candidates] == ["fal", "google-vertex"]
    assert ("google", "does not support audio_off") in routed.skipped
    loud = plan(veo, validate(body("google/veo-3.1"), CATALOG), available={"google"})
    assert [c.provider for c in loud.candidates] == ["google"]


def test_the_gemini_api_takes_no_seed_and_lite_none_at_all() -> None:
    veo = CATALOG.by_id["google/veo-3.1"]
    spec = validate(body("google/veo-3.1", seed=7), CATALOG)
    assert [c.provider for c in plan(veo, spec, available={"google", "fal"}).candidates] == ["fal"]
    assert refusal("google/veo-3.1-lite", seed=7).code == "unsupported_parameter"


def test_a_retired_model_answers_410_with_its_date() -> None:
    err = refusal("openai/sora-2")
    assert isinstance(err, ModelRetiredError) and err.status == 410 and err.code == "model_retired"
    assert "2026-09-24" in err.message and err.param == "model"
    rebuilt = from_envelope(410, err.body())
    assert isinstance(rebuilt, ModelRetiredError) and rebuilt.code == "model_retired"


def test_a_retired_model_comes_back_where_an_upstream_serves_it() -> None:
    assert configured_catalog().by_id["openai/sora-2"].retired == "2026-09-24"
    own = {"openai": ProviderConfig(name="openai", base_url="https://videos.example.com/v1")}
    assert configured_catalog((), own).by_id["openai/sora-2-pro"].retired is None
    back = configured_catalog((ConfiguredModel("openai/sora-2", {"retired": False}),))
    assert back.by_id["openai/sora-2"].retired is None and back.by_id["openai/sora-2-pro"].retired


ACME = {
    "name": "Acme One",
    "durations": [3, 6],
    "resolutions": ["720p"],
    "aspect_ratios": ["16:9", "1:1"],
    "default_resolution": "720p",
    "default_aspect_ratio": "16:9",
    "input_reference_roles": ["first_frame"],
    "providers": [{"name": "vidgate", "model": "procedural-v1"}],
    "pricing": {"per_second": 5000},
}


def test_a_model_added_overridden_and_left_out() -> None:
    models = parse_models(
        {
            "acme/one": ACME,
            "luma/ray-2": {"enabled": False},
            "vidgate/procedural": {"durations": [1, 8], "name": "Local"},
        },
        "config.toml",
    )
    catalog = configured_catalog(models)
    acme = catalog.by_id["acme/one"]
    assert acme.durations == (3, 6) and acme.providers[0].model == "procedural-v1" and acme.pricing.per_second == 5000
    assert catalog.get("luma/ray-2") is None
    local = catalog.by_id["vidgate/procedural"]
    assert local.name == "Local" and local.durations == (1, 8) and local.duration_range
    assert validate(body("acme/one", duration=6), catalog).duration == 6
    with pytest.raises(VidgateError, match="supported: 3, 6"):
        validate(body("acme/one", duration=4), catalog)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {"acme/v1": {**ACME, "durations": ["5"]}},
            'config.toml: [models."acme/v1"].durations: expected a list of integers',
        ),
        ({"acme/v1": {**ACME, "colour": 1}}, 'config.toml: [models."acme/v1"].colour: unknown key; keys: name,'),
        ({"acme/v1": {**ACME, "enabled": "no"}}, 'config.toml: [models."acme/v1"].enabled: expected true or false'),
        ({"acme/v1": "yes"}, 'config.toml: [models."acme/v1"]: expected a table'),
        (
            {"acme/v1": {**ACME, "providers": [{"name": "vidgate"}]}},
            'config.toml: [models."acme/v1"].providers[0]: model is required',
        ),
        (
            {"acme/v1": {k: v for k, v in ACME.items() if k != "providers"}},
            'config.toml: [models."acme/v1"].providers: a new model needs its providers',
        ),
        (
            {"acme/v1": {**ACME, "default_resolution": "1080p"}},
            'config.toml: [models."acme/v1"].default_resolution: 1080p is not one of the resolutions',
        ),
        (
            {"acme/v1": {**ACME, "input_reference_roles": ["side"]}},
            'config.toml: [models."acme/v1"]: model acme/v1: input_reference_roles names unknown roles',
        ),
        (
            {"acme/v1": {**ACME, "durations_by_resolution": {"4K": [3]}}},
            'config.toml: [models."acme/v1"].durations_by_resolution: 4K is not one of the resolutions',
        ),
    ],
)
def test_each_config_error_is_one_line_naming_file_table_and_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        configured_catalog(parse_models(table, "config.toml"), source="config.toml")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
