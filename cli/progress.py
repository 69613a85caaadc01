"""How the CLI shows the library's `Phase` events: bars on a terminal, plain lines elsewhere.

On a terminal (stderr is a TTY) each phase is a tqdm bar on stderr, with its rate and,
for training epochs, the ETA to the run's limit (in place of tqdm's own time left in the
epoch: one ETA per line); log lines are written above the bars. Anywhere else (CI,
nohup, a pipe) nothing is redrawn: a phase that ran at least MIN_SECONDS prints one line
on stderr when it finishes, and a line every `every` seconds while it runs, and each
line the renderer writes, log lines too, starts with the local time
(`2026-12-06 02:14:03`), since a log file has no other clock. Rates count only what this
process did in its own time: a resumed epoch's earlier batches are not part of its pace.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

from nmt.events import Phase
from nmt.progress import duration

MIN_SECONDS = 1.0  # off a terminal, quicker phases finish without a line


# tqdm's bar with the time elapsed but not its time left: an epoch's detail has the run's ETA
EPOCH_BAR = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}{postfix}]"


def _rate(done: int, seconds: float, unit: str) -> str:
    """'1,234 sentences/s', '2.5 batches/s', '0.42 batches/s'; under 0.1 a second, the
    time per item: '12 s/batch', '3 min 05 s/batch'."""
    if seconds <= 0 or done <= 1:
        return ""
    rate = done / seconds
    if rate >= 10:
        return f"{rate:,.0f} {unit}/s"
    if rate >= 1:
        return f"{rate:.1f} {unit}/s"
    if rate >= 0.1:
        return f"{rate:.2f} {unit}/s"
    one = unit[:-2] if unit.endswith(("ches", "shes", "sses")) else unit.removesuffix("s")
    return f"{duration(1 / rate)}/{one}"


def stamp(text: str) -> str:
    """`text` after the local time, '2026-12-06 02:14:03 text', for a log that is a file."""
    return f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}"


class Renderer:
    """Draws `Phase` events (`render`) and prints log lines (`echo`) without tearing bars."""

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None, every: float = 30):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = every
        self.bars: dict[str, tqdm] = {}
        self.started: dict[str, float] = {}
        self.printed: dict[str, float] = {}
        self.first: dict[str, int] = {}  # done when this process first saw the phase

    def echo(self, text: str) -> None:
        """A log line on stdout, above any bar being drawn; off a terminal, time-stamped."""
        if self.bars:
            tqdm.write(text, file=sys.stdout)
        else:
            print(text if self.tty else stamp(text), flush=True)

    def render(self, phase: Phase) -> None:
        now = time.perf_counter()
        if phase.name not in self.started:
            self.started[phase.name] = self.printed[phase.name] = now
            self.first[phase.name] = phase.done  # a resumed epoch starts part done
        if self.tty:
            self._draw(phase)
        elif (phase.finished and now - self.started[phase.name] >= MIN_SECONDS) or (
            now - self.printed[phase.name] >= self.every
        ):
            self.printed[phase.name] = now
            self._line(phase, now - self.started[phase.name])
        if phase.finished:
            del self.started[phase.name], self.printed[phase.name], self.first[phase.name]

    def _draw(self, phase: Phase) -> None:
        bar = self.bars.get(phase.name)
        if bar is None:
            bar = tqdm(
                total=phase.total, initial=phase.done, desc=phase.name, unit=f" {phase.unit}",
                file=self.stream, leave=phase.name.startswith("epoch"), dynamic_ncols=True,
                bar_format=EPOCH_BAR if phase.name.startswith("epoch") else None,
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
        rate = _rate(phase.done - self.first[phase.name], seconds, phase.unit)
        when = f"in {duration(seconds)}" if phase.finished else f"after {duration(seconds)}"
        count = f"{phase.done}{of} {phase.unit} " if phase.done or of else ""
        parts = [f"{count}{'done ' if phase.finished else ''}{when}", rate, phase.detail]
        line = f"{phase.name}: " + ", ".join(p for p in parts if p)
        print(stamp(line), file=self.stream, flush=True)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()
