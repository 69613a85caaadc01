"""Where a training run stands (`TrainerState`), and the check of a saved one.

The training loop (nmt.training.loop) is the one writer of a run's state; setup makes it
(fresh, or read back on --resume), and validation and the results read it.

The state is saved as checkpoints/last/trainer.json with every checkpoint. A resume
starts from it and trims the directory to it (metrics and kept weights past its step
go), so a damaged state must be refused before anything is read or written on its word:
`{}` would otherwise restart the run at step 0 and delete its whole history.
`checked_state` accepts only a complete state, each field of its type and in its range.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmt.errors import UserError
from nmt.store.checkpoint import DAMAGED


@dataclass
class TrainerState:
    """Where training stands; saved in checkpoints/last/trainer.json for --resume."""

    step: int = 0
    epoch: int = 0  # completed epochs
    position: int = 0  # batches done in the current epoch
    best_bleu: float = -1.0  # valid scores of the best evaluation by train.best_metric
    best_chrf: float = -1.0
    best_loss: float = math.inf
    best_step: int = 0
    bad_evals: int = 0  # evaluations since train.best_metric last improved
    last_eval_step: int = -1
    train_seconds: float = 0.0  # time in training steps only, evaluation excluded
    train_tokens: int = 0
    skipped: int = 0  # updates skipped for a non-finite loss (or fp16 gradients overflowing)
    world_size: int = 1  # processes that trained it (a resume must use as many)
    loss_scale: float | None = None  # train.precision fp16: the gradient scaler's scale


# Each field's type and range as saved: (int or float, lowest, highest), where "step" as
# the highest is the state's own step. A float may be saved as a whole number (JSON's 0).
RANGES: dict[str, tuple[type, float, float | str]] = {
    "step": (int, 0, math.inf),
    "epoch": (int, 0, math.inf),
    "position": (int, 0, math.inf),
    "best_bleu": (float, -1.0, 100.0),  # -1: not evaluated yet
    "best_chrf": (float, -1.0, 100.0),
    "best_loss": (float, 0.0, math.inf),  # inf: not evaluated yet; NaN: a diverged model
    "best_step": (int, 0, "step"),
    "bad_evals": (int, 0, math.inf),
    "last_eval_step": (int, -1, "step"),
    "train_seconds": (float, 0.0, math.inf),
    "train_tokens": (int, 0, math.inf),
    "skipped": (int, 0, "step"),
    "world_size": (int, 1, math.inf),
    "loss_scale": (float, 0.0, math.inf),  # positive, or null: no gradient scaler
}


def checked_state(saved: Any, where: Path) -> TrainerState:
    """The trainer state in `saved` (trainer.json's content, read from `where`), or a
    UserError naming `where` and what is missing, unknown, of another type or out of
    range; the fields are checked in order, so "step" is sound when the others use it."""
    if not isinstance(saved, dict):
        raise UserError(f"{where}: not a JSON object: {DAMAGED}")
    names = [f.name for f in dataclasses.fields(TrainerState)]
    missing = [name for name in names if name not in saved]
    unknown = sorted(str(key) for key in saved.keys() - set(names))
    if missing or unknown:
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        what = [f"missing {', '.join(missing[:4])}{more}"] if missing else []
        what += [f"unknown {', '.join(unknown[:4])}"] if unknown else []
        raise UserError(f"{where}: not a trainer state ({'; '.join(what)}): {DAMAGED}")
    for name in names:
        problem = _problem(name, saved[name], saved["step"])
        if problem:
            raise UserError(f"{where}: {name} is {saved[name]!r:.40} ({problem}): {DAMAGED}")
    return TrainerState(**saved)


def _problem(name: str, value: Any, step: int) -> str | None:
    """What is wrong with `value` as the field `name` of a state at `step`, or None."""
    kind, low, high = RANGES[name]
    if name == "loss_scale" and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int if kind is int else (int, float)):
        return "not a whole number" if kind is int else "not a number"
    if isinstance(value, int) and abs(value) >= 2**63:  # no counter gets there (int64)
        return "out of range"
    if isinstance(value, float) and not math.isfinite(value) and name != "best_loss":
        return "not finite"
    if name == "best_loss" and math.isnan(value):
        return None  # the valid loss of a diverged model, kept when its BLEU still improved
    if name == "loss_scale" and value <= 0:
        return "not positive"
    if value < low:
        return f"below {low:g}"
    if high == "step" and value > step:
        return f"past the saved step {step}"
    if high != "step" and value > float(high):
        return f"over {float(high):g}"
    return None


def improves(metric: str, scores: dict[str, float], state: TrainerState) -> bool:
    """Whether valid `scores` (loss, bleu, chrf) beat the best of `state` by `metric`
    (train.best_metric). For BLEU or chrF, a tie (say 0 early on) goes to the lower loss."""
    if metric == "loss":
        return scores["loss"] < state.best_loss
    best = state.best_bleu if metric == "bleu" else state.best_chrf
    return (scores[metric], -scores["loss"]) > (best, -state.best_loss)
