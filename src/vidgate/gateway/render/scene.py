"""What a prompt asks the built-in renderer to draw: keywords in, a typed scene description out.

Pure and separate from drawing, so the vocabulary can be read, tested and extended on its own.
Words are matched case-insensitively after light stemming ("waves", "snowy", "flying" all count);
words outside the vocabulary are ignored, and a prompt with none of them gets a quiet landscape.
What the prompt leaves open (time of day, camera) the seed decides; what the negative prompt names
is left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final, Literal, get_args

from vidgate.gateway.render.dice import Dice

TimeOfDay = Literal["dawn", "day", "noon", "dusk", "night"]
Camera = Literal["pan", "push", "drift", "flyover"]
Weather = Literal["clear", "rain", "snow"]
Thing = Literal["lighthouse", "boat", "car", "tree", "birds", "whale", "fish", "deer", "horse", "dog", "fox"]

TIMES: Final[tuple[TimeOfDay, ...]] = get_args(TimeOfDay)
CAMERAS: Final[tuple[Camera, ...]] = get_args(Camera)
THINGS: Final[tuple[Thing, ...]] = get_args(Thing)
# Landscape elements, besides the times, cameras and things above.
TERRAINS: Final = ("sea", "mountains", "city", "forest", "hills", "road")
SKY_EXTRAS: Final = ("sun", "moon", "stars", "rain", "snow")

# Each concept and the words that name it, in their plain form (stemming finds "waves", "snowy" ...).
_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "dawn": ("dawn", "sunrise", "daybreak", "first light"),
    "day": ("day", "daytime", "morning", "afternoon", "daylight", "sunny", "sunshine"),
    "noon": ("noon", "midday", "high noon"),
    "dusk": ("dusk", "sunset", "sundown", "twilight", "evening", "golden hour", "blue hour"),
    "night": ("night", "midnight", "nighttime", "moonlit", "moonlight", "dark", "starry"),
    "pan": ("pan", "panning", "panoramic", "panorama", "sweep", "tracking", "track"),
    "push": ("zoom", "zooming", "push in", "push", "dolly", "closer", "close up", "approach", "zoom in"),
    "drift": ("drift", "float", "hover", "sway", "still", "static", "calm"),
    "flyover": ("flying over", "fly over", "flyover", "flying", "aerial", "drone", "soaring"),
    "sea": (
        "sea",
        "ocean",
        "wave",
        "surf",
        "beach",
        "coast",
        "shore",
        "harbour",
        "harbor",
        "bay",
        "lake",
        "water",
        "seaside",
        "tide",
        "seascape",
    ),
    "mountains": ("mountain", "peak", "alp", "alps", "summit", "range", "ridge", "volcano", "glacier"),
    "city": (
        "city",
        "skyline",
        "town",
        "downtown",
        "skyscraper",
        "building",
        "street",
        "metropolis",
        "urban",
        "tower block",
        "cityscape",
        "neon",
    ),
    "forest": ("forest", "woods", "woodland", "trees", "pines", "jungle", "grove", "taiga"),
    "hills": ("hill", "meadow", "field", "valley", "countryside", "farm", "prairie", "grassland", "landscape"),
    "road": ("road", "highway", "motorway", "freeway", "traffic"),
    "sun": ("sun", "sunlit"),
    "moon": ("moon", "full moon", "crescent"),
    "stars": ("star", "stars", "starlight", "milky way", "galaxy"),
    "rain": ("rain", "raining", "rainfall", "drizzle", "downpour", "storm", "stormy", "shower", "thunderstorm"),
    "snow": ("snow", "snowing", "snowfall", "snowflake", "blizzard", "winter", "snowy", "frost", "frozen"),
    "lighthouse": ("lighthouse", "beacon"),
    "boat": ("boat", "ship", "sailboat", "yacht", "sail", "ferry", "canoe", "vessel", "sailing"),
    "car": ("car", "cars", "taxi", "truck", "vehicle", "driving", "drive"),
    "tree": ("tree", "oak", "pine", "palm", "willow"),
    "birds": ("bird", "flock", "gull", "seagull", "crow", "swallow", "geese", "goose", "eagle"),
    "whale": ("whale", "dolphin", "orca"),
    "fish": ("fish", "salmon", "trout", "shark"),
    "deer": ("deer", "stag", "elk", "moose", "reindeer", "doe", "antelope"),
    "horse": ("horse", "pony", "stallion", "mare", "foal", "horseback"),
    "dog": ("dog", "puppy", "hound", "wolf", "pup", "dogs"),
    "fox": ("fox", "foxes"),
}
_LOOKUP: Final[dict[str, str]] = {word: concept for concept, words in _WORDS.items() for word in words}
# Things that need water under them: naming one brings the sea.
_AFLOAT: Final = frozenset({"lighthouse", "boat", "whale", "fish"})
_TOKEN: Final = re.compile(r"[a-z]+")


@dataclass(frozen=True, slots=True)
class Scene:
    """Everything the painter needs to know about a prompt; equal scenes draw the same picture."""

    time: TimeOfDay
    camera: Camera
    weather: Weather
    sea: bool
    mountains: bool
    city: bool
    forest: bool
    hills: bool
    road: bool
    snow_cover: bool
    sun: bool
    moon: bool
    stars: bool
    things: tuple[Thing, ...]

    @property
    def dark(self) -> bool:
        return self.time == "night"


def concepts(text: str) -> tuple[str, ...]:
    """The vocabulary's concepts named in ``text``, each once, in the order they first appear.

    Two-word phrases ("flying over", "golden hour") win over their single words.
    """
    words = _TOKEN.findall(text.lower().replace("'s", ""))
    found: list[str] = []
    index = 0
    while index < len(words):
        pair = " ".join(words[index : index + 2]) if index + 1 < len(words) else ""
        concept: str | None
        if pair in _LOOKUP:
            concept, index = _LOOKUP[pair], index + 2
        else:
            concept, index = _concept(words[index]), index + 1
        if concept is not None and concept not in found:
            found.append(concept)
    return tuple(found)


def _concept(word: str) -> str | None:
    for form in _forms(word):
        if form in _LOOKUP:
            return _LOOKUP[form]
    return None


def _forms(word: str) -> Iterable[str]:
    """The word itself, then what it could be with a plural, -ing, -ed or -y ending taken off.

    Stems shorter than four letters count only for plurals ("cars", "seas"), so "caring" is no car.
    """
    yield word
    for suffix, replacement in (
        ("ies", "y"),
        ("es", ""),
        ("s", ""),
        ("ing", ""),
        ("ing", "e"),
        ("ed", ""),
        ("ed", "e"),
        ("y", ""),
    ):
        stem = word[: len(word) - len(suffix)] + replacement
        if word.endswith(suffix) and len(stem) >= (3 if suffix in ("s", "es") else 4):
            yield stem


def describe(prompt: str, negative_prompt: str | None = None, seed: int = 0) -> Scene:
    """The scene ``prompt`` names, minus what ``negative_prompt`` names; the seed fills the gaps."""
    unwanted = set(concepts(negative_prompt or ""))
    named = [concept for concept in concepts(prompt) if concept not in unwanted]
    dice = Dice("scene", prompt, negative_prompt or "", seed)
    wanted = set(named)

    def first(options: Iterable[str]) -> str | None:
        return next((concept for concept in named if concept in options), None)

    time = first(TIMES)
    if time is None:
        if wanted & {"stars", "moon"}:
            time = "night"
        elif "sun" in wanted:
            time = "day"
        else:
            time = dice.choice([t for t in TIMES if t not in unwanted] or list(TIMES))
    # Left to the seed, the camera pans or drifts: a push-in magnifies every frame, which costs more.
    camera = first(CAMERAS) or dice.choice([c for c in ("pan", "drift") if c not in unwanted] or ["drift"])
    things = tuple(concept for concept in named if concept in THINGS)
    weather: Weather = "rain" if "rain" in wanted else "snow" if "snow" in wanted else "clear"
    sea = "sea" in wanted or (bool(_AFLOAT & set(things)) and "sea" not in unwanted)
    terrain = {name: name in wanted for name in ("mountains", "city", "forest", "hills")}
    if not (sea or any(terrain.values())):
        # Nothing to stand on was named: a quiet landscape of rolling hills.
        terrain["hills"] = "hills" not in unwanted
    clear_sky = weather != "rain"
    return Scene(
        time=_as_time(time),
        camera=_as_camera(camera),
        weather=weather,
        sea=sea,
        mountains=terrain["mountains"],
        city=terrain["city"],
        forest=terrain["forest"],
        hills=terrain["hills"],
        road="road" in wanted or ("car" in things and "road" not in unwanted),
        snow_cover="snow" in wanted,
        sun=time != "night" and "sun" not in unwanted and (clear_sky or "sun" in wanted),
        moon=time == "night" and "moon" not in unwanted and (clear_sky or "moon" in wanted),
        stars=time == "night" and "stars" not in unwanted and clear_sky,
        things=things,
    )


def _as_time(name: str) -> TimeOfDay:
    return next(t for t in TIMES if t == name)


def _as_camera(name: str) -> Camera:
    return next(c for c in CAMERAS if c == name)
