"""What training reports while it runs: the events of `nmt.training.setup.train(on_event=...)`,
and the `Meter` that sums a report's window of training steps. `nmt.progress` reports
the `Phase` events of long phases.

The library never prints; the CLI (cli/train.py) turns each event into a line.
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
