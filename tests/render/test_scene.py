"""Reading a prompt into a scene: pure functions, checked without drawing anything."""

from __future__ import annotations

import pytest

from vidgate.gateway.render.scene import CAMERAS, TIMES, Scene, concepts, describe


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("A LIGHTHOUSE at Dusk", ("lighthouse", "dusk")),
        ("waves rolling in", ("sea",)),  # plural, and "rolling in" means nothing
        ("snowy peaks", ("snow", "mountains")),
        ("rainy streets", ("rain", "city")),
        ("birds flying over the ocean", ("birds", "flyover", "sea")),
        ("golden hour over the hills", ("dusk", "hills")),  # a two-word phrase wins over its words
        ("three horses and two dogs", ("horse", "dog")),
        ("a tree", ("tree",)),
        ("tall trees", ("forest",)),  # several trees are a forest
        ("the sun's glare", ("sun",)),
        ("a caring person, carrying a scarf", ()),  # short stems never match: no "car" here
        ("", ()),
    ],
)
def test_concepts_are_found_through_case_plurals_and_endings(text: str, expected: tuple[str, ...]) -> None:
    assert concepts(text) == expected


def test_each_concept_is_named_once_in_order_of_appearance() -> None:
    assert concepts("sea, boats, more sea and a boat at sunset then dusk") == ("sea", "boat", "dusk")


def test_lighthouse_at_dusk_with_waves() -> None:
    scene = describe("a lighthouse at dusk, waves rolling in", seed=1)
    assert scene.time == "dusk"
    assert scene.sea and scene.things == ("lighthouse",)
    assert scene.sun and not scene.moon and not scene.stars
    assert not (scene.mountains or scene.city or scene.forest or scene.hills)
    assert scene.weather == "clear"


def test_city_at_night_has_moon_and_stars() -> None:
    scene = describe("a city at night", seed=1)
    assert (scene.time, scene.city, scene.moon, scene.stars, scene.sun) == ("night", True, True, True, False)
    assert scene.dark


def test_snowy_mountains_at_noon() -> None:
    scene = describe("snowy mountains at noon", seed=1)
    assert (scene.time, scene.mountains, scene.snow_cover, scene.weather) == ("noon", True, True, "snow")
    assert scene.sun


def test_things_that_float_bring_the_sea_and_a_car_its_road() -> None:
    assert describe("a whale").sea
    assert describe("a small boat").sea
    assert describe("a red car").road
    assert not describe("a red car").sea


def test_rain_hides_the_sun_and_stars_unless_named() -> None:
    assert not describe("rain at noon").sun
    assert describe("rain and sun at noon").sun
    assert not describe("rain at night").stars


def test_stars_or_moon_without_a_time_mean_night() -> None:
    assert describe("stars over the sea", seed=3).time == "night"
    assert describe("a full moon", seed=3).time == "night"


@pytest.mark.parametrize(("words", "camera"), [("slow pan", "pan"), ("zoom in", "push"), ("flying over", "flyover")])
def test_camera_follows_the_prompt(words: str, camera: str) -> None:
    for seed in range(5):
        assert describe(f"mountains, {words}", seed=seed).camera == camera


def test_the_seed_decides_what_the_prompt_leaves_open() -> None:
    scenes = [describe("a quiet field", seed=seed) for seed in range(40)]
    assert {s.time for s in scenes} == set(TIMES)
    # Left to the seed, the camera pans or drifts; a push-in is only ever asked for.
    assert {s.camera for s in scenes} == {"pan", "drift"}
    assert set(CAMERAS) > {"pan", "drift"}


def test_negative_prompt_leaves_things_out() -> None:
    assert describe("a boat in the rain", "rain").weather == "clear"
    assert describe("a deer and a horse", "horse").things == ("deer",)
    assert all(describe("a meadow", "night", seed=s).time != "night" for s in range(20))
    assert describe("a boat", "sea").sea is False


@pytest.mark.parametrize("prompt", ["", "qwerty zxcv", "an astronaut reading a newspaper", "!!!", "ünïcödé 🙂"])
def test_unknown_words_give_a_quiet_landscape(prompt: str) -> None:
    scene = describe(prompt, seed=2)
    assert isinstance(scene, Scene)
    assert scene.hills and not (scene.sea or scene.mountains or scene.city or scene.forest)
    assert scene.things == ()


def test_describe_is_pure() -> None:
    one = describe("a fox in the snowy woods", "wolf", seed=9)
    assert one == describe("a fox in the snowy woods", "wolf", seed=9)
    assert one.things == ("fox",) and one.forest and one.snow_cover
