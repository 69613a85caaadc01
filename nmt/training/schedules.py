"""What changes with the update count: the learning rate and the teacher-forcing ratio.

Each has one owner here, asked by the training loop before every update and saved with
the checkpoint (checkpoints/last/optimizer.pt, under "scheduler"), so a resumed run goes
on with the values an uninterrupted one would have had:

    LearningRate    train.lr_schedule after train.warmup_steps, written into the optimizer
                    before each update: constant, plateau (valid metric), epoch_decay
                    (epochs), inverse_sqrt (updates)
    TeacherForcing  train.teacher_forcing_schedule: the probability of feeding the gold
                    previous token at an update (scheduled sampling, Bengio et al. 2015)
    Schedules       both, as the checkpoint saves and restores them

Update n is the n-th update of the run (1 for the first: TrainerState.step once it is
made); Bengio et al.'s i counts the updates before it (i = n − 1).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from nmt.recipe.schema import TrainConfig

# ReduceLROnPlateau's defaults, which plateau follows to the bit: a score must beat the
# best by this fraction to count as better, and a decay smaller than EPS is not made.
PLATEAU_THRESHOLD = 1e-4
PLATEAU_EPS = 1e-8
# exp(x) overflows a float past x ≈ 709.78; the inverse sigmoid is 0 to the last bit there
MAX_EXP = 700.0


class LearningRate:
    """train.lr_schedule's learning rate at each update, after a linear warm-up.

    The policy keeps `rate`: train.learning_rate as plateau or epoch_decay have decayed it
    (multiplied by train.lr_decay each time, as torch's schedulers do, so a decayed rate
    equals theirs bit for bit). Update n uses

        warm-up (n < w = train.warmup_steps)   rate · n / w
        constant, plateau, epoch_decay         rate
        inverse_sqrt                           learning_rate · sqrt(w) / sqrt(n), n ≥ w,
                                               with w = max(train.warmup_steps, 1)
                                               (Vaswani et al. 2017's decay)

    plateau (`evaluated`) decays after more than train.lr_patience evaluations in a row
    without a better train.best_metric, by ReduceLROnPlateau's rule (relative threshold
    1e-4, no cooldown); epoch_decay (`epoch_ended`) after each epoch from
    train.lr_decay_start on (Sutskever et al. 2014 and Luong et al. 2015 halve).
    """

    def __init__(self, cfg: TrainConfig):
        self.policy, self.base = cfg.lr_schedule, cfg.learning_rate
        self.warmup, self.decay = cfg.warmup_steps, cfg.lr_decay
        self.patience, self.decay_start = cfg.lr_patience, cfg.lr_decay_start
        self.maximize = cfg.best_metric != "loss"  # BLEU and chrF rise, the loss falls
        self.rate = cfg.learning_rate
        self.best = -math.inf if self.maximize else math.inf
        self.bad = 0  # evaluations since best_metric last improved (plateau)

    def at(self, update: int) -> float:
        """The learning rate of update number `update` (1 for the first)."""
        if self.policy == "inverse_sqrt":
            w = max(self.warmup, 1)
            if update < w:
                return self.base * update / w
            return self.base * math.sqrt(w) / math.sqrt(update)
        if update < self.warmup:
            return self.rate * update / self.warmup
        return self.rate

    def apply(self, optimizer: torch.optim.Optimizer, update: int) -> None:
        """Set the optimizer's rate for update number `update`, before it is made."""
        lr = self.at(update)
        for group in optimizer.param_groups:
            group["lr"] = lr

    def epoch_ended(self, epochs: int) -> None:
        """epoch_decay: × train.lr_decay once `epochs` (completed) reach lr_decay_start."""
        if self.policy == "epoch_decay" and epochs >= self.decay_start:
            self.rate *= self.decay

    def evaluated(self, score: float) -> None:
        """plateau: an evaluation's train.best_metric `score`; decay after more than
        lr_patience evaluations without a better one (ReduceLROnPlateau.step's rule)."""
        if self.policy != "plateau":
            return
        if self.maximize:
            better = score > self.best * (PLATEAU_THRESHOLD + 1.0)
        else:
            better = score < self.best * (1.0 - PLATEAU_THRESHOLD)
        self.best, self.bad = (score, 0) if better else (self.best, self.bad + 1)
        if self.bad > self.patience:
            decayed = max(self.rate * self.decay, 0.0)
            if self.rate - decayed > PLATEAU_EPS:
                self.rate = decayed
            self.bad = 0

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "rate": self.rate, "best": self.best, "bad": self.bad}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        _same_policy("train.lr_schedule", saved["policy"], self.policy)
        rate, best, bad = float(saved["rate"]), float(saved["best"]), int(saved["bad"])
        if not (math.isfinite(rate) and rate > 0 and not math.isnan(best) and bad >= 0):
            raise ValueError(f"a learning-rate schedule out of range: {saved}")
        self.rate, self.best, self.bad = rate, best, bad


