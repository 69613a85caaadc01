"""What training reports while it runs: the events of `nmt.train.train(on_event=...)`.

The library never prints; the CLI (cli/train.py) turns each event into a line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Message:
    text: str


@dataclass
class Progress:
    step: int
    epoch: float  # epochs done, fractional: 2.5 is halfway through the third
    loss: float  # per target token, label smoothing included, since the last report
    tokens_per_second: float
    learning_rate: float
    skipped: int = 0  # updates skipped for a non-finite loss so far (train.skip_nonfinite)


@dataclass
class Evaluation:
    step: int
    epoch: float
    valid_loss: float
    valid_ppl: float
    valid_bleu: float
    best_bleu: float
    improved: bool


Event = Message | Progress | Evaluation
