"""`nmt plot RUN_DIR [RUN_DIR ...] --output curves.png`: training curves, runs overlaid."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from nmt.cli.errors import user_errors
from nmt.report.curves import plot_curves, read_runs


class XAxis(str, Enum):
    step = "step"
    epoch = "epoch"
    time = "time"


@user_errors
def plot(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN_DIR", help="Model directories `nmt train` wrote (one or more)."
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The image to write (PNG; .svg and .pdf too).")
    ] = Path("curves.png"),
    x: Annotated[
        XAxis,
        typer.Option(
            "--x", help="Against the training step, the epoch, or the training time (minutes)."
        ),
    ] = XAxis.step,
) -> None:
    """Draw the valid BLEU, valid perplexity and training loss of each run's metrics.jsonl
    in one image, the runs overlaid and named, to compare ablations."""
    curves = plot_curves(read_runs(run_dirs), output, x.value)
    line = f"wrote {curves.output}: {', '.join(curves.runs)} against {x.value}"
    typer.echo("; ".join([line, *curves.notes]), err=True)
