"""Long phases reported as they advance (`Phase` events), and the training run's ETA.

    with Tracker(on_event, "validating", len(sources), "sentences") as tracker:
        translator.translate(sources, progress=tracker.advance)

The library only reports; the CLI (cli/progress.py) draws bars on a terminal and prints
a plain line now and then elsewhere. Reporting is cheap: an event per batch or step.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nmt.config import TrainConfig
from nmt.events import Event, Phase


class Tracker:
    """One phase: reported started on creation, then on every `advance`, then finished
    (also when its `with` block ends by an exception, so a bar never dangles)."""

    def __init__(
        self,
        on_event: Callable[[Event], None],
        name: str,
        total: int | None,
        unit: str,
        done: int = 0,  # already done before this session (a resumed epoch)
    ):
        self.on_event, self.name, self.total, self.unit = on_event, name, total, unit
        self.done = done
        self.detail = ""  # the latest, kept for the finishing report
        self.finished = False
        self._emit()

    def _emit(self, detail: str = "") -> None:
        phase = Phase(self.name, self.done, self.total, self.unit, self.finished, detail)
        self.on_event(phase)

    def advance(self, count: int = 1, detail: str = "") -> None:
        self.done += count
        self.detail = detail or self.detail
        self._emit(self.detail)

    def finish(self, detail: str = "") -> None:
        if not self.finished:
            self.finished = True
            self._emit(detail or self.detail)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


def duration(seconds: float) -> str:
    """A duration for people: '0.4 s', '12 s', '3 min 05 s', '2 h 07 min'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


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

    def step(self, schedule, epoch_end: bool, step: int, batches: int = 1) -> None:
        """After a step on `schedule`'s (an EpochSchedule) latest `batches` batches."""
        if self.bar is None:  # from where a resumed run stands in the epoch
            total = len(schedule.batches)
            done = total - batches if epoch_end else schedule.state.position - batches
            name = f"epoch {schedule.epoch + 1}"
            self.bar = Tracker(self.on_event, name, total, "batches", done)
        self.bar.advance(batches, self.clock.eta(step, schedule.epochs_done))
        if epoch_end:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.finish()
            self.bar = None
