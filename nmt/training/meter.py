"""Sums over training steps: the `Meter` of a report's window (loss, tokens, seconds),
and the `LossWindow` of the training loss since the last evaluation (metrics.jsonl's
train_loss). The training loop (nmt.training.loop) owns both.
"""

from __future__ import annotations

import time

import torch


class Meter:
    """Loss, target tokens and seconds of the training steps since the last `take`.

    The loss sum stays on the device, and so does the first step whose loss was not
    finite, so nothing waits for the GPU until a report is due.
    """

    def __init__(self, device: torch.device):
        self.loss = torch.zeros((), device=device)
        self.first_bad = torch.full((), -1, device=device)  # step of the first NaN/inf
        self.tokens = 0
        self.start = time.perf_counter()

    def add(self, loss_sum: torch.Tensor, tokens: int, step: int) -> None:
        self.loss += loss_sum
        self.tokens += tokens
        bad = ~loss_sum.isfinite() & (self.first_bad < 0)
        self.first_bad = torch.where(bad, step, self.first_bad)

    def take(self) -> tuple[float, int, float, int]:
        """(loss per token, tokens, seconds, first non-finite step or -1); starts anew."""
        window = (
            float(self.loss) / max(self.tokens, 1),  # waits for the device
            self.tokens,
            time.perf_counter() - self.start,
            int(self.first_bad),
        )
        self.loss.zero_()
        self.tokens = 0
        self.restart()
        return window

    def restart(self) -> None:
        self.start = time.perf_counter()


class LossWindow:
    """The mean training loss per target token since the last evaluation."""

    def __init__(self) -> None:
        self.loss_sum, self.tokens = 0.0, 0

    def add(self, loss: float, tokens: int) -> None:
        """A report window's mean `loss` over its `tokens`."""
        self.loss_sum += loss * tokens
        self.tokens += tokens

    def take(self) -> float | None:
        """The mean since the last `take` (None: no tokens), and start anew."""
        mean = self.loss_sum / self.tokens if self.tokens else None
        self.loss_sum, self.tokens = 0.0, 0
        return mean
