"""--resume checks everything it resumes from before it changes anything.

Checked here: a damaged line in the middle of metrics.jsonl (a torn last line is still
dropped) and a trainer.json that is empty, incomplete, mistyped or out of range are each
refused with one line naming the file and the line or field; a resume that fails for any
reason before training starts leaves every byte of the directory as it was, recipe.yaml
included; the refusal of a changed key names every key a resume may change.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
from helpers.cli import one_line_error, set_args

from nmt.cli.main import app
from nmt.errors import UserError
from nmt.store.checkpoint import save_tensor_file
from nmt.store.files import read_jsonl
from nmt.training.run_dir import RESUMABLE
from nmt.training.setup import train

LAST = Path("checkpoints") / "last"


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `directory`: its bytes and modification time."""
    return {
        str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def resume_cli(runner, quickstart, model_overrides):
    """resume_cli(run_dir): `nmt train --resume` of the shared model with new (resumable)
    limits and decoding."""

    def resume(run_dir: Path):
        sets = set_args([*model_overrides, "train.max_steps=50", "decode.beam_size=2"])
        args = ["train", str(quickstart), *sets, "--output-dir", str(run_dir), "--device", "cpu"]
        return runner.invoke(app, [*args, "--resume"])

    return resume


def edit_trainer_json(run_dir: Path, **changes) -> None:
    path = run_dir / LAST / "trainer.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


# ---------------------------------------------------------------- metrics.jsonl


@pytest.mark.parametrize(
    "damage",
    ['{"step": 30, "valid_lo', "[30, 1.5]", '{"valid_loss": 1.5}'],
    ids=["torn", "not-an-object", "no-step"],
)
def test_a_damaged_line_in_the_middle_of_metrics_is_refused(copy_model, damage, resume_cli):
    run_dir = copy_model()
    metrics = run_dir / "metrics.jsonl"
    first, *rest = metrics.read_text(encoding="utf-8").splitlines(keepends=True)
    assert rest  # the shared model evaluated twice
    metrics.write_text(first + damage + "\n" + "".join(rest), encoding="utf-8")
    before = snapshot(run_dir)
    one_line_error(resume_cli(run_dir), f"{metrics}: line 2 ")
    assert snapshot(run_dir) == before


def test_read_jsonl_drops_only_a_torn_last_line(tmp_path):
    path = tmp_path / "m.jsonl"
    whole = '{"step": 1}\n\n{"step": 2}\n'
    path.write_bytes(whole.encode() + '{"step": 3, "note": "é'.encode()[:-1])  # cut in é
    assert read_jsonl(path) == [{"step": 1}, {"step": 2}]
    path.write_bytes(b'{"step": 1}\n{"st\xc3\n{"step": 3}\n')
    with pytest.raises(UserError, match=r"m\.jsonl: line 2 is damaged \(not UTF-8\)"):
        read_jsonl(path)
    path.write_text('{"step": 1}\n"step"\n{"step": 3}\n')
    with pytest.raises(UserError, match=r"m\.jsonl: line 2 is not a JSON object"):
        read_jsonl(path)


# ---------------------------------------------------------------- trainer.json


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ({}, "missing step, epoch, position, best_bleu and 10 more"),
        ({"step": "x"}, "step is 'x' (not a whole number)"),
        ({"best_step": 99}, "best_step is 99 (past the saved step 40)"),
        ({"train_tokens": -5}, "train_tokens is -5 (below 0)"),
        ({"best_bleu": None}, "best_bleu is None (not a number)"),
        ({"mood": "sunny"}, "unknown mood"),
    ],
    ids=["empty", "step-text", "best-past-step", "negative", "null", "unknown-key"],
)
def test_a_damaged_trainer_state_is_refused_and_nothing_is_deleted(
    copy_model, make_recipe, content, named
):
    run_dir = copy_model()
    # a kept evaluation's weights, which a resume at step 0 would delete
    kept = run_dir / "checkpoints" / "step-00000040.safetensors"
    kept.write_bytes((run_dir / "model.safetensors").read_bytes())
    if content:
        edit_trainer_json(run_dir, **content)
    else:
        (run_dir / LAST / "trainer.json").write_text("{}")
    before = snapshot(run_dir)
    with pytest.raises(UserError, match="--overwrite") as error:
        train(make_recipe(run_dir, "train.max_steps=50"), "cpu", resume=True)
    message = str(error.value)
    assert str(run_dir / LAST / "trainer.json") in message and named in message, message
    assert "\n" not in message
    assert snapshot(run_dir) == before


def test_every_state_training_can_save_is_accepted():
    from nmt.training.state import TrainerState, checked_state

    fresh = json.loads(json.dumps(dataclasses.asdict(TrainerState())))  # best_loss Infinity
    assert checked_state(fresh, Path("t.json")) == TrainerState()
    diverged = {**fresh, "step": 5, "best_loss": math.nan, "loss_scale": 1024.0, "best_bleu": 0}
    assert checked_state(diverged, Path("t.json")).step == 5


# ---------------------------------------------------------------- nothing changes


def wrong_shaped_weights(run_dir: Path) -> None:
    save_tensor_file(run_dir / LAST / "model.safetensors", {"w": torch.zeros(2)})


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / LAST / "optimizer.pt").write_bytes(b"\x80\x04 not a pickle"),
        wrong_shaped_weights,
        lambda d: edit_trainer_json(d, world_size=2),
        lambda d: (d / LAST / "trainer.json").write_text("{not json"),
        lambda d: edit_trainer_json(d, step="x"),
    ],
    ids=["optimizer", "weights", "processes", "trainer-json", "trainer-step"],
)
def test_a_failed_resume_leaves_every_byte_of_the_directory(copy_model, damage, resume_cli):
    run_dir = copy_model()
    damage(run_dir)
    before = snapshot(run_dir)
    one_line_error(resume_cli(run_dir), str(run_dir))
    assert snapshot(run_dir) == before  # recipe.yaml too: its --set values are not recorded


def test_the_refusal_of_a_changed_key_names_every_resumable_key(copy_model, make_recipe):
    run_dir = copy_model()
    with pytest.raises(UserError, match="train.learning_rate") as error:
        train(make_recipe(run_dir, "train.learning_rate=0.5"), "cpu", resume=True)
    for key in RESUMABLE:
        assert (f"{key}*" if key.endswith(".") else key) in str(error.value), key
