"""Long phases reported as they advance (`Phase` events), and the training run's ETA.

    with Tracker(on_event, "validating", len(sources), "sentences") as tracker:
        translator.translate(sources, progress=tracker.advance)

The library only reports; the CLI (cli/progress.py) draws bars on a terminal and prints
a plain line now and then elsewhere. Reporting is cheap: an event per batch or step.
"""

from __future__ import annotations

from collections.abc import Callable

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
