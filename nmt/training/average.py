"""Checkpoint averaging: the element-wise mean of the weights kept from the last few
evaluations (train.keep_checkpoints), written as a complete model directory.

Averaging the last checkpoints of one run is a cheap ensemble in weight space (Vaswani
et al. 2017 average the last 5 or 20; fairseq's scripts/average_checkpoints.py): the
weights of neighbouring evaluations lie in one basin, and their mean usually sits nearer
its centre than any of them. Floating-point tensors are summed in float64 and divided
once; integer buffers (the shared-embedding id map) must agree and are kept as they are.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch

from nmt.data.tokenizer import load_tokenizers
from nmt.errors import UserError
from nmt.model.seq2seq import build_model
from nmt.recipe.load import load_recipe
from nmt.store import checkpoint, files
from nmt.store.layout import TOKENIZER_FILES, check_model_dir

RECORD = "averaged.json"  # in the new directory: which checkpoints were averaged


def average_checkpoints(paths: Sequence[Path]) -> dict[str, torch.Tensor]:
    """The element-wise mean of the weights files `paths` (same names and shapes)."""
    if not paths:
        raise UserError("no checkpoints to average")
    first = checkpoint.read_tensors(paths[0])
    sums = {k: v.double() if v.is_floating_point() else v for k, v in first.items()}
    for path in paths[1:]:
        tensors = checkpoint.read_tensors(path)
        differ = [k for k in sums if k not in tensors or tensors[k].shape != sums[k].shape]
        if differ or tensors.keys() != sums.keys():
            raise UserError(
                f"{path}: its weights do not match those of {paths[0]} "
                f"(first difference: {(differ or sorted(tensors.keys() ^ sums.keys()))[0]}); "
                "average checkpoints of one run"
            )
        for k, v in tensors.items():
            if v.is_floating_point():
                sums[k] += v.double()
            elif not torch.equal(v, sums[k]):
                raise UserError(f"{path}: {k} differs from {paths[0]}; average one run's")
    return {
        k: (v / len(paths)).to(first[k].dtype) if first[k].is_floating_point() else v
        for k, v in sums.items()
    }


def choose(run_dir: Path, last: int | None, chosen: Sequence[Path]) -> list[Path]:
    """The checkpoints to average: `chosen` files, or the `last` N kept ones (all if None)."""
    if chosen:
        return list(chosen)
    kept = checkpoint.kept_checkpoints(run_dir)
    if not kept:
        raise UserError(
            f"{run_dir}: has no kept checkpoints (checkpoints/step-*.safetensors); train "
            "with train.keep_checkpoints: N to keep the last N evaluations' weights"
        )
    if last is not None and not 0 < last <= len(kept):
        raise UserError(f"--last {last}: {run_dir} keeps {len(kept)} checkpoints")
    return kept[-last:] if last is not None else kept


def write_averaged(run_dir: Path, paths: Sequence[Path], output_dir: Path) -> dict:
    """A new model directory: run_dir's recipe and tokenizers, the mean of `paths`.

    Everything is checked first (each file's shapes against run_dir's recipe, from the
    headers); the directory is then written under a temporary name beside `output_dir`
    and renamed into place when complete, so a failure (a full disk, say) leaves no half
    of one behind.
    """
    check_model_dir(run_dir, None)
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise UserError(
            f"--output-dir {output_dir}: exists and is not empty; name a new directory "
            "(nothing is overwritten)"
        )
    check_fit(run_dir, paths)
    tensors = average_checkpoints(paths)
    record = {"run_dir": str(run_dir), "checkpoints": [str(p) for p in paths]}
    _write_directory(run_dir, tensors, record, output_dir)
    return record


def check_fit(run_dir: Path, paths: Sequence[Path]) -> None:
    """Refuse, naming it, a weights file that does not fit the model run_dir's recipe and
    tokenizers describe (another run's, say): the averaged directory could not be loaded."""
    recipe = load_recipe(run_dir / checkpoint.RECIPE)
    src_tok, tgt_tok = load_tokenizers(recipe.tokenizer, run_dir)
    with torch.device("meta"):  # shapes only, no memory
        model = build_model(recipe.model, src_tok.vocab_size, tgt_tok.vocab_size)
    for path in paths:
        problem = checkpoint.misfit(path, model)
        if problem:
            raise UserError(
                f"{path}: does not fit the model of {run_dir / checkpoint.RECIPE} ({problem}); "
                f"average checkpoints that {run_dir}'s training saved"
            )


def _write_directory(run_dir: Path, tensors: dict, record: dict, output_dir: Path) -> None:
    """run_dir's recipe and tokenizers, `tensors` and `record`, as the new `output_dir`."""

    def kept() -> str:
        return (
            f"{run_dir} is unchanged and nothing was written to {output_dir}: free some space "
            "and run nmt average again"
        )

    with files.refuse_disk_full(output_dir, kept):  # what the labels below do not cover
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(building, 0o777 & ~umask)  # mkdtemp's is 0700: make it like any other
            for name in (checkpoint.RECIPE, *TOKENIZER_FILES):
                if (run_dir / name).is_file():
                    with files.refuse_disk_full(output_dir / name, kept):
                        files.write_bytes(building / name, (run_dir / name).read_bytes())
            with files.refuse_disk_full(output_dir / checkpoint.WEIGHTS, kept):
                checkpoint.save_tensor_file(building / checkpoint.WEIGHTS, tensors)
            with files.refuse_disk_full(output_dir / RECORD, kept):
                files.write_json(building / RECORD, record)
            files.replace_durably(building, output_dir)  # over nothing or an empty directory
        finally:
            shutil.rmtree(building, ignore_errors=True)  # gone once renamed, unless it failed
