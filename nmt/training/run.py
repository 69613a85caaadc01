"""`Run`: everything one training run works with, made once by `prepare_run`
(nmt.training.setup) and handed to the loop, validation and results."""

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
from nmt.training.distributed import World
from nmt.training.ema import WeightAverage
from nmt.training.run_dir import RunDir
from nmt.training.state import TrainerState
from nmt.training.tensorboard import TensorBoardLog


@dataclass
class Run:
    """Everything one training run works with, made once by `prepare_run`."""

    recipe: Recipe
    run_dir: RunDir
    device: torch.device
    data: Data
    model: Seq2Seq
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau
    translator: Translator  # decodes valid and test, as `nmt translate` would
    state: TrainerState
    on_event: Callable[[Event], None]
    autocast: contextlib.AbstractContextManager  # bf16 or fp16 when asked, else a no-op
    scaler: torch.amp.GradScaler | None = None  # fp16 only: dynamic loss scaling
    average: WeightAverage | None = None  # train.ema_decay: what is evaluated and kept
    saved_step: int | None = None  # step of the last resumable checkpoint
    board: TensorBoardLog | None = None  # train.tensorboard: hears every event
    window_loss: float = 0.0  # training loss × tokens since the last evaluation
    window_tokens: int = 0
    world: World = World()  # this process among torchrun's ranks (nmt.training.distributed)
    trainer: torch.nn.Module | None = None  # what steps: the model, or its DDP wrapper

    @property
    def cfg(self) -> TrainConfig:
        return self.recipe.train
