"""The model directory of a training run: checked, locked, and written only through here.

    runs/x/
      recipe.yaml            the resolved recipe, exactly as trained
      model.safetensors      best weights (loading them runs no code)
      spm.model | ...        tokenizers (see nmt.data.tokenizer.tokenizer_files)
      checkpoints/last/      weights + optimizer + trainer state, to resume (nmt.store.checkpoint)
      metrics.jsonl          one JSON object per evaluation
      results.json, test.hyp test-set scores and the translations they score

`RunDir.open` checks the directory before anything is read or written and refuses what
could lose something the user has; `start` creates it only once the data is ready. An
exclusive lock (`flock` on the directory itself, so it writes nothing) is held for the
whole run: a second training into the same directory is refused, not interleaved.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nmt.errors import UserError
from nmt.recipe.load import load_recipe, recipe_to_dict, recipe_to_yaml
from nmt.recipe.schema import Recipe
from nmt.store import checkpoint, files
from nmt.store.layout import (  # RUN_FILES: what --overwrite removes, and nothing else
    METRICS,
    RECIPE,
    RESULTS,
    RUN_FILES,
    TEST_HYP,
    WEIGHTS,
)
from nmt.training.state import TrainerState, checked_state

try:
    import fcntl
except ImportError:  # Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]

# Recipe keys that may differ when a run is resumed: limits, logging, saving, decoding.
RESUMABLE = (
    "output_dir",
    "data.prepared",  # where the same prepared data lies (checked against the recipe)
    "train.max_epochs",
    "train.max_steps",
    "train.max_minutes",
    "train.eval_every",
    "train.patience",
    "train.log_every",
    "train.save_every",
    "train.keep_checkpoints",
    "train.skip_nonfinite",
    "train.tensorboard",  # watching changes nothing in the training
    "decode.",
)
START_OVER = "--overwrite starts it over"


def resumable_keys() -> str:
    """RESUMABLE as a message shows it: `decode.` (a whole section) as `decode.*`."""
    return ", ".join(f"{key}*" if key.endswith(".") else key for key in RESUMABLE)


@dataclass
class RunDir:
    """A model directory being trained into; a context manager that holds its lock."""

    path: Path
    resume: bool = False
    overwrite: bool = False
    saved_step: int | None = None  # the step of checkpoints/last, once there is one
    _lock: int | None = field(default=None, repr=False)

    # ------------------------------------------------------------ before any write

    @classmethod
    def open(cls, recipe: Recipe, resume: bool, overwrite: bool) -> RunDir:
        """The directory training will write, checked (and locked if it exists)."""
        run = cls(Path(recipe.output_dir or "runs/model"), resume, overwrite)
        if resume and overwrite:
            raise UserError(
                "--resume continues a model directory, --overwrite replaces it: choose one"
            )
        for path in (run.path, *run.path.parents):
            if path.exists() and not path.is_dir():
                raise UserError(f"{path} is a file, not a directory: give --output-dir a directory")
        if run.path.is_dir():
            run._take_lock()
        try:
            run._check(recipe)
        except BaseException:
            run.close()
            raise
        return run

    def __enter__(self) -> RunDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check(self, recipe: Recipe) -> None:
        path = self.path
        if self.resume:
            if not (path / RECIPE).is_file():
                raise UserError(f"{path}: nothing to resume (no {RECIPE}); train without --resume")
            if not checkpoint.has_last(path):
                raise UserError(
                    f"{path}: the run stopped before its first checkpoint, so there is nothing "
                    f"to resume; {START_OVER}"
                )
            changed = _changed_keys(load_recipe(path / RECIPE), recipe)
            if changed:
                raise UserError(
                    f"{path} was trained with other values of {', '.join(changed[:6])}; "
                    f"--resume may change only {resumable_keys()}"
                )
            _check_links(path)
            # what the resume would trim the directory to, and by: checked before any write
            state = checked_state(checkpoint.read_trainer(path), checkpoint.trainer_file(path))
            self.saved_step = state.step
            self._check_metrics()
        elif path.is_dir() and any(not _leftover(p.name) for p in path.iterdir()):
            if not self.overwrite:
                raise UserError(
                    f"{path} already exists and is not empty; pass --resume to continue its "
                    f"training, --overwrite to start it over, or --output-dir to train elsewhere"
                )
            foreign = sorted(p.name for p in path.iterdir() if not _written_by_nmt(p.name))
            if foreign:
                raise UserError(
                    f"{path} holds files nmt did not write ({', '.join(foreign[:4])}); "
                    "--overwrite only replaces model directories: choose another --output-dir"
                )

    def _check_metrics(self) -> None:
        """Refuse a metrics.jsonl with a damaged line (nmt.store.files.numbered_jsonl) or an
        entry without a step count: a resume keeps the entries up to its step."""
        for number, row in files.numbered_jsonl(self.path / METRICS):
            step = row.get("step")
            if isinstance(step, bool) or not isinstance(step, int) or step < 0:
                raise UserError(
                    f"{self.path / METRICS}: line {number} has no step count; {files.MEND}"
                )

    def _take_lock(self) -> None:
        if fcntl is None or self._lock is not None:
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise UserError(
                f"{self.path} is in use by another nmt train; wait for it to finish or "
                "choose another --output-dir"
            ) from None
        self._lock = fd

    def close(self) -> None:
        """Release the lock (the process ending releases it too)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # ------------------------------------------------------------ the run's writes

    def what_is_kept(self) -> str:
        """What a run that can write no more keeps, and how to go on from it."""
        if self.saved_step is None:
            return "no checkpoint was saved yet: free some space and train again with --overwrite"
        return (
            f"checkpoints/last (step {self.saved_step}) is kept: free some space and --resume "
            "continues from it"
        )

    def _writing(self, path: Path) -> contextlib.AbstractContextManager[None]:
        """Writes to `path`: a full disk ends the run with one line (files.refuse_disk_full)."""
        return files.refuse_disk_full(path, self.what_is_kept)

    def start(self, recipe: Recipe, tokenizers: dict[str, bytes]) -> None:
        """Create (or, with --overwrite, clear) the directory, then write the tokenizers.

        Runs once the data is ready and, on --resume, once the checkpoint has been read
        back: this is the first write. A directory created now is locked and checked
        again, in case another run filled it while this one read its data.
        """
        if not self.resume:
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                reason = f"cannot create the model directory ({e.strerror})"
                raise UserError(f"{self.path}: {reason}") from None
            if self._lock is None:  # locked before anything in it is removed: a run started
                self._take_lock()  # together with this one may have made it meanwhile
                self._check(recipe)
            if self.overwrite:
                for path in self.path.iterdir():
                    if _written_by_nmt(path.name):
                        shutil.rmtree(path) if path.is_dir() else path.unlink()
        for path in self.path.iterdir():  # a crashed run's temporary files (locked: none
            if _leftover(path.name) and path.is_file():  # is another live run's)
                path.unlink()
        if not self.resume:
            for name, data in tokenizers.items():
                with self._writing(self.path / name):
                    files.write_bytes(self.path / name, data)
        with self._writing(self.path / RECIPE):
            files.write_text(self.path / RECIPE, recipe_to_yaml(recipe))

    def resume_metrics(self, step: int) -> None:
        """Keep only the evaluations (metrics and kept weights) up to the resumed step: a
        run killed after writing an evaluation but before saving its checkpoint evaluates
        that step again. (`_check` has refused a damaged metrics.jsonl.)"""
        for path in checkpoint.kept_checkpoints(self.path):
            if (checkpoint.kept_step(path) or 0) > step:
                path.unlink()
        path = self.path / METRICS
        if path.is_file():  # rewritten even if nothing goes: read_jsonl drops a torn line
            kept = [row for row in files.read_jsonl(path) if row["step"] <= step]
            with self._writing(path):
                files.write_text(path, "".join(files.to_json(row) + "\n" for row in kept))

    def append_metrics(self, entry: dict[str, Any]) -> None:
        with self._writing(self.path / METRICS):
            files.append_jsonl(self.path / METRICS, entry)

    def keep_checkpoint(self, model: torch.nn.Module, step: int, keep: int) -> None:
        """Save the weights evaluated at `step` under checkpoints/ and delete all but the
        last `keep` such files (train.keep_checkpoints; `nmt average` reads them)."""
        path = self.path / checkpoint.KEPT / checkpoint.step_file(step)
        with self._writing(path):
            path.parent.mkdir(exist_ok=True)
            checkpoint.save_weights(path, model)
        for path in checkpoint.kept_checkpoints(self.path)[:-keep]:
            path.unlink()

    def save_best(self, model: torch.nn.Module) -> None:
        with self._writing(self.path / WEIGHTS):
            checkpoint.save_weights(self.path / WEIGHTS, model)

    def load_best(self, model: torch.nn.Module, device: torch.device) -> None:
        checkpoint.load_weights(self.path / WEIGHTS, model, device)

    def save_last(
        self, model, optimizer, schedules, trainer_state: dict[str, Any], average=None, rng=None
    ) -> None:
        """checkpoints/last (nmt.store.checkpoint.save_last); `schedules`: the run's
        nmt.training.schedules.Schedules, saved as the checkpoint's scheduler."""
        with self._writing(self.path / checkpoint.LAST):
            checkpoint.save_last(
                self.path, model, optimizer, schedules, trainer_state, average, rng
            )  # fmt: skip
        self.saved_step = trainer_state["step"]

    def load_last(
        self, model, optimizer, schedules, device: torch.device, average=None, rank: int = 0
    ) -> TrainerState:
        """Restore the checkpoint into these objects; its trainer state, checked."""
        saved = checkpoint.load_last(
            self.path, model, optimizer, schedules, device, average, rank
        )  # fmt: skip
        return checked_state(saved, checkpoint.trainer_file(self.path))

    def write_results(self, results: dict[str, Any], hypotheses: list[str] | None) -> None:
        if hypotheses is not None:
            with self._writing(self.path / TEST_HYP):
                files.write_text(self.path / TEST_HYP, "".join(f"{h}\n" for h in hypotheses))
        with self._writing(self.path / RESULTS):
            files.write_json(self.path / RESULTS, results)


