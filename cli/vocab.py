"""`nmt vocab RUN_DIR|DATA_DIR [--side source|target] [--top N] [--json]`: a vocabulary with
its counts (a prepared dataset) or its scores (a model directory)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from nmt.cli.errors import user_errors
from nmt.report.vocabulary import read_vocabulary


class Side(str, Enum):
    source = "source"
    target = "target"


@user_errors
def vocab(
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="RUN_DIR|DATA_DIR",
            help="A model directory (nmt train) or a prepared dataset (nmt prepare).",
        ),
    ],
    side: Annotated[Side, typer.Option(help="Which language's vocabulary.")] = Side.source,
    top: Annotated[
        int | None,
        typer.Option(
            help="Only N entries: the most frequent (a prepared dataset), else the first N ids."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print a vocabulary, one entry per line: id, piece, and its count in the training
    split (a prepared dataset) or its SentencePiece score (a model directory, which keeps
    no counts); the first line says which."""
    vocabulary = read_vocabulary(directory, side.value, top)
    if as_json:
        typer.echo(json.dumps(vocabulary.to_json(), ensure_ascii=False))
        return
    for line in vocabulary.lines():
        typer.echo(line)
