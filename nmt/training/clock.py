"""Long phases reported as they advance (`Phase` events), and the training run's ETA.

    with Tracker(on_event, "validating", len(sources), "sentences") as tracker:
        translator.translate(sources, progress=tracker.advance)

The library only reports; the CLI (cli/progress.py) draws bars on a terminal and prints
a plain line now and then elsewhere. Reporting is cheap: an event per batch or step.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nmt.data.batching import Place
from nmt.events import Event
from nmt.progress import Tracker, duration
from nmt.recipe.schema import TrainConfig


class RunClock:
    """Wall time of this session of a run, and how far it got, for the ETA to its limit."""

    def __init__(self, cfg: TrainConfig, step: int, epochs: float):
        self.cfg = cfg
        self.started = time.perf_counter()
        self.first_step, self.first_epochs = step, epochs

    def eta(self, step: int, epochs: float) -> str:
        """'ETA 12 min 30 s (train.max_epochs 13)': the nearest limit at the pace so far
        (evaluations included); '' until there is a pace to go by."""
        cfg, elapsed = self.cfg, time.perf_counter() - self.started
        steps, done_epochs = step - self.first_step, epochs - self.first_epochs
        if steps <= 0 or elapsed <= 0:
            return ""
        left: list[tuple[float, str]] = []
        if cfg.max_steps is not None:
            left.append(((cfg.max_steps - step) * elapsed / steps, f"max_steps {cfg.max_steps}"))
        if cfg.max_epochs is not None and done_epochs > 0:
            per_epoch = elapsed / done_epochs
            left.append(((cfg.max_epochs - epochs) * per_epoch, f"max_epochs {cfg.max_epochs}"))
        if cfg.max_minutes is not None:
            left.append((60 * cfg.max_minutes - elapsed, f"max_minutes {cfg.max_minutes}"))
        if not left:
            return ""
        seconds, limit = min(left)
        return f"ETA {duration(max(seconds, 0.0))} (train.{limit})"


class EpochBars:
    """The training loop's progress: a `Tracker` per epoch ("epoch 3", in batches),
    advanced after every step with the ETA to the run's limit."""

    def __init__(self, on_event: Callable[[Event], None], clock: RunClock):
        self.on_event, self.clock = on_event, clock
        self.bar: Tracker | None = None

    def step(self, place: Place, step: int, batches: int = 1) -> None:
        """After training step `step` on `batches` batches, which left the schedule at
        `place` (nmt.data.batching.EpochSchedule)."""
        if self.bar is None:  # from where a resumed run stands in the epoch
            epoch = place.epoch - 1 if place.epoch_end else place.epoch  # the batches' own
            name = f"epoch {epoch + 1}"
            self.bar = Tracker(self.on_event, name, place.batches, "batches", place.taken - batches)
        self.bar.advance(batches, self.clock.eta(step, place.epochs_done))
        if place.epoch_end:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.finish()
            self.bar = None
