"""Checkpoint averaging: train.keep_checkpoints and `nmt average`.

Checked here: N identical checkpoints average to themselves; two known tensors to their
mean; files of different shapes or disagreeing integer buffers are refused; a run keeps
only its last N evaluations' weights; `nmt average` writes a model directory that
`nmt translate` uses, and refuses to write into a directory that holds files, or to
average files that do not fit the model of the run directory's recipe (another run's).
"""

from __future__ import annotations

import json

import pytest
import torch
from helpers.cli import set_args
from safetensors.torch import load_file

from nmt.cli.main import app
from nmt.errors import UserError
from nmt.store.checkpoint import kept_checkpoints, save_tensor_file
from nmt.training.average import average_checkpoints


def write(path, **tensors):
    save_tensor_file(path, tensors)
    return path


def test_identical_checkpoints_average_to_themselves(tmp_path):
    w = torch.randn(3, 4)
    paths = [write(tmp_path / f"{i}.safetensors", w=w, ids=torch.arange(3)) for i in range(3)]
    out = average_checkpoints(paths)
    assert torch.equal(out["w"], w) and torch.equal(out["ids"], torch.arange(3))


def test_two_known_tensors_average_to_their_mean(tmp_path):
    a = write(tmp_path / "a.safetensors", w=torch.tensor([1.0, 2.0, -4.0]))
    b = write(tmp_path / "b.safetensors", w=torch.tensor([3.0, 0.0, 4.0]))
    assert torch.equal(average_checkpoints([a, b])["w"], torch.tensor([2.0, 1.0, 0.0]))


def test_checkpoints_that_do_not_match_are_refused(tmp_path):
    a = write(tmp_path / "a.safetensors", w=torch.zeros(2), ids=torch.arange(2))
    b = write(tmp_path / "b.safetensors", w=torch.zeros(3), ids=torch.arange(2))
    c = write(tmp_path / "c.safetensors", w=torch.zeros(2), ids=torch.tensor([1, 0]))
    with pytest.raises(UserError, match="b.safetensors: its weights do not match"):
        average_checkpoints([a, b])
    with pytest.raises(UserError, match="ids differs"):
        average_checkpoints([a, c])


def test_keep_average_and_translate_through_the_cli(runner, quickstart, tiny_overrides, tmp_path):
    run, new = tmp_path / "run", tmp_path / "averaged"
    sets = [*tiny_overrides, "train.max_steps=6", "train.eval_every=2"]
    sets += ["train.keep_checkpoints=2"]
    args = ["train", str(quickstart), *set_args(sets), "--output-dir", str(run)]
    result = runner.invoke(app, [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    kept = kept_checkpoints(run)
    assert [p.name for p in kept] == ["step-00000004.safetensors", "step-00000006.safetensors"]

    result = runner.invoke(app, ["average", str(run), "--last", "3", "--output-dir", str(new)])
    assert result.exit_code == 1 and "--last 3" in result.output and not new.exists()
    result = runner.invoke(app, ["average", str(run), "--output-dir", str(new)])
    assert result.exit_code == 0, result.output
    a, b = (load_file(str(p)) for p in kept)
    mean = load_file(str(new / "model.safetensors"))
    for k in mean:
        expected = (a[k].double() + b[k].double()) / 2 if a[k].is_floating_point() else a[k]
        assert torch.allclose(mean[k].double(), expected.double(), atol=1e-7), k
    assert json.loads((new / "averaged.json").read_text())["checkpoints"] == [str(p) for p in kept]

    source = tmp_path / "in.en"
    source.write_text("three red dogs\n", encoding="utf-8")
    result = runner.invoke(app, ["translate", str(source), "--model", str(new), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1

    before = (new / "model.safetensors").read_bytes()
    result = runner.invoke(app, ["average", str(run), "--output-dir", str(new)])
    assert result.exit_code == 1 and "--output-dir" in result.output
    assert (new / "model.safetensors").read_bytes() == before  # nothing overwritten


def test_checkpoints_of_another_run_are_refused_before_anything_is_written(
    runner, model_dir, tmp_path
):
    # two files that agree with each other, but not with the model of model_dir's recipe
    ours = load_file(str(model_dir / "model.safetensors"))
    name = next(k for k, v in ours.items() if v.is_floating_point() and v.dim() == 2)
    other = {**ours, name: torch.zeros(ours[name].shape[0] + 1, ours[name].shape[1])}
    a, b = write(tmp_path / "a.safetensors", **other), write(tmp_path / "b.safetensors", **other)
    new = tmp_path / "averaged"
    args = ["average", str(model_dir), "--checkpoints", str(a), "--checkpoints", str(b)]
    result = runner.invoke(app, [*args, "--output-dir", str(new)])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith(f"error: {a}: does not fit the model of {model_dir}")
    assert result.stderr.count("\n") == 1 and name in result.stderr
    assert not new.exists()
    args[2:] = ["--checkpoints", str(model_dir / "model.safetensors"), "--checkpoints", str(b)]
    result = runner.invoke(app, [*args, "--output-dir", str(new)])
    assert result.exit_code == 1 and result.stderr.startswith(f"error: {b}: ")
    assert not new.exists()
