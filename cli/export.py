"""`nmt export RUN_DIR [RUN_DIR ...] --output-dir DIR [--precision fp32|int8] [--opset N]`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from nmt.cli.errors import user_errors
from nmt.export.write import DEFAULT_OPSET, export_model


class ExportPrecision(str, Enum):
    fp32 = "fp32"
    int8 = "int8"


@user_errors
def export(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN_DIR",
            help="A model directory that nmt train wrote; several: an ensemble of them.",
        ),
    ],
    output_dir: Annotated[
        Path, typer.Option("--output-dir", "-o", help="The exported directory (new or empty).")
    ],
    precision: Annotated[
        ExportPrecision,
        typer.Option(help="fp32, or int8: onnxruntime's dynamic int8 for the matrix products."),
    ] = ExportPrecision.fp32,
    opset: Annotated[int, typer.Option(help="The ONNX opset to write.")] = DEFAULT_OPSET,
) -> None:
    """Export a trained model as ONNX graphs that translate without PyTorch.

    The directory holds encoder.onnx, decoder_step.onnx, the tokenizer files, the decode
    defaults and manifest.json; `nmt-runtime translate -m DIR` (pip install ./runtime)
    and `nmt translate --model DIR` translate with it, as PyTorch does for fp32.
    """
    manifest = export_model(run_dirs, output_dir, precision.value, opset)
    members = len(manifest["models"])
    what = f"ensemble of {members} models" if members > 1 else str(run_dirs[0])
    typer.echo(f"exported {what} ({precision.value}, opset {opset}) to {output_dir}", err=True)
