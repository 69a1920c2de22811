"""Validation is pure: defaults are filled in and every failure names its param."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vidgate.errors import VidgateError
from vidgate.gateway.catalog.catalog import load_catalog
from vidgate.gateway.catalog.validate import size_for, validate

CATALOG = load_catalog()


def body(**fields) -> bytes:
    return msgspec.json.encode({"model": "vidgate/procedural", "prompt": "p", **fields})


def test_defaults_are_filled_in() -> None:
    n = validate(body(), CATALOG)
    assert (n.duration, n.width, n.height, n.resolution, n.aspect_ratio) == (4, 1280, 720, "720p", "16:9")
    assert n.sample_count == 1 and n.audio is False and n.output_access == "both"


@pytest.mark.parametrize(
    ("res", "ratio", "size"),
    [
        ("720p", "16:9", (1280, 720)),
        ("720p", "9:16", (720, 1280)),
        ("480p", "4:3", (640, 480)),
        ("1080p", "1:1", (1080, 1080)),
        ("360p", "16:9", (640, 360)),
    ],
)
def test_size_for(res: str, ratio: str, size: tuple[int, int]) -> None:
    assert size_for(res, ratio) == size


@given(w=st.integers(1, 5000), h=st.integers(1, 5000))
def test_any_size_is_accepted_only_when_even_and_in_range(w: int, h: int) -> None:
    try:
        n = validate(body(size=f"{w}x{h}"), CATALOG)
    except VidgateError as exc:
        assert exc.status == 400 and exc.param == "size"
        assert w % 2 or h % 2 or not (64 <= w <= 1920 and 64 <= h <= 1920) or w * h > 1920 * 1080
    else:
        assert (n.width, n.height) == (w, h) and w % 2 == 0 and h % 2 == 0


@given(st.dictionaries(st.text(max_size=10), st.one_of(st.integers(), st.text(max_size=5), st.none()), max_size=4))
def test_arbitrary_fields_never_crash(extra: dict) -> None:
    try:
        validate(msgspec.json.encode({"model": "vidgate/procedural", "prompt": "p", **extra}), CATALOG)
    except VidgateError as exc:
        assert exc.status == 400


PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
IMAGE = "https://example.com/a.png"


# A model that takes a first_frame image and nothing else (the built-in takes every kind of input).
FIRST_FRAME_ONLY = "minimax/hailuo-2.3"


def refused(**fields: Any) -> VidgateError:
    with pytest.raises(VidgateError) as exc:
        validate(body(**fields), CATALOG)
    return exc.value


@pytest.mark.parametrize(
    "ref",
    [
        {"type": "image_url", "image_url": {"url": IMAGE}, "role": "first_frame"},
        {"type": "image", "url": IMAGE, "role": "first_frame"},
        {"type": "image", "url": IMAGE, "mime_type": "image/png", "role": "first_frame"},
        {"type": "image", "data": PNG_B64, "mime_type": "image/png", "role": "first_frame"},
        {"type": "image", "data": f"data:image/png;base64,{PNG_B64}", "role": "first_frame"},
    ],
)
def test_every_image_shape_becomes_one_reference(ref: dict[str, Any]) -> None:
    (got,) = validate(body(input_references=[ref]), CATALOG).references
    assert (got.kind, got.role, got.asset) == ("image", "first_frame", None)
    assert got.url in (IMAGE, f"data:image/png;base64,{PNG_B64}")


def test_frame_images_are_first_and_last_frame_references() -> None:
    frames = [{"type": "image_url", "image_url": {"url": IMAGE}, "frame_type": "first_frame"}]
    (got,) = validate(body(frame_images=frames), CATALOG).references
    assert (got.kind, got.role, got.url) == ("image", "first_frame", IMAGE)
    (got,) = validate(body(frame_images=[{"image_url": IMAGE, "frame_type": "first_frame"}]), CATALOG).references
    assert got.url == IMAGE
    exc = refused(model=FIRST_FRAME_ONLY, frame_images=[{"image_url": IMAGE, "frame_type": "last_frame"}])
    assert (exc.code, exc.param) == ("unsupported_parameter", "frame_images[0].frame_type")
    both = [{"type": "image", "url": IMAGE, "role": "first_frame"}]
    exc = refused(input_references=both, frame_images=[{"image_url": IMAGE, "frame_type": "first_frame"}])
    assert (exc.code, exc.param) == ("validation_error", "input_references")


@pytest.mark.parametrize(
    ("ref", "param"),
    [
        (
            {"type": "image", "data": PNG_B64, "mime_type": "image/png", "role": "last_frame"},
            "input_references[0].role",
        ),
        ({"type": "image", "url": IMAGE, "role": "reference"}, "input_references[0].role"),
        ({"type": "video_url", "media_url": {"url": "https://example.com/a.mp4"}, "role": "source"}, "[0].type"),
        ({"type": "audio_url", "media_url": {"url": "https://example.com/a.mp3"}}, "input_references[0].type"),
        ({"type": "video", "asset_id": "ast_01ABC", "role": "source"}, "input_references[0].type"),
        ({"type": "audio", "url": "https://example.com/a.mp3", "mime_type": "audio/mpeg"}, "input_references[0].type"),
        ({"type": "mask", "data": PNG_B64, "mime_type": "image/png"}, "input_references[0].role"),
    ],
)
def test_references_the_model_does_not_take_are_unsupported(ref: dict[str, Any], param: str) -> None:
    exc = refused(model=FIRST_FRAME_ONLY, input_references=[ref])
    assert exc.code == "unsupported_parameter" and exc.param is not None and exc.param.endswith(param), exc
    assert "first_frame" in str(exc)  # names what the model does take


@pytest.mark.parametrize(
    ("ref", "param"),
    [
        ({"type": "video_url"}, "input_references[0].media_url"),
        ({"type": "image_url", "url": IMAGE}, "input_references[0].url"),
        ({"type": "image", "role": "first_frame"}, "input_references[0]"),
        ({"type": "image", "url": IMAGE, "data": PNG_B64, "role": "first_frame"}, "input_references[0]"),
        ({"type": "image", "data": PNG_B64, "role": "first_frame"}, "input_references[0].data"),
        ({"type": "image", "data": "not base64!", "mime_type": "image/png", "role": "first_frame"}, "[0].data"),
        ({"type": "image", "data": PNG_B64, "mime_type": "video/mp4", "role": "first_frame"}, "[0].mime_type"),
        ({"type": "image", "url": "ftp://example.com/a.png", "role": "first_frame"}, "input_references[0].url"),
        ({"type": "image", "url": "http://127.0.0.1/a.png", "role": "first_frame"}, "input_references[0].url"),
        ({"type": "image", "asset_id": "vid_01ABC", "role": "first_frame"}, "input_references[0].asset_id"),
        ({"type": "mask", "url": IMAGE, "role": "first_frame"}, "input_references[0].role"),
    ],
)
def test_malformed_references_are_validation_errors(ref: dict[str, Any], param: str) -> None:
    exc = refused(input_references=[ref])
    assert exc.code == "validation_error" and exc.param is not None and exc.param.endswith(param), exc


def test_duration_seconds_is_another_name_for_duration() -> None:
    assert validate(body(duration_seconds=3), CATALOG).duration == 3
    assert validate(body(duration_seconds=3, duration=3), CATALOG).duration == 3
    assert refused(duration_seconds=3, duration=4).param == "duration_seconds"
    assert refused(duration_seconds=99).param == "duration_seconds"


def test_fields_the_reference_sdk_sends_are_accepted() -> None:
    spec = validate(
        body(
            provider_options={"vidgate": {"style": "x"}, "openai": {}},
            input_audio_duration=2.5,
            input_video_duration=3.0,
            debug={"enabled": True, "trace_level": "full", "something_new": 1},
            beta={"anything": [1, {"a": 2}]},
        ),
        CATALOG,
    )
    assert spec.provider_options == {"vidgate": {"style": "x"}}
    assert (spec.input_audio_duration, spec.input_video_duration) == (2.5, 3.0)
    assert spec.provider_params_for("vidgate") == {"style": "x"} and spec.provider_params_for("openai") == {}
    assert validate(body(provider_options={}), CATALOG).provider_options is msgspec.UNSET


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"provider_options": {"nobody": {}}}, "provider_options.nobody"),
        ({"provider_options": {"vidgate": {"duration": 3}}}, "provider_options.vidgate.duration"),
        ({"provider_options": {"vidgate": 3}}, "provider_options[...]"),  # msgspec names no key
        ({"input_video_duration": 0}, "input_video_duration"),
        ({"input_audio_duration": -1}, "input_audio_duration"),
        ({"input_video_duration": 3601}, "input_video_duration"),
        ({"debug": {"trace_level": "everything"}}, "debug.trace_level"),
    ],
)
def test_bad_reference_sdk_fields_name_their_param(fields: dict[str, Any], param: str) -> None:
    exc = refused(**fields)
    assert (exc.code, exc.param) == ("validation_error", param)


def test_deep_provider_options_are_refused_before_decoding() -> None:
    deep: Any = {}
    for _ in range(40):
        deep = {"a": deep}
    assert refused(provider_options={"vidgate": deep}).param == "provider_options"
