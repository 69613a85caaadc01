"""Warm start: `nmt train RECIPE --init-from RUN_DIR`.

Checked here: the new run starts from exactly RUN_DIR's weights (a learning rate of
1e-30 leaves them where they were) and copies its tokenizer files; a model section that
builds other shapes is one error naming both directories and the key; --init-from with
--resume, or into its own directory, is refused.
"""

from __future__ import annotations

import torch
from helpers.cli import set_args
from safetensors.torch import load_file

from nmt.cli.main import app


def train_from(runner, quickstart, model_dir, out, *extra):
    sets = set_args([*extra])
    args = ["train", str(quickstart), *sets, "--output-dir", str(out), "--device", "cpu"]
    return runner.invoke(app, [*args, "--init-from", str(model_dir)])


def test_a_warm_start_begins_from_the_trained_weights(
    runner, quickstart, model_dir, model_overrides, tmp_path
):
    out = tmp_path / "tuned"
    sets = [*model_overrides, "train.max_steps=1", "train.learning_rate=1e-30"]
    result = train_from(runner, quickstart, model_dir, out, *sets)
    assert result.exit_code == 0, result.output
    assert "weights and tokenizers from" in result.output
    before, after = (
        load_file(str(model_dir / "model.safetensors")),
        load_file(str(out / "model.safetensors")),
    )
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[k].double(), after[k].double(), atol=1e-20) for k in before)
    assert (out / "spm.model").read_bytes() == (model_dir / "spm.model").read_bytes()
    assert (out / "checkpoints/last/trainer.json").is_file()


def test_a_model_of_other_shapes_is_one_clear_error(
    runner, quickstart, model_dir, model_overrides, tmp_path
):
    out = tmp_path / "tuned"
    result = train_from(
        runner, quickstart, model_dir, out, *model_overrides, "model.hidden_size=48"
    )
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert str(model_dir) in message and "model.hidden_size (32 there, 48 here)" in message
    assert not out.exists()  # nothing written: the same command works once fixed


def test_init_from_with_resume_or_into_itself_is_refused(runner, quickstart, copy_model, tmp_path):
    source = copy_model("source")
    args = ["train", str(quickstart), "--init-from", str(source), "--device", "cpu"]
    result = runner.invoke(app, [*args, "--output-dir", str(tmp_path / "x"), "--resume"])
    assert result.exit_code == 1 and "--resume" in result.output
    before = (source / "model.safetensors").read_bytes()
    result = runner.invoke(app, [*args, "--output-dir", str(source), "--overwrite"])
    assert result.exit_code == 1 and "also the output directory" in result.output
    assert (source / "model.safetensors").read_bytes() == before
