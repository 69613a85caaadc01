"""What training reports while it runs: the events of `nmt.training.setup.train(on_event=...)`,
and the `Meter` that sums a report's window of training steps. `nmt.progress` reports
the `Phase` events of long phases.

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
    learning_rate: float  # of the next update
    skipped: int = 0  # updates skipped for a non-finite loss so far (train.skip_nonfinite)
    teacher_forcing: float = 1.0  # P(gold previous token) of the next update


@dataclass
class Evaluation:
    step: int
    epoch: float
    valid_loss: float
    valid_ppl: float
    valid_bleu: float
    best_bleu: float
    improved: bool


@dataclass
class Phase:
    """A long phase of work advancing: reading a corpus, training the tokenizer, encoding,
    a training epoch, decoding the valid or test set. Reported when it starts (done 0),
    as it goes, and once `finished`; `total` is None when unknown ahead. The CLI draws a
    bar from these, or off a terminal prints a line now and then."""

    name: str  # "epoch 3", "validating", "encoding data.train", ...
    done: int
    total: int | None
    unit: str  # what done counts: "batches", "sentences", "pairs"
    finished: bool = False
    detail: str = ""  # e.g. "ETA 12 min (train.max_epochs 13)"


Event = Message | Progress | Evaluation | Phase
