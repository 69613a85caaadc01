"""nmt.training.meter: the `Meter` sums a report's window of training steps (loss per
target token, tokens) and remembers the first step whose loss was not finite; `take`
starts a new window."""

from __future__ import annotations

import math

import torch

from nmt.training.meter import Meter


def test_a_window_is_the_loss_per_token_and_take_starts_anew():
    meter = Meter(torch.device("cpu"))
    meter.add(torch.tensor(6.0), 3, step=1)
    meter.add(torch.tensor(2.0), 1, step=2)
    loss, tokens, seconds, first_bad = meter.take()
    assert (loss, tokens, first_bad) == (2.0, 4, -1) and seconds >= 0
    assert meter.take()[:2] == (0.0, 0)  # an empty window: no division by zero


def test_the_first_non_finite_step_is_kept():
    meter = Meter(torch.device("cpu"))
    meter.add(torch.tensor(1.0), 1, step=5)
    meter.add(torch.tensor(math.nan), 1, step=6)
    meter.add(torch.tensor(math.inf), 1, step=7)
    assert meter.take()[3] == 6  # the first, not the last: training stops on it
