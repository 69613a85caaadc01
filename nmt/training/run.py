"""`Run`: everything one training run works with, made once by `prepare_run`
(nmt.training.setup) and handed to the loop, validation and results; its `Learner`:
what the updates change and the checkpoint saves."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

from nmt.data.prepare import Data
from nmt.decode.translate import Translator
from nmt.events import Event
from nmt.model.seq2seq import Seq2Seq
from nmt.recipe.schema import Recipe, TrainConfig
from nmt.training.distributed import ALONE, World
from nmt.training.ema import WeightAverage
from nmt.training.run_dir import RunDir
from nmt.training.schedules import Schedules
from nmt.training.state import TrainerState
from nmt.training.tensorboard import TensorBoardLog


@dataclass
class Learner:
    """What the updates change and checkpoints/last saves: the weights, their optimizer,
    the learning-rate and teacher-forcing schedules, and the weight average; with the
    precision an update runs in."""

    model: Seq2Seq
    optimizer: torch.optim.Optimizer
    schedules: Schedules
    autocast: contextlib.AbstractContextManager  # bf16 or fp16 when asked, else a no-op
    scaler: torch.amp.GradScaler | None = None  # fp16 only: dynamic loss scaling
    average: WeightAverage | None = None  # train.ema_decay: what is evaluated and kept
    trainer: torch.nn.Module | None = None  # DDP's wrapper of `model` in a distributed run

    @property
    def stepped(self) -> torch.nn.Module:
        """What an update runs: the model, or its DDP wrapper."""
        return self.trainer if self.trainer is not None else self.model


@dataclass
class Run:
    """Everything one training run works with, made once by `prepare_run`. Its
    `state` (where training stands) is written by the training loop alone."""

    recipe: Recipe
    run_dir: RunDir
    device: torch.device
    data: Data
    learner: Learner
    translator: Translator  # decodes valid and test, as `nmt translate` would
    state: TrainerState
    on_event: Callable[[Event], None]
    world: World = ALONE  # this process among torchrun's ranks (nmt.training.distributed)
    board: TensorBoardLog | None = None  # train.tensorboard: hears every event

    @property
    def cfg(self) -> TrainConfig:
        return self.recipe.train
