"""`nmt export`: model directories → an exported directory that nmt_runtime translates with.

    export_model([Path("runs/quickstart")], Path("exported/quickstart"), "int8")

The directory (nmt_runtime.manifest describes its files) is built under a temporary name
beside `output_dir` and renamed into place only when every graph has been traced,
checked and compared with PyTorch: a failure leaves nothing half-written, and an
existing directory with files in it is never written into. Several model directories
export as one ensemble: one set of tokenizer files and decode defaults (the first
model's, as `nmt translate` takes them) and each member's graphs in a folder of its own.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from nmt import __version__
from nmt.data.tokenizer import TargetSubset, tokenizer_files
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.export import onnx_files
from nmt.export.graphs import SOURCE, STATE, Names
from nmt.model.seq2seq import Seq2Seq
from nmt.recipe.load import load_recipe
from nmt.recipe.schema import Recipe
from nmt.store import checkpoint, files
from nmt.store.exported import INSTALL

ExportPrecision = Literal["fp32", "int8"]
MIN_OPSET, MAX_OPSET = 14, 20  # the TorchScript exporter writes up to 20
DEFAULT_OPSET = 17
MAX_GRAPH_BYTES = 2**31 - 2**20  # protobuf's 2 GB limit on one .onnx file, with room


def export_model(
    run_dirs: Sequence[Path],
    output_dir: Path,
    precision: ExportPrecision = "fp32",
    opset: int = DEFAULT_OPSET,
) -> dict[str, Any]:
    """Export one model directory, or several as an ensemble, into `output_dir`; return the
    manifest written there. Every refusal is a UserError of one line."""
    manifest_module = _runtime_manifest()
    check_request(run_dirs, output_dir, precision, opset, manifest_module)
    translator = Translator.load(list(run_dirs), "cpu", "fp32")
    if translator.recipe.decode.coverage_penalty:  # nmt_runtime's search has none
        raise UserError(
            f"{run_dirs[0]}: its recipe sets decode.coverage_penalty, which nmt_runtime does "
            "not have; set decode.coverage_penalty: 0 in its recipe.yaml to export it"
        )
    if translator.recipe.decode.replace_unk:  # nmt_runtime keeps no attention to copy by
        raise UserError(
            f"{run_dirs[0]}: its recipe sets decode.replace_unk, which nmt_runtime does not "
            "have; set decode.replace_unk: false in its recipe.yaml to export it"
        )
    members = translator.model.members if translator.size > 1 else [translator.model]
    for run_dir, model in zip(run_dirs, members, strict=True):
        _check_size(run_dir, model)
    recipes = [load_recipe(Path(d) / checkpoint.RECIPE) for d in run_dirs]
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(building, 0o777 & ~umask)  # mkdtemp's is 0700: make it like any other
        models = []
        for i, (run_dir, model, recipe) in enumerate(zip(run_dirs, members, recipes, strict=True)):
            folder = "" if len(members) == 1 else f"member{i + 1}/"
            (building / folder).mkdir(exist_ok=True)
            models.append(_export_member(model, recipe, Path(run_dir), building, folder, opset))
            if precision == "int8":
                for name in (onnx_files.ENCODER, onnx_files.STEP):
                    onnx_files.quantize(building / folder / name)
        _write_tokenizers(translator, building)
        decode = dataclasses.asdict(translator.recipe.decode)
        for name in ("coverage_penalty", "replace_unk", "unk_dictionary"):
            del decode[name]  # off, checked above (and by the recipe rules): nmt's own
        files.write_json(building / manifest_module.DECODE, decode)
        manifest = _manifest(translator, models, building, precision, opset, manifest_module)
        files.write_json(building / manifest_module.MANIFEST, manifest)
        files.replace_durably(building, output_dir)  # over nothing or an empty directory
    finally:
        shutil.rmtree(building, ignore_errors=True)  # gone once renamed, unless it failed
    return manifest


def _runtime_manifest() -> Any:
    """nmt_runtime.manifest, and the export's own requirements, or one line naming the fix."""
    for module in ("onnx", "onnxruntime", "nmt_runtime.manifest"):
        try:
            importlib.import_module(module)
        except ImportError:
            raise UserError(
                f"nmt export needs the package {module.split('.')[0]}, which is not "
                f"installed: {INSTALL}"
            ) from None
    return importlib.import_module("nmt_runtime.manifest")


