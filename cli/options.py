"""Options shared by several verbs: the device, and decode settings that override the recipe."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from nmt.errors import UserError


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class Normalization(str, Enum):
    none = "none"
    average = "average"
    gnmt = "gnmt"


DeviceOption = Annotated[Device, typer.Option(help="Where to run: CUDA when available, or cpu.")]
Beam = Annotated[int | None, typer.Option(help="Beam size (default: the recipe's).")]
Greedy = Annotated[bool, typer.Option(help="Greedy search: beam size 1.")]
LengthNormalization = Annotated[
    Normalization | None, typer.Option(help="How hypotheses of different lengths are ranked.")
]
LengthPenalty = Annotated[float | None, typer.Option(help="GNMT length penalty alpha.")]
MinLength = Annotated[int | None, typer.Option(help="Tokens before </s> may end a translation.")]


def decode_overrides(
    beam: int | None,
    greedy: bool,
    length_normalization: Normalization | None,
    length_penalty: float | None,
    min_length: int | None,
) -> dict[str, Any]:
    """Keyword arguments for Translator.translate / search; None keeps the recipe's value."""
    return {
        "beam_size": 1 if greedy else beam,
        "length_normalization": length_normalization.value if length_normalization else None,
        "length_penalty": length_penalty,
        "min_length": min_length,
    }


def check_output(path: Path | None, option: str) -> None:
    """An output file must be creatable: checked before any work is done."""
    if path is None:
        return
    if path.is_dir():
        raise UserError(f"{option} {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise UserError(f"{option} {path}: the directory {path.parent} does not exist")
