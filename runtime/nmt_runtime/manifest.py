"""manifest.json: what an exported directory holds, written by `nmt export`, read here.

    manifest.json        this file: versions, opset, graphs, names and shapes, hashes
    encoder.onnx         source ids and lengths → the decoder's initial state
    decoder_step.onnx    one decoder step: previous token and state → log-probabilities
    decode.json          the decode defaults (the recipe's decode section)
    spm.model | vocab.txt, or src.* and tgt.* ones; target_vocab.txt: the tokenizer files

An ensemble's members each have their two graphs in a folder of their own (member1/,
member2/, ...) beside one set of tokenizer files. Every file but the manifest is listed
with its sha256 under "files", and loading checks them, so a damaged copy is refused by
name instead of translating wrongly. The graphs' tensor names are the contract described
in nmt/export/graphs.py; "state" says which step output feeds which input next step.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmt_runtime.errors import UserError

MANIFEST = "manifest.json"
DECODE = "decode.json"
FORMAT = 1  # bump when a directory written before can no longer be read
KIND = "nmt-onnx-export"
FIX = "export it again with nmt export"


@dataclass(frozen=True)
class Graphs:
    """One model's two graphs: their files and the named tensors they take and give."""

    encoder: Path
    decoder_step: Path
    state: dict[str, str]  # step output → the step input it becomes next step
    axes: dict[str, int]  # step input → the axis that counts hypotheses (rows)
    source: tuple[str, ...]  # step inputs fixed per sentence (memory, keys, mask)
    attention: bool  # the step gives attention weights over the source
    top_k: bool = False  # the step gives top_log_probs, top_ids, eos_log_probs (top_k input)


@dataclass(frozen=True)
class Manifest:
    directory: Path
    precision: str  # fp32 | int8
    tokenizer: dict[str, Any]  # type, source, target, target_subset (file names or None)
    languages: dict[str, str]  # source, target
    models: tuple[Graphs, ...]
    raw: dict[str, Any]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_exported(directory: Path) -> bool:
    """Whether `directory` looks like what `nmt export` writes (it holds a manifest.json)."""
    return (Path(directory) / MANIFEST).is_file()


def read(directory: str | Path, verify: bool = True) -> Manifest:
    """The manifest of an exported directory, checked: its format, and with `verify` every
    listed file's sha256. Any problem is a UserError naming the directory or file."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise UserError(f"{directory}: no such directory; give a directory that nmt export wrote")
    if not path.is_file():
        raise UserError(
            f"{directory}: not an exported model directory (no {MANIFEST}); "
            "make one with nmt export RUN_DIR --output-dir DIR"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("kind") != KIND:
            raise ValueError
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        raise UserError(f"{path}: not a manifest that nmt export wrote; {FIX}") from None
    if raw.get("format") != FORMAT:
        raise UserError(
            f"{path}: format {raw.get('format')!r}, this runtime reads format {FORMAT}; "
            f"{FIX} (or install the runtime that matches it)"
        )
    if verify:
        check_files(directory, raw["files"])
    return Manifest(
        directory=directory,
        precision=raw["precision"],
        tokenizer=raw["tokenizer"],
        languages=raw["languages"],
        models=tuple(_graphs(directory, m) for m in raw["models"]),
        raw=raw,
    )


def check_files(directory: Path, files: dict[str, str]) -> None:
    """Every listed file present, with the listed sha256."""
    for name, digest in files.items():
        path = directory / name
        if not path.is_file():
            raise UserError(f"{path}: missing from the exported directory; {FIX}")
        if sha256(path) != digest:
            raise UserError(f"{path}: damaged (its sha256 differs from {MANIFEST}'s); {FIX}")


def _graphs(directory: Path, model: dict[str, Any]) -> Graphs:
    step = model["decoder_step"]
    return Graphs(
        encoder=directory / model["encoder"]["file"],
        decoder_step=directory / step["file"],
        state=dict(model["state"]),
        axes=dict(model["axes"]),
        source=tuple(model["source"]),
        attention=any(o["name"] == "attention" for o in step["outputs"]),
        top_k=any(o["name"] == "top_ids" for o in step["outputs"]),
    )