def check_request(
    run_dirs: Sequence[Path],
    output_dir: Path,
    precision: str,
    opset: int,
    manifest_module: Any,
) -> None:
    """Refuse, before any model is read, what cannot be exported as asked."""
    if not run_dirs:
        raise UserError("no model directory given: nmt export RUN_DIR --output-dir DIR")
    if precision not in ("fp32", "int8"):
        raise UserError(f"--precision {precision}: give fp32 or int8")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UserError(
            f"--opset {opset}: the exporter writes opsets {MIN_OPSET} to {MAX_OPSET} "
            f"(default {DEFAULT_OPSET})"
        )
    for run_dir in run_dirs:
        if manifest_module.is_exported(Path(run_dir)):
            raise UserError(
                f"{run_dir} is already an exported directory; export the model directory "
                "that nmt train wrote"
            )
    if output_dir.exists() and (not output_dir.is_dir() or any(output_dir.iterdir())):
        raise UserError(
            f"--output-dir {output_dir}: exists and is not empty; name a new directory "
            "(nothing is written into one that holds files)"
        )
    for run_dir in run_dirs:
        if output_dir.resolve() == Path(run_dir).resolve():
            raise UserError(f"--output-dir {output_dir} is the model directory; name a new one")


def _check_size(run_dir: Path, model: Seq2Seq) -> None:
    """One graph file holds at most 2 GB (protobuf's limit): refuse a bigger model."""
    for part in (model.encoder, model.decoder):
        size = sum(p.numel() * p.element_size() for p in part.parameters())
        if size > MAX_GRAPH_BYTES:
            raise UserError(
                f"{run_dir}: its {type(part).__name__.lower()} has {size / 2**30:.1f} GB of "
                "weights, and an ONNX file holds at most 2 GB; export a smaller model"
            )


def _export_member(
    model: Seq2Seq, recipe: Recipe, run_dir: Path, building: Path, folder: str, opset: int
) -> dict[str, Any]:
    """Trace one model's graphs into building/folder; its entry in the manifest."""
    names: Names = onnx_files.trace(model, building / folder, opset)
    axes = {name: STATE[name][0] for name in names.state}
    axes.update({name: SOURCE[name][0] for name in names.source})
    return {
        "run_dir": run_dir.name,
        "model": dataclasses.asdict(recipe.model),
        "encoder": {"file": folder + onnx_files.ENCODER},
        "decoder_step": {"file": folder + onnx_files.STEP},
        "state": {f"{name}_out": name for name in names.state},
        "source": list(names.source),
        "axes": axes,
    }


def _write_tokenizers(translator: Translator, building: Path) -> None:
    found = tokenizer_files(
        translator.recipe.tokenizer, translator.src_tokenizer, translator.tgt_tokenizer
    )
    for name, data in found.items():
        files.write_bytes(building / name, data)


def _manifest(
    translator: Translator,
    models: list[dict[str, Any]],
    building: Path,
    precision: str,
    opset: int,
    manifest_module: Any,
) -> dict[str, Any]:
    from nmt.data.tokenizer import file_names

    recipe = translator.recipe
    src_name, tgt_name = file_names(recipe.tokenizer)
    subset = isinstance(translator.tgt_tokenizer, TargetSubset)
    for model in models:  # the graphs' signatures, read back from the written files
        for graph in ("encoder", "decoder_step"):
            model[graph].update(onnx_files.signature(building / model[graph]["file"]))
    listed = sorted(p.relative_to(building).as_posix() for p in building.rglob("*") if p.is_file())
    return {
        "kind": manifest_module.KIND,
        "format": manifest_module.FORMAT,
        "precision": precision,
        "opset": opset,
        "versions": _versions(),
        "languages": {"source": recipe.data.source_lang, "target": recipe.data.target_lang},
        "tokenizer": {
            "type": recipe.tokenizer.type,
            "source": src_name,
            "target": tgt_name,
            "target_subset": TargetSubset.file_name if subset else None,
        },
        "vocabulary": {
            "source": translator.src_tokenizer.vocab_size,
            "target": translator.tgt_tokenizer.vocab_size,
        },
        "decode": manifest_module.DECODE,
        "models": models,
        "files": {name: manifest_module.sha256(building / name) for name in listed},
    }


def _versions() -> dict[str, str]:
    found = {"nmt": __version__, "torch": torch.__version__}
    for package in ("onnx", "onnxruntime"):
        found[package] = importlib.metadata.version(package)
    return found
