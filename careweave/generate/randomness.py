"""Seeded randomness for the generator: derived streams, ids and weighted choices.

Rules:
1. Never the global ``random`` module. Every draw comes from a ``random.Random`` passed in.
2. :func:`derive` gives an independent stream for one named part of the output (the organisations,
   household 42...), seeded from the configuration seed and the part's name. Streams are
   independent of each other, so adding an output format or changing one household does not move
   any other household's data. String seeds hash with SHA-512 inside ``random``, the same on every
   platform and run.
"""

from __future__ import annotations

import bisect
import itertools
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["Weighted", "chance", "derive", "new_id"]

T = TypeVar("T")


def derive(seed: int, *parts: object) -> random.Random:
    """An independent random stream for one named part of the output (rule 2)."""
    return random.Random(":".join(["careweave-generate", str(seed), *map(str, parts)]))


def new_id(rng: random.Random) -> str:
    """A random (version 4) UUID string: a valid FHIR id, reproducible from the stream."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def chance(rng: random.Random, probability: float) -> bool:
    """True with the given probability."""
    return rng.random() < probability


@dataclass(frozen=True, slots=True)
class Weighted(Generic[T]):
    """Items with relative weights, picked by bisecting the cumulative weights."""

    items: tuple[T, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, pairs: Sequence[tuple[T, float]]) -> Weighted[T]:
        if not pairs or any(w < 0 for _, w in pairs):
            raise ValueError("weights must be non-negative and not empty")
        items = tuple(item for item, _ in pairs)
        cumulative = tuple(itertools.accumulate(w for _, w in pairs))
        if cumulative[-1] <= 0:
            raise ValueError("the weights sum to zero")
        return cls(items, cumulative)

    def pick(self, rng: random.Random) -> T:
        target = rng.random() * self.cumulative[-1]
        return self.items[bisect.bisect_right(self.cumulative, target)]

    def share(self, item: T) -> float:
        """The probability of ``item`` (the sum over its occurrences)."""
        total = 0.0
        previous = 0.0
        for candidate, cumulative in zip(self.items, self.cumulative, strict=True):
            if candidate == item:
                total += cumulative - previous
            previous = cumulative
        return total / self.cumulative[-1]
