"""`nmt inspect MODEL_DIR [--json]`: a model directory's settings, tensors, parameter counts,
training data and scores, read without loading its weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nmt.cli.errors import user_errors
from nmt.report.inspection import inspect_model


@user_errors
def inspect(
    directory: Annotated[
        Path, typer.Argument(metavar="MODEL_DIR", help="A model directory that nmt train wrote.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Show a model: cell, sizes, attention, layers, bridge and vocabulary sizes; the
    tokenizer; each parameter tensor's name and shape; parameter counts in all and per
    module; the checkpoint format; the recipe's data section (what it was trained on);
    and results.json's scores when training finished."""
    inspection = inspect_model(directory)
    if as_json:
        typer.echo(json.dumps(inspection.to_json(), ensure_ascii=False))
        return
    for line in inspection.lines():
        typer.echo(line)
