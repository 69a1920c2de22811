"""Random draws fixed by a render's identity, stable across numpy releases and machines.

numpy's generators may change their streams between releases; blake2b (single draws) and splitmix64
(arrays of draws) never do, so a prompt and seed give the same picture on every install.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

T = TypeVar("T")

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


class Dice:
    """Uniform draws from blake2b of an identity; ``child`` gives an independent stream per part.

    Parts draw from their own child, so adding a draw to one part of the picture leaves every other
    part exactly as it was.
    """

    def __init__(self, *identity: object) -> None:
        self._identity = identity
        self._key = hashlib.blake2b(json.dumps(identity).encode(), digest_size=32).digest()
        self._count = 0

    def _word(self) -> int:
        self._count += 1
        word = hashlib.blake2b(self._count.to_bytes(8, "little"), key=self._key, digest_size=8).digest()
        return int.from_bytes(word, "little")

    def uniform(self, lo: float = 0.0, hi: float = 1.0) -> float:
        # 53 bits so the draw is exactly representable and strictly below 1.
        return lo + (hi - lo) * (self._word() >> 11) / 2**53

    def integer(self, lo: int, hi: int) -> int:
        """A whole number in ``lo..hi``, both included."""
        return lo + int(self.uniform() * (hi - lo + 1))

    def choice(self, items: Sequence[T]) -> T:
        return items[int(self.uniform() * len(items))]

    def child(self, name: str) -> Dice:
        return Dice(*self._identity, name)

    def array(self, count: int) -> np.ndarray:
        """``count`` uniform draws in [0, 1) as float64, from one draw of this stream."""
        return hashed(np.arange(count, dtype=np.uint64), self._word())


def hashed(ids: np.ndarray, key: int) -> np.ndarray:
    """A uniform float64 in [0, 1) for each unsigned id: splitmix64 of ``id + key``, vectorised."""
    x = ids.astype(np.uint64) + np.uint64(key & 0xFFFFFFFFFFFFFFFF)
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * _MIX1
    x = (x ^ (x >> np.uint64(27))) * _MIX2
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / 2.0**53


def smooth_noise(dice: Dice, positions: np.ndarray, cell: float) -> np.ndarray:
    """1D value noise in [0, 1): random values every ``cell`` pixels, eased in between (float32)."""
    knots = dice.array(int(positions.max() // cell) + 2).astype(np.float32)
    u = positions / np.float32(cell)
    index = np.floor(u).astype(np.intp)
    frac = u - index
    ease = frac * frac * (3 - 2 * frac)
    return knots[index] + (knots[index + 1] - knots[index]) * ease