class TeacherForcing:
    """train.teacher_forcing_schedule: the probability ε_i of feeding the gold previous
    token at the update after i updates (Bengio et al. 2015, section 2.4), never below
    the floor ε_min = train.teacher_forcing:

        constant          ε_i = train.teacher_forcing
        linear            ε_i = max(ε_min, k − c·i)
        exponential       ε_i = max(ε_min, k^i)                 k in (0, 1)
        inverse_sigmoid   ε_i = max(ε_min, k / (k + exp(i / k)))  k ≥ 1

    with k = train.teacher_forcing_k and c = train.teacher_forcing_c. A function of the
    update count alone, which TrainerState keeps, so a resumed run continues exactly.
    """

    def __init__(self, cfg: TrainConfig):
        self.policy, self.floor = cfg.teacher_forcing_schedule, cfg.teacher_forcing
        self.k, self.c = cfg.teacher_forcing_k or 1.0, cfg.teacher_forcing_c or 0.0

    def at(self, i: int) -> float:
        """ε_i: the ratio of the update made after `i` updates (0 for the first)."""
        k = self.k
        if self.policy == "linear":
            ratio = k - self.c * i
        elif self.policy == "exponential":
            ratio = k**i
        elif self.policy == "inverse_sigmoid":
            ratio = k / (k + math.exp(i / k)) if i / k < MAX_EXP else 0.0
        else:
            return self.floor
        return max(self.floor, ratio)

    def state_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "k": self.k, "c": self.c, "floor": self.floor}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        _same_policy("train.teacher_forcing_schedule", saved["policy"], self.policy)


class Schedules:
    """Both schedules, saved and restored with the checkpoint as one state dict (in place
    of the `torch.optim.lr_scheduler.ReduceLROnPlateau` that checkpoints saved before
    this module; those still load: see `load_state_dict`)."""

    def __init__(self, cfg: TrainConfig, optimizer: torch.optim.Optimizer):
        self.lr, self.teacher_forcing = LearningRate(cfg), TeacherForcing(cfg)
        self.optimizer = optimizer

    def state_dict(self) -> dict[str, Any]:
        return {
            "learning_rate": self.lr.state_dict(),
            "teacher_forcing": self.teacher_forcing.state_dict(),
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Restore a saved state; once the optimizer's is restored (nmt.store.checkpoint
        loads that first), so that an older checkpoint's ReduceLROnPlateau state can take
        the rate from the optimizer: those runs had no warm-up, and the optimizer held
        the schedule's rate."""
        if "num_bad_epochs" in saved:  # ReduceLROnPlateau.state_dict(): nmt before schedules
            lr = self.lr.state_dict()
            lr.update(rate=self.optimizer.param_groups[0]["lr"], best=saved["best"])
            lr.update(bad=saved["num_bad_epochs"])
            self.lr.load_state_dict(lr)
            return
        self.lr.load_state_dict(saved["learning_rate"])
        self.teacher_forcing.load_state_dict(saved["teacher_forcing"])


def _same_policy(key: str, saved: Any, policy: str) -> None:
    if saved != policy:
        raise ValueError(f"saved with {key} {saved}, and the recipe says {policy}")
