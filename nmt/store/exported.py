"""An exported directory (what `nmt export` writes) given where nmt's commands take a model
directory: `exported_model` picks it out of the `--model` directories and refuses, one
line each, what such a directory cannot do: join an ensemble (several export as one),
run on another device (onnxruntime runs on the CPU), or at another precision (its own is
the one it was exported with). `nmt translate` and `nmt evaluate bleu`
(nmt.export.loaded) and `nmt serve` (nmt.serve.engine) ask it; nmt_runtime translates.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nmt.errors import UserError
from nmt_runtime.manifest import is_exported

INSTALL = "pip install 'recurrent-nmt[export]'"  # onnx and onnxruntime, for exporting and this


def exported_model(
    dirs: Sequence[str | Path], device: str, precision: str, several: str
) -> Path | None:
    """The exported directory among `dirs`, checked, or None when all are model
    directories. `several` begins the refusal of more than one (e.g. "--model X is an
    exported directory, which translates alone"), as the command says it."""
    exported = [Path(d) for d in dirs if is_exported(Path(d))]
    if not exported:
        return None
    first = exported[0]
    if len(dirs) > 1:
        raise UserError(
            f"{several.format(first=first)}; export an ensemble as one: "
            "nmt export RUN_A RUN_B --output-dir DIR"
        )
    if device not in ("auto", "cpu"):
        raise UserError(
            f"--device {device}: an exported directory ({first}) runs on the CPU with "
            "onnxruntime; leave --device out"
        )
    if precision != "fp32":
        raise UserError(
            f"--precision {precision}: an exported directory ({first}) keeps the precision "
            "it was exported with (nmt export --precision); leave --precision out"
        )
    return first
