"""`nmt inspect MODEL_DIR`: what a model directory holds, read without loading any weights.

The settings come from its recipe.yaml (model section, tokenizer, and the data section:
what it was trained on), the vocabulary sizes from its tokenizer files (the output
layer's is the restricted target vocabulary's when there is one), each tensor's name and
shape and the checkpoint format from model.safetensors' header (nmt.store.checkpoint),
and the scores from results.json when training got that far. Parameters are counted from
the saved tensors, per module (the first two parts of a name: encoder.rnn,
decoder.attention, ...); a tied weight is saved, so counted, once.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from nmt.data.tokenizer import TargetSubset, load_tokenizers
from nmt.errors import UserError
from nmt.recipe.load import load_recipe, recipe_to_dict
from nmt.store import checkpoint, layout

SCORES = ("bleu", "chrf", "ter", "valid_bleu", "best_step", "steps", "epochs", "stopped_by")


@dataclass(frozen=True)
class Inspection:
    directory: str
    model: dict[str, Any]  # the recipe's model section, as resolved
    vocabulary: dict[str, Any]  # sizes: source, target (output layer), target tokenizer
    tokenizer: dict[str, Any]  # the recipe's tokenizer section
    format: str  # model.safetensors' nmt_format
    tensors: dict[str, list[int]]  # name → shape
    parameters: int
    modules: dict[str, int]  # encoder.rnn → its parameter count
    data: dict[str, Any]  # the recipe's data section: what it was trained on
    resumable: bool  # checkpoints/last is there (nmt train --resume continues it)
    results: dict[str, Any] | None  # results.json, when the run finished

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The inspection as text, a section per kind of fact."""
        m, v = self.model, self.vocabulary
        layers = f"{m['encoder_layers']} encoder + {m['decoder_layers']} decoder layers"
        direction = "bidirectional" if m["bidirectional"] else "unidirectional"
        out = [
            f"{self.directory}: nmt model, checkpoint format {self.format}"
            + (", resumable (checkpoints/last)" if self.resumable else ""),
            f"model: {m['cell']}, {layers}, {direction} encoder, attention {m['attention']}, "
            f"bridge {m['bridge']}",
            "  " + ", ".join(f"{k} {value}" for k, value in m.items() if k not in _SHOWN),
            f"vocabulary: {v['source']} source, {v['target']} target (output layer; target "
            f"tokenizer {v['target_tokenizer']})",
            "tokenizer: " + ", ".join(f"{k} {value}" for k, value in self.tokenizer.items()),
            f"parameters: {self.parameters:,}",
            *(f"  {name:<24} {count:>12,}" for name, count in self.modules.items()),
            "tensors:",
            *(f"  {name:<40} {tuple(shape)}" for name, shape in self.tensors.items()),
            "trained on: " + json.dumps(self.data, ensure_ascii=False),
        ]
        if self.results is None:
            return [*out, f"results: none ({layout.RESULTS} is written when training ends)"]
        shown = {k: self.results[k] for k in SCORES if k in self.results}
        scores = ", ".join(f"{k} {value}" for k, value in shown.items())
        signatures = self.results.get("signature") or {}
        return [*out, f"results: {scores}", *(f"  {k}: {s}" for k, s in signatures.items())]


_SHOWN = ("cell", "encoder_layers", "decoder_layers", "bidirectional", "attention", "bridge")


def inspect_model(path: Path) -> Inspection:
    """Everything `nmt inspect` shows about the model directory at `path`; a path that is
    not one, or a damaged file in it, is one UserError naming the file."""
    if path.is_dir() and (path / layout.DATASET_MANIFEST).is_file():
        raise UserError(
            f"{path} is a prepared dataset, not a model directory; nmt inspect wants a "
            f"directory that nmt train wrote (nmt vocab {path} lists the dataset's vocabulary)"
        )
    recipe = load_recipe(layout.check_model_dir(path, None))
    src, tgt = load_tokenizers(recipe.tokenizer, path)
    shapes = checkpoint.weight_shapes(path / layout.WEIGHTS)
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    modules: dict[str, int] = {}
    for name, count in sizes.items():
        module = ".".join(name.split(".")[:2])
        modules[module] = modules.get(module, 0) + count
    inner = tgt.inner if isinstance(tgt, TargetSubset) else tgt
    settings = recipe_to_dict(recipe)
    return Inspection(
        directory=str(path),
        model=settings["model"],
        vocabulary={
            "source": src.vocab_size,
            "target": tgt.vocab_size,
            "target_tokenizer": inner.vocab_size,
        },
        tokenizer=_tokenizer(settings["tokenizer"]),
        format=checkpoint.FORMAT,
        tensors={name: list(shape) for name, shape in sorted(shapes.items())},
        parameters=sum(sizes.values()),
        modules=dict(sorted(modules.items())),
        data={k: v for k, v in settings["data"].items() if v not in (None, {})},
        resumable=checkpoint.has_last(path),
        results=_results(path / layout.RESULTS),
    )


def _tokenizer(section: dict[str, Any]) -> dict[str, Any]:
    """The tokenizer section's keys that are set, without the sizes it did not use (a
    tokenizer given as a file has the file's size)."""
    given = any(section.get(k) for k in ("model", "target_model", "vocab", "target_vocab"))
    unused = ("vocab_size", "target_vocab_size") if given else ()
    return {k: v for k, v in section.items() if v is not None and k not in unused}


def _results(file: Path) -> dict[str, Any] | None:
    if not file.is_file():
        return None
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{file}: not readable JSON ({e}); train again or remove it") from None
    if not isinstance(results, dict):
        raise UserError(f"{file}: not a JSON object; train again or remove it")
    return results
