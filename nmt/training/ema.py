"""An exponential moving average of the weights (Polyak & Juditsky 1992), as fairseq's
--ema-decay and timm's ModelEma keep it.

After every applied update, each averaged weight moves toward the live one:

    avg ← decay · avg + (1 − decay) · live        (one `torch._foreach_lerp_` per update)

The average is a second copy of the model, in eval mode and without gradients. Training
keeps updating the live weights; evaluation, the best-model choice, model.safetensors
and results.json use the average. Early on the average would mostly remember the random
initialisation, so the decay warms up as (1 + n) / (10 + n) after n updates until it
reaches `decay` (timm's warm-up): a function of the update count only, so a resumed run
continues exactly. The average is saved beside the live weights in checkpoints/last.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """The exponential moving average of `model`'s parameters; `model` is the live one."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0 <= decay < 1:
            raise ValueError("decay must be in [0, 1)")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        # parameters() lists a shared parameter once, in the same order in both copies
        self._average = list(self.model.parameters())

    def decay_at(self, updates: int) -> float:
        """The decay used for update number `updates` (1 for the first)."""
        return min(self.decay, updates / (updates + 9))

    @torch.no_grad()
    def update(self, model: nn.Module, updates: int) -> None:
        """Move the average toward `model`'s weights after its `updates`-th update."""
        live = [p.detach() for p in model.parameters()]
        weight = 1 - self.decay_at(updates)
        if weight == 1:  # decay 0: the average is the live weights, exactly
            torch._foreach_copy_(self._average, live)
        else:
            torch._foreach_lerp_(self._average, live, weight)
