"""Training curves: `nmt plot RUN_DIR ...` draws runs' metrics.jsonl files in one figure.

One panel per metric that some run has (valid BLEU, valid perplexity on a log scale,
training loss), against the training step, the epoch or the training time (train_seconds,
in minutes). Each run is one line with markers, in the same colour in every panel and
named in each panel's legend, so that ablations can be compared at a glance.

A run without a metric (a metrics.jsonl written before nmt recorded train_loss and
train_seconds, BLEU not computed) is left out of that panel and named in the returned
notes, and so are values too large to draw (past ±LARGEST); nothing here prints. The
image is written as nmt.store.files writes every file (`nmt.report.plot.save_figure`): a temporary
file of its own renamed over the output, so an interrupted plot leaves the old file or
the new one, and an output that is no regular file (/dev/null) is refused. Needs
matplotlib (`nmt.report.plot.pyplot` says how to install it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from nmt.decode.figure import pyplot
from nmt.errors import UserError
from nmt.report.plot import DPI as DPI  # the resolution the images are written at (tests read it)
from nmt.report.plot import image_format, save_figure
from nmt.store import files
from nmt.store.layout import METRICS, RECIPE, RUN_FILES

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

XAxis = Literal["step", "epoch", "time"]
# metric key -> (panel title, y label, log scale), in panel order
PANELS = {
    "valid_bleu": ("valid BLEU", "BLEU", False),
    "valid_ppl": ("valid perplexity", "perplexity (log scale)", True),
    "train_loss": ("training loss", "loss per target token", False),
}
# --x choice -> (metrics.jsonl key, divisor, axis label)
X_AXES = {
    "step": ("step", 1, "training step"),
    "epoch": ("epoch", 1, "epoch"),
    "time": ("train_seconds", 60, "training time (minutes)"),
}
PANEL_INCHES = (5.5, 4.2)  # width, height of one panel
NEEDS = "nmt plot"  # names the command in the install hint when matplotlib is missing
NOT_YET = "the run has not evaluated yet; plot it after its first evaluation (train.eval_every)"
# Values past ±LARGEST are left out (and noted): no metric nmt records comes near it (a
# perplexity that large means a diverged run), and matplotlib's axis arithmetic overflows
# on values near the largest float (1e308: "arange: cannot compute length").
LARGEST = 1e100


@dataclass
class RunMetrics:
    """One run directory's evaluations: the records of its metrics.jsonl, in order."""

    name: str
    path: Path
    records: list[dict[str, Any]]

    def has(self, key: str) -> bool:
        """Whether any record has `key` as a number."""
        return any(_number(record.get(key)) is not None for record in self.records)

    def points(self, x: XAxis, metric: str) -> tuple[list[float], list[float]]:
        """The (x, metric) pairs of the records that have both as numbers."""
        key, divisor, _ = X_AXES[x]
        xs: list[float] = []
        ys: list[float] = []
        for record in self.records:
            at, value = _number(record.get(key)), _number(record.get(metric))
            if at is not None and value is not None and max(abs(at), abs(value)) <= LARGEST:
                xs.append(at / divisor)
                ys.append(value)
        return xs, ys

    def too_large(self, x: XAxis, metric: str) -> int:
        """How many (x, metric) pairs `points` leaves out for a value past ±LARGEST."""
        key = X_AXES[x][0]
        pairs = [(_number(r.get(key)), _number(r.get(metric))) for r in self.records]
        return sum(
            at is not None and value is not None and max(abs(at), abs(value)) > LARGEST
            for at, value in pairs
        )


@dataclass
class Curves:
    """What `plot_curves` drew: the image file, the names of the runs in it, notes on what
    was left out, and the (closed) figure with its panels by metric key, to inspect."""

    output: Path
    runs: list[str]
    notes: list[str]
    figure: Figure
    axes: dict[str, Axes]


def read_runs(run_dirs: Sequence[Path]) -> list[RunMetrics]:
    """The runs in `run_dirs`, each named by its directory's name, with as many parent
    directories as it takes to tell apart runs whose directories share a name."""
    if not run_dirs:
        raise UserError("no run directory given; give one or more directories `nmt train` wrote")
    seen: dict[Path, Path] = {}
    for path in run_dirs:
        real = path.resolve()
        if real in seen:
            raise UserError(
                f"{path} is given twice (also as {seen[real]}); give each run directory once"
            )
        seen[real] = path
    names = _names(list(seen))
    pairs = zip(names, run_dirs, strict=True)
    return [RunMetrics(name, path, _records(path)) for name, path in pairs]


def _records(path: Path) -> list[dict[str, Any]]:
    """The evaluations in `path`/metrics.jsonl (a torn last line dropped), or a UserError."""
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise UserError(f"{path} {what}; give a model directory `nmt train` wrote")
    metrics = path / METRICS
    if not metrics.is_file():
        if (path / RECIPE).is_file():
            raise UserError(f"{path} has no {METRICS}: {NOT_YET}")
        raise UserError(
            f"{path} is not a run directory (no {METRICS}); give a directory `nmt train` wrote"
        )
    try:
        records = [row for row in files.read_jsonl(metrics) if isinstance(row, dict)]
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or e
        raise UserError(f"{metrics} cannot be read ({reason})") from None
    if not records:
        raise UserError(f"{metrics} holds no evaluations: {NOT_YET}")
    return records


