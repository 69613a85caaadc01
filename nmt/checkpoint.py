"""Model-directory I/O: weights in safetensors, atomic writes, the resumable last state.

    runs/x/
      recipe.yaml            the resolved recipe, exactly as trained
      model.safetensors      best weights (loading them runs no code)
      spm.model | ...        tokenizers (see nmt.tokenizer.file_names)
      checkpoints/last/      model.safetensors + optimizer.pt + trainer.json, to resume
      metrics.jsonl          one JSON object per evaluation
      results.json           test-set scores with sacrebleu signatures

Every file is written under a temporary name and renamed into place, so a crash leaves
either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from nmt.config import Recipe, load_recipe, recipe_to_dict
from nmt.errors import UserError
from nmt.files import replace_durably

FORMAT = "1"  # bump when a model directory written before can no longer be read
RECIPE, WEIGHTS, METRICS, RESULTS = (
    "recipe.yaml",
    "model.safetensors",
    "metrics.jsonl",
    "results.json",
)
LAST = Path("checkpoints") / "last"


def _tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters (a tied one once, under its first name) and buffers, as CPU copies.

    Copies, because cuDNN packs an RNN's weights into one buffer and safetensors refuses
    tensors that share storage.
    """
    named = dict(model.named_parameters())
    named.update(model.named_buffers())
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in named.items()}


def _save_tensors(path: Path, model: torch.nn.Module) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    save_file(_tensors(model), str(tmp), metadata={"nmt_format": FORMAT})
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # safetensors creates 0600; make it like every other file
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    replace_durably(tmp, path)


def save_weights(path: Path, model: torch.nn.Module) -> None:
    """safetensors file, tied weights stored once, with the format version inside."""
    _save_tensors(path, model)


def load_weights(path: Path, model: torch.nn.Module, device: torch.device | str = "cpu") -> None:
    if not path.is_file():
        raise UserError(f"{path}: missing; is {path.parent} a model directory from nmt train?")
    try:
        with safe_open(str(path), framework="pt") as f:
            version = (f.metadata() or {}).get("nmt_format")
        tensors = load_file(str(path), device=str(device))
    except SafetensorError as e:
        raise UserError(f"{path}: not a readable safetensors file ({e})") from None
    if version != FORMAT:
        raise UserError(
            f"{path}: written by another version of nmt (format {version}, this one reads "
            f"{FORMAT}); translate with that version or train the model again"
        )
    expected = _tensors(model).keys()
    missing, unexpected = expected - tensors.keys(), tensors.keys() - expected
    shapes_differ = [
        k for k, v in model.state_dict().items() if k in tensors and tensors[k].shape != v.shape
    ]
    if missing or unexpected or shapes_differ:
        raise UserError(
            f"{path}: the weights do not fit the model its recipe.yaml describes "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}, other "
            f"shapes {shapes_differ[:3]}); was recipe.yaml edited after training?"
        )
    model.load_state_dict(tensors, strict=False)


# What a training run writes into its directory; --overwrite removes these and nothing else.
RUN_FILES = frozenset(
    {
        RECIPE,
        WEIGHTS,
        METRICS,
        RESULTS,
        "test.hyp",
        "checkpoints",
        "spm.model",
        "src.spm.model",
        "tgt.spm.model",
        "vocab.txt",
        "src.vocab.txt",
        "tgt.vocab.txt",
    }
)
# Recipe keys that may differ when a run is resumed: limits, logging, decoding.
RESUMABLE = (
    "output_dir",
    "train.max_epochs",
    "train.max_steps",
    "train.max_minutes",
    "train.eval_every",
    "train.patience",
    "train.log_every",
    "train.save_every",
    "train.skip_nonfinite",
    "decode.",
)


def check_run_dir(recipe: Recipe, resume: bool, overwrite: bool) -> Path:
    """The directory training will write, checked before anything is read or written.

    Refuses whatever could lose something the user has: an existing directory without
    --resume/--overwrite, --overwrite of a directory holding files nmt did not write, and
    --resume with settings that would not continue the same training.
    """
    run_dir = Path(recipe.output_dir or "runs/model")
    if resume and overwrite:
        raise UserError("--resume continues a model directory, --overwrite replaces it: choose one")
    for path in (run_dir, *run_dir.parents):
        if path.exists() and not path.is_dir():
            raise UserError(f"{path} is a file, not a directory: give --output-dir a directory")
    if resume:
        if not (run_dir / RECIPE).is_file():
            raise UserError(f"{run_dir}: nothing to resume (no {RECIPE}); train without --resume")
        changed = _changed_keys(load_recipe(run_dir / RECIPE), recipe)
        if changed:
            raise UserError(
                f"{run_dir} was trained with other values of {', '.join(changed[:6])}; "
                "--resume may change only train.max_epochs/max_steps/max_minutes, "
                "eval_every, patience, log_every and decode.*"
            )
    elif run_dir.is_dir() and any(run_dir.iterdir()):
        if not overwrite:
            raise UserError(
                f"{run_dir} already exists and is not empty; pass --resume to continue its "
                "training, --overwrite to replace it, or --output-dir to train elsewhere"
            )
        foreign = sorted(p.name for p in run_dir.iterdir() if not _written_by_nmt(p.name))
        if foreign:
            raise UserError(
                f"{run_dir} holds files nmt did not write ({', '.join(foreign[:4])}); "
                "--overwrite only replaces model directories: choose another --output-dir"
            )
    return run_dir


def start_run_dir(run_dir: Path, overwrite: bool) -> None:
    """Create the directory; with --overwrite, first remove what an earlier run wrote."""
    if overwrite and run_dir.is_dir():
        for path in run_dir.iterdir():
            if _written_by_nmt(path.name):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"{run_dir}: cannot create the model directory ({e.strerror})") from None


def _written_by_nmt(name: str) -> bool:
    return name in RUN_FILES or (name.startswith(".") and name.endswith(".tmp"))


def _changed_keys(saved: Recipe, new: Recipe) -> list[str]:
    """Dotted recipe keys whose values differ, apart from those a resume may change."""
    a, b = _flatten(recipe_to_dict(saved)), _flatten(recipe_to_dict(new))
    return [
        k
        for k in sorted(a.keys() | b.keys())
        if a.get(k) != b.get(k) and not k.startswith(RESUMABLE)
    ]


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def save_last(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    trainer_state: dict[str, Any],
) -> None:
    """Everything needed to continue training exactly where it stopped."""
    last = run_dir / LAST
    tmp = last.with_name("last.tmp")
    old = last.with_name("last.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _save_tensors(tmp / WEIGHTS, model)
    rng = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(
        {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng},
        tmp / "optimizer.pt",
    )
    (tmp / "trainer.json").write_text(json.dumps(trainer_state, indent=2) + "\n")
    if last.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(last, old)
    os.replace(tmp, last)
    shutil.rmtree(old, ignore_errors=True)


def load_last(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    device: torch.device,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler and random state; return the trainer state."""
    last = run_dir / LAST
    if (
        not (last / "trainer.json").is_file()
        and (last.with_name("last.old") / "trainer.json").is_file()
    ):
        last = last.with_name("last.old")  # a crash between the two renames of save_last
    if not (last / "trainer.json").is_file():
        raise UserError(f"{run_dir}: no checkpoints/last to resume from; train without --resume")
    load_weights(last / WEIGHTS, model, device)
    saved = torch.load(last / "optimizer.pt", map_location=device, weights_only=True)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["rng"]["torch"].cpu())
    if "cuda" in saved["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in saved["rng"]["cuda"]])
    return json.loads((last / "trainer.json").read_text())
