"""`nmt average RUN_DIR --output-dir NEW`: average kept checkpoints into a model directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nmt.cli.errors import user_errors
from nmt.errors import UserError
from nmt.training.average import choose, write_averaged


@user_errors
def average(
    run_dir: Annotated[
        Path,
        typer.Argument(
            metavar="RUN_DIR", help="A model directory trained with train.keep_checkpoints."
        ),
    ],
    output_dir: Annotated[
        Path, typer.Option("--output-dir", help="The new model directory (must not hold files).")
    ],
    last: Annotated[
        int | None,
        typer.Option("--last", help="Average the last N kept checkpoints (default: all kept)."),
    ] = None,
    checkpoints: Annotated[
        list[Path] | None,
        typer.Option("--checkpoints", help="Weights files to average instead (repeat the option)."),
    ] = None,
) -> None:
    """Average the weights of the last evaluations into a new model directory, which
    `nmt translate --model` and `nmt evaluate` use like any trained model."""
    if last is not None and checkpoints:
        raise UserError("give --last N or --checkpoints FILE ..., not both")
    paths = choose(run_dir, last, checkpoints or [])
    write_averaged(run_dir, paths, output_dir)
    typer.echo(f"averaged {len(paths)} checkpoints of {run_dir} into {output_dir}", err=True)
