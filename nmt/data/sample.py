"""A bounded, seeded sample of a stream (`Reservoir`): what a prepared dataset's
tokenizer trains on (nmt.data.dataset), however long the training split."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class Reservoir:
    """A uniform sample of at most `capacity` items of a stream, seeded (Li's Algorithm L:
    random draws only where an item enters). Up to `capacity` items, all, in order."""

    def __init__(self, capacity: int, rng: np.random.Generator):
        self.capacity, self.rng = capacity, rng
        self.items: list[Any] = []
        self.seen = 0
        self.weight, self.next = 1.0, -1

    def offer(self, item: Any) -> None:
        if len(self.items) < self.capacity:
            self.items.append(item)
            if len(self.items) == self.capacity:
                self.next = self.seen
                self._skip()
        elif self.seen == self.next:
            self.items[int(self.rng.integers(self.capacity))] = item
            self._skip()
        self.seen += 1

    def _skip(self) -> None:
        self.weight *= math.exp(math.log(1.0 - self.rng.random()) / self.capacity)
        gap = math.log(1.0 - self.rng.random()) / math.log1p(-min(self.weight, 1 - 1e-16))
        self.next += int(math.floor(gap)) + 1
