"""How the CLI shows the library's `Phase` events: bars on a terminal, plain lines elsewhere.

On a terminal (stderr is a TTY) each phase is a tqdm bar on stderr, with its rate and,
for training epochs, the ETA to the run's limit; log lines are written above the bars.
Anywhere else (CI, nohup, a pipe) nothing is redrawn: a phase that ran at least
MIN_SECONDS prints one line on stderr when it finishes, and a line every `every` seconds
while it runs.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

from nmt.events import Phase
from nmt.progress import duration

MIN_SECONDS = 1.0  # off a terminal, quicker phases finish without a line


def _rate(done: int, seconds: float, unit: str) -> str:
    return f"{done / seconds:,.0f} {unit}/s" if seconds > 0 and done > 1 else ""


class Renderer:
    """Draws `Phase` events (`render`) and prints log lines (`echo`) without tearing bars."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None, every: float = 30):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = every
        self.bars: dict[str, tqdm] = {}
        self.started: dict[str, float] = {}
        self.printed: dict[str, float] = {}

    def echo(self, text: str) -> None:
        """A log line on stdout, above any bar being drawn."""
        if self.bars:
            tqdm.write(text, file=sys.stdout)
        else:
            print(text, flush=True)

    def render(self, phase: Phase) -> None:
        now = time.perf_counter()
        if phase.name not in self.started:
            self.started[phase.name] = self.printed[phase.name] = now
        if self.tty:
            self._draw(phase)
        elif (phase.finished and now - self.started[phase.name] >= MIN_SECONDS) or (
            now - self.printed[phase.name] >= self.every
        ):
            self.printed[phase.name] = now
            self._line(phase, now - self.started[phase.name])
        if phase.finished:
            del self.started[phase.name], self.printed[phase.name]

    def _draw(self, phase: Phase) -> None:
        bar = self.bars.get(phase.name)
        if bar is None:
            bar = tqdm(
                total=phase.total, initial=phase.done, desc=phase.name, unit=f" {phase.unit}",
                file=self.stream, leave=phase.name.startswith("epoch"), dynamic_ncols=True,
            )  # fmt: skip
            self.bars[phase.name] = bar
        bar.update(phase.done - bar.n)
        if phase.detail:
            bar.set_postfix_str(phase.detail, refresh=False)
        if phase.finished:
            bar.close()
            del self.bars[phase.name]

    def _line(self, phase: Phase, seconds: float) -> None:
        of = f"/{phase.total}" if phase.total is not None else ""
        rate = _rate(phase.done, seconds, phase.unit)
        when = f"in {duration(seconds)}" if phase.finished else f"after {duration(seconds)}"
        count = f"{phase.done}{of} {phase.unit} " if phase.done or of else ""
        parts = [f"{count}{'done ' if phase.finished else ''}{when}", rate, phase.detail]
        print(f"{phase.name}: " + ", ".join(p for p in parts if p), file=self.stream, flush=True)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
