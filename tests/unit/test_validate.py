"""Validation is pure: defaults are filled in and every failure names its param."""

from __future__ import annotations

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
