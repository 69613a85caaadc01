"""Weights and resumable training state: safetensors, durable writes, checked loads.

    model.safetensors                 weights only (loading them runs no code)
    checkpoints/last/model.safetensors + optimizer.pt + trainer.json     to resume

Every file is written under a temporary name, fsynced and renamed into place, so a crash
or a power loss leaves either the old file or the new one, never half of one. Loading
checks the file's format version and every tensor's name and shape against the model
before any weight is read; `check_shapes` does it from the safetensors header alone, so
a recipe that describes a huge model is refused before that model is built.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from nmt.errors import UserError, one_line
from nmt.store.files import fsync_dir, replace_durably, write_bytes

# The names are nmt.store.layout's; RECIPE, WEIGHTS, KEPT, LAST, step_file and kept_step are
# imported from here by nmt.training until it reads them from nmt.store.layout.
from nmt.store.layout import (  # noqa: F401
    AVERAGE,
    KEPT,
    LAST,
    LAST_OLD,
    LAST_TMP,
    OPTIMIZER,
    RECIPE,
    STEP_FILES,
    TRAINER,
    WEIGHTS,
    kept_step,
    step_file,
)

# bump when a model directory written before can no longer be read, or would translate
# differently. 2: the LSTM bridge no longer squashes the cell state (nmt.model.decoder), so
# the weights of format 1 would start the decoder from other states than they were trained
# with
FORMAT = "2"
DAMAGED = "the checkpoint is damaged; --overwrite starts the training over"


def _named(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Parameters (a tied one once, under its first name) and buffers."""
    named = dict(model.named_parameters())
    named.update(model.named_buffers())
    return named


def _tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """What is saved: CPU copies, because cuDNN packs an RNN's weights into one buffer and
    safetensors refuses tensors that share storage."""
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in _named(model).items()}


def _save_tensors(path: Path, model: torch.nn.Module) -> None:
    save_tensor_file(path, _tensors(model))


def save_tensor_file(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Named CPU tensors → a safetensors file with the format version, durably
    (nmt.store.files.write_bytes: a temporary file of its own, fsynced, renamed into place)."""
    write_bytes(path, save(tensors, metadata={"nmt_format": FORMAT}))


def save_weights(path: Path, model: torch.nn.Module) -> None:
    """safetensors file, tied weights stored once, with the format version inside."""
    _save_tensors(path, model)


def weight_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """The tensors' shapes, read from the header only, once its format version is checked."""
    if not path.is_file():
        raise UserError(f"{path}: missing; is {path.parent} a model directory from nmt train?")
    try:
        with safe_open(str(path), framework="pt") as f:
            version = (f.metadata() or {}).get("nmt_format")
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path}: not a readable safetensors file ({e})") from None
    if version != FORMAT:
        raise UserError(
            f"{path}: written by another version of nmt (format {version}, this one reads "
            f"{FORMAT}); translate with that version or train the model again"
        )
    return shapes


def misfit(path: Path, model: torch.nn.Module) -> str | None:
    """How the weights in `path` (read from its header) do not fit `model` (which may live
    on the meta device): the names missing, unexpected and of other shapes; None if they fit."""
    shapes = weight_shapes(path)
    expected = {k: tuple(v.shape) for k, v in _named(model).items()}
    missing, unexpected = expected.keys() - shapes.keys(), shapes.keys() - expected.keys()
    differ = [k for k in expected if k in shapes and shapes[k] != expected[k]]
    if missing or unexpected or differ:
        return (
            f"missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}, other "
            f"shapes {differ[:3]}"
        )
    return None


def check_shapes(path: Path, model: torch.nn.Module) -> None:
    """Refuse weights that do not fit `model` (which may live on the meta device)."""
    problem = misfit(path, model)
    if problem:
        raise UserError(
            f"{path}: the weights do not fit the model its recipe.yaml describes "
            f"({problem}); was recipe.yaml edited after training?"
        )


def load_weights(path: Path, model: torch.nn.Module, device: torch.device | str = "cpu") -> None:
    check_shapes(path, model)
    try:
        tensors = load_file(str(path), device=str(device))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path}: not a readable safetensors file ({e})") from None
    model.load_state_dict(tensors, strict=False)


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """A weights file of this nmt format, as named CPU tensors."""
    weight_shapes(path)  # exists, readable, this format
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{path}: not a readable safetensors file ({e})") from None


