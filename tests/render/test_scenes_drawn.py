"""The renderer draws what the prompt names: checked on real MP4s, decoded back with PyAV.

Each check measures the picture (colours of bands of it, what changes between frames, narrow
structures) rather than comparing against stored images, so the drawing can improve freely.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path

import av
import numpy as np
import pytest

from vidgate.gateway.render.procedural import RenderSpec, render

W, H = 320, 180
SEEDS = (1, 2, 3)
LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


@cache
def decoded(prompt: str, seed: int, width: int = W, height: int = H) -> tuple[np.ndarray, ...]:
    """Every frame of a one-second render as float RGB, rendered once per test session."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clip.mp4"
        render(RenderSpec(prompt=prompt, seed=seed, width=width, height=height, duration=1), out)
        with av.open(str(out)) as container:
            return tuple(frame.to_ndarray(format="rgb24").astype(np.float32) for frame in container.decode(video=0))


def rows(fraction_from: float, fraction_to: float) -> slice:
    return slice(round(fraction_from * H), round(fraction_to * H))


def change(frames: tuple[np.ndarray, ...], band: slice) -> float:
    """Mean absolute change of a band between frames a quarter of a second apart."""
    return float(np.mean([np.abs(frames[i][band] - frames[i + 6][band]).mean() for i in range(0, 18, 6)]))


def warmth(rgb: np.ndarray) -> float:
    """Red over blue."""
    return float(rgb[0] - rgb[2])


def tower_columns(picture: np.ndarray) -> np.ndarray:
    """Columns that differ from the columns a little to their left and to their right over at least
    a quarter of the frame's height: a tall, narrow structure standing against the sky."""
    luma = picture[rows(0.1, 0.55)] @ LUMA
    k = round(0.06 * W)
    left = np.abs(luma[:, k:-k] - luma[:, : -2 * k])
    right = np.abs(luma[:, k:-k] - luma[:, 2 * k :])
    distinct_rows = (np.minimum(left, right) > 25).sum(axis=0)
    return np.nonzero(distinct_rows >= 0.25 * H)[0] + k


@pytest.mark.parametrize("seed", SEEDS)
def test_dusk_has_a_warm_sky_where_noon_has_a_blue_one(seed: int) -> None:
    dusk = decoded("a lighthouse at dusk, waves rolling in", seed)[0][rows(0, 0.45)].reshape(-1, 3).mean(axis=0)
    noon = decoded("a lighthouse at noon, waves rolling in", seed)[0][rows(0, 0.45)].reshape(-1, 3).mean(axis=0)
    assert warmth(dusk) > 20, dusk
    assert warmth(noon) < -80, noon
    assert warmth(dusk) - warmth(noon) > 120
    assert noon @ LUMA > dusk @ LUMA - 10  # noon is not the darker of the two


@pytest.mark.parametrize("seed", SEEDS)
def test_waves_move_the_lower_band_more_than_the_sky(seed: int) -> None:
    frames = decoded("a lighthouse at dusk, waves rolling in", seed)
    water, sky = change(frames, rows(0.8, 1.0)), change(frames, rows(0.0, 0.3))
    assert water > 4, water
    assert water > 1.25 * sky, (water, sky)  # the sky changes too, where the lighthouse's beam sweeps


@pytest.mark.parametrize("seed", SEEDS)
def test_lighthouse_stands_tall_and_narrow_and_its_beam_turns(seed: int) -> None:
    frames = decoded("a lighthouse at dusk, waves rolling in", seed)
    columns = tower_columns(frames[0])
    assert columns.size, "no tall narrow structure found"
    assert columns.max() - columns.min() < 0.08 * W, columns

    # Away from the tower and its headland, the sky brightens where the beam sweeps in; at noon the
    # lamp is dark and only drifting clouds change the sky.
    def lit_up(prompt: str) -> float:
        clip = decoded(prompt, seed)
        tower = tower_columns(clip[0])
        away = np.ones(W, dtype=bool)
        away[max(0, tower.min() - round(0.2 * W)) : tower.max() + round(0.2 * W)] = False
        sky = [frame[rows(0.05, 0.45)][:, away] @ LUMA for frame in clip]
        pairs = ((0, 8), (8, 16), (16, 23), (8, 0), (16, 8), (23, 16))
        return max(float(np.mean(sky[later] - sky[earlier] > 20)) for earlier, later in pairs)

    beam, still = lit_up("a lighthouse at dusk, waves rolling in"), lit_up("a lighthouse at noon, waves rolling in")
    assert beam > 0.01, beam
    assert beam > 2 * still, (beam, still)


@pytest.mark.parametrize("seed", SEEDS)
def test_city_at_night_is_dark_with_bright_windows(seed: int) -> None:
    picture = decoded("a city at night", seed)[0]
    luma = picture @ LUMA
    assert luma.mean() < 40
    bright = luma > 150
    assert 0.002 < bright.mean() < 0.08
    # Dots, not a lit area: many separate bright runs along the rows, each a few pixels long.
    starts = np.count_nonzero(bright[:, 1:] & ~bright[:, :-1])
    assert starts > 150, starts
    assert bright.sum() / starts < 4
    # The windows are in the skyline, on the horizon.
    assert bright[rows(0.3, 0.7)].mean() > 0.005


@pytest.mark.parametrize("seed", SEEDS)
def test_snowy_mountains_at_noon_have_a_bright_sky_and_white_peaks(seed: int) -> None:
    picture = decoded("snowy mountains at noon", seed)[0]
    sky = picture[rows(0, 0.2)].reshape(-1, 3).mean(axis=0)
    assert sky @ LUMA > 100 and sky[2] > sky[0] + 100, sky
    peaks = picture[rows(0.2, 0.66)]
    white = (peaks.min(axis=2) > 200) & (np.ptp(peaks, axis=2) < 40)
    assert white.mean() > 0.03, white.mean()


@pytest.mark.parametrize(
    "prompt",
    [
        "a sailboat and a whale at sea in the morning, birds overhead",
        "fish jumping in the sea at sunset",
        "a deer, a horse and a dog in a forest at dawn, zoom in",
        "a red car on a road through the hills in the rain, flying over",
        "a tree by the lake, pan",
        "an astronaut reading a newspaper",
    ],
)
@pytest.mark.parametrize(("width", "height"), [(160, 96), (90, 160), (64, 64)])
def test_every_part_of_the_vocabulary_renders_at_any_size(prompt: str, width: int, height: int) -> None:
    frames = decoded(prompt, 4, width, height)
    assert len(frames) == 24
    assert frames[0].shape == (height, width, 3)
    assert frames[0].std() > 10  # a picture, not a flat colour
    assert np.abs(frames[0] - frames[-1]).max() > 2  # something moves, if only the camera