def _written_by_nmt(name: str) -> bool:
    return name in RUN_FILES or _leftover(name)


def _leftover(name: str) -> bool:
    """A temporary file of a run file (nmt.store.files), left by a run that was killed."""
    return files.is_temporary(name, RUN_FILES)


def _check_links(path: Path) -> None:
    """Refuse to resume a model directory whose files have other hard links (a copy made
    with `cp -l`): the run would rewrite or append to them, and the copy would change too
    (metrics.jsonl) or be split from it file by file (nmt.store.files refuses that)."""
    linked = [
        name
        for name in sorted(RUN_FILES)
        if (path / name).is_file()
        and not (path / name).is_symlink()
        and (path / name).stat().st_nlink > 1
    ]
    if linked:
        raise UserError(
            f"{path}: {', '.join(linked[:4])} ha{'ve' if len(linked) > 1 else 's'} other hard "
            "links (a copy made with cp -l?), which resuming would change or split; copy the "
            "directory with cp -r and resume the copy"
        )


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


class FollowerDir(RunDir):
    """The model directory as a rank other than 0 of a distributed run sees it: it reads
    (the tokenizers, the resumable checkpoint, the best weights) and never writes nor
    locks; rank 0 owns the directory."""

    def start(self, recipe: Recipe, tokenizers: dict[str, bytes]) -> None:
        pass

    def resume_metrics(self, step: int) -> None:
        pass

    def append_metrics(self, entry: dict[str, Any]) -> None:
        pass

    def keep_checkpoint(self, model: torch.nn.Module, step: int, keep: int) -> None:
        pass

    def save_best(self, model: torch.nn.Module) -> None:
        pass

    def save_last(self, *args: Any, **kwargs: Any) -> None:
        pass

    def write_results(self, results: dict[str, Any], hypotheses: list[str] | None) -> None:
        pass