def kept_checkpoints(run_dir: Path) -> list[Path]:
    """The kept evaluation weights of a model directory, oldest step first."""
    found = [(kept_step(p), p) for p in (run_dir / KEPT).glob(STEP_FILES)]
    return [path for _, path in sorted(f for f in found if f[0] is not None)]


def has_last(run_dir: Path) -> bool:
    """Whether a resumable checkpoint was saved (or survives in last.old, see save_last)."""
    return any((run_dir / d / TRAINER).is_file() for d in (LAST, LAST_OLD))


def rng_state() -> dict[str, Any]:
    """This process's torch random state: the CPU generator's and every CUDA device's."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_last(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    trainer_state: dict[str, Any],
    average: torch.nn.Module | None = None,
    rng: list[dict[str, Any]] | None = None,
) -> None:
    """Everything needed to continue training exactly where it stopped; `average`: the
    moving average of the weights (train.ema_decay), saved beside them; `rng`: every
    rank's `rng_state()` in a distributed run (default: this process's alone).

    Written into last.tmp, then last → last.old, last.tmp → last, last.old removed: at any
    moment one complete checkpoint exists (load_last falls back to last.old).
    """
    last, tmp, old = run_dir / LAST, run_dir / LAST_TMP, run_dir / LAST_OLD
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _save_tensors(tmp / WEIGHTS, model)
    if average is not None:
        _save_tensors(tmp / AVERAGE, average)
    rng = rng if rng is not None else [rng_state()]
    saved = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng}
    with (tmp / OPTIMIZER).open("wb") as f:
        torch.save(saved, f)
        f.flush()
        os.fsync(f.fileno())
    with (tmp / TRAINER).open("w") as f:
        f.write(json.dumps(trainer_state, indent=2) + "\n")
        f.flush()
        os.fsync(f.fileno())
    fsync_dir(tmp)
    if last.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(last, old)
    replace_durably(tmp, last)
    shutil.rmtree(old, ignore_errors=True)


def trainer_file(run_dir: Path) -> Path:
    """The trainer.json a resume reads: checkpoints/last's, or last.old's after a crash
    between the two renames of save_last."""
    last, old = run_dir / LAST / TRAINER, run_dir / LAST_OLD / TRAINER
    return old if not last.is_file() and old.is_file() else last


def read_trainer(run_dir: Path) -> dict[str, Any]:
    """The JSON object in `trainer_file(run_dir)` (nmt.training.state checks its fields)."""
    path = trainer_file(run_dir)
    if not path.is_file():
        raise UserError(f"{run_dir}: no checkpoints/last to resume from; train without --resume")
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot be read ({e}); {DAMAGED}") from None
    return state


def load_last(
    run_dir: Path,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    device: torch.device,
    average: torch.nn.Module | None = None,
    rank: int = 0,
) -> dict[str, Any]:
    """Restore model, optimizer, scheduler, random state (`rank`'s own, in a distributed
    run) and, if asked, the weight average; return the trainer state."""
    state = read_trainer(run_dir)  # first: it also says whether there is a checkpoint
    last = trainer_file(run_dir).parent
    load_weights(last / WEIGHTS, model, device)
    if average is not None:
        if not (last / AVERAGE).is_file():
            raise UserError(
                f"{last}: has no {AVERAGE} (this run was saved without train.ema_decay); "
                "remove train.ema_decay to resume it, or --overwrite to start over"
            )
        load_weights(last / AVERAGE, average, device)
    try:
        saved = torch.load(last / OPTIMIZER, map_location=device, weights_only=True)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        states = saved["rng"] if isinstance(saved["rng"], list) else [saved["rng"]]
        set_rng_state(states[rank] if rank < len(states) else states[0])  # (other sizes: refused)
    except Exception as e:  # unpickling, a missing key, a state of another shape
        reason = one_line(e)[:120] or type(e).__name__
        raise UserError(f"{last / OPTIMIZER}: cannot be read ({reason}); {DAMAGED}") from None
    return state