def _names(paths: list[Path]) -> list[str]:
    """Distinct names for distinct absolute paths: the last part of each, or more parts of
    the paths whose last parts clash."""
    depth = [1] * len(paths)
    while True:
        names = [str(Path(*path.parts[-d:])) for path, d in zip(paths, depth, strict=True)]
        clashes = {name for name in names if names.count(name) > 1}
        if not clashes:
            return names
        depth = [d + (name in clashes) for d, name in zip(depth, names, strict=True)]


def _number(value: Any) -> float | None:
    """A finite int or float from a record; None for null, absent or anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def plot_curves(runs: Sequence[RunMetrics], output: Path, x: XAxis = "step") -> Curves:
    """Draw `runs` against `x` (the step, the epoch, or the training time in minutes) into
    one image at `output`: a panel per metric some run has, a line per run."""
    if x not in X_AXES:
        raise UserError(f"--x {x}: choose one of {', '.join(X_AXES)}")
    chosen_format = _check_output(output, runs)
    colors = {run.name: f"C{i % 10}" for i, run in enumerate(runs)}
    notes: list[str] = []
    if x == "time":
        runs, notes = _timed(runs)
    panels = [m for m in PANELS if any(run.points(x, m)[0] for run in runs)]
    for metric in PANELS:
        if metric not in panels:  # (a drawn panel notes them itself)
            notes += _too_large_notes(metric, runs, x)
    if not panels:
        raise UserError(
            f"nothing to plot: {', '.join(run.name for run in runs)} recorded no "
            f"{', '.join(PANELS)} in {METRICS}"
        )
    plt = pyplot(NEEDS)
    width, height = PANEL_INCHES
    fig, grid = plt.subplots(1, len(panels), figsize=(width * len(panels), height), squeeze=False)
    axes = dict(zip(panels, grid[0], strict=True))
    drawn: set[str] = set()
    try:
        for metric, ax in axes.items():
            drawn |= _panel(ax, metric, runs, x, colors, notes)
        fig.suptitle("training curves")
        fig.tight_layout()
        save_figure(fig, output, f"--output {output}", chosen_format)
    finally:
        plt.close(fig)
    names = [run.name for run in runs if run.name in drawn]
    return Curves(output, names, notes, fig, axes)


def _timed(runs: Sequence[RunMetrics]) -> tuple[list[RunMetrics], list[str]]:
    """The runs that recorded train_seconds, and a note naming those that did not."""
    timed = [run for run in runs if run.has("train_seconds")]
    untimed = [run.name for run in runs if not run.has("train_seconds")]
    if not timed:
        raise UserError(
            f"--x time needs train_seconds, which no run recorded ({', '.join(untimed)}: "
            "trained before nmt recorded it); use --x step or --x epoch"
        )
    if not untimed:
        return timed, []
    return timed, [f"{', '.join(untimed)} not drawn: no train_seconds in {METRICS}"]


def _panel(ax: Axes, metric: str, runs: Sequence[RunMetrics], x: XAxis, colors, notes) -> set[str]:
    """Draw one metric's panel; return the names of the runs drawn, note the others."""
    title, ylabel, log = PANELS[metric]
    drawn: set[str] = set()
    for run in runs:
        xs, ys = run.points(x, metric)
        if xs:
            ax.plot(xs, ys, marker="o", markersize=3.5, color=colors[run.name], label=run.name)
            drawn.add(run.name)
    notes += _too_large_notes(metric, runs, x)
    missing = [r.name for r in runs if r.name not in drawn and not r.too_large(x, metric)]
    if missing:
        notes.append(f"{title}: {', '.join(missing)} not drawn (no {metric} in {METRICS})")
    ax.set_title(title)
    ax.set_xlabel(X_AXES[x][2])
    ax.set_ylabel(ylabel)
    if log:
        from matplotlib.ticker import LogFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(LogFormatter())  # 20, 30, 40 rather than 2x10^1
        ax.yaxis.set_minor_formatter(LogFormatter())
    ax.grid(True, alpha=0.3)
    ax.legend()
    return drawn


def _too_large_notes(metric: str, runs: Sequence[RunMetrics], x: XAxis) -> list[str]:
    """A note per run that has values of `metric` (or of x) too large to draw."""
    notes = []
    for run in runs:
        count = run.too_large(x, metric)
        if count:
            values = "a value" if count == 1 else f"{count} values"
            notes.append(f"{PANELS[metric][0]}: {values} of {run.name} past ±{LARGEST:g} not drawn")
    return notes


def _check_output(output: Path, runs: Sequence[RunMetrics]) -> str:
    """The image format `output` names (png without a suffix), after checking that it can be
    written (a regular file or a new name, see nmt.store.files) and would not replace a run's own
    files."""
    label = f"--output {output}"
    files.check_target(output, label)
    real = output.resolve()
    for run in runs:
        if real.parent == run.path.resolve() and real.name in RUN_FILES:
            raise UserError(
                f"--output {output} would replace {real.name} of the run {run.path}; "
                "choose another file name"
            )
    return image_format(output, label, NEEDS)
