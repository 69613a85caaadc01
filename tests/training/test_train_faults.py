"""Training under faults: nothing lost, nothing broken saved, nothing hangs.

Checked here: a kill -9 between evaluations loses at most train.save_every steps, and
--resume then ends with exactly the weights and metrics of an uninterrupted run, with no
duplicate or out-of-order step in metrics.jsonl; a NaN loss stops the run with one
message naming the step (or, with train.skip_nonfinite, skips that update); so does a
valid loss that is not finite, whose weights are never saved as the best; a diverging
learning rate leaves strict JSON, and one float32 cannot hold is one line; deterministic
mode gives bit-identical weights; two trainings into one directory cannot interleave; a
kill before the first checkpoint and a damaged checkpoint end in one clear message that
names --overwrite.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers.cli import set_args
from safetensors.torch import load_file

import nmt.training.loop
import nmt.training.validation
from nmt.errors import UserError
from nmt.events import Message, Progress
from nmt.training.setup import train

LAST = Path("checkpoints") / "last"


def metrics(directory: Path) -> list[dict]:
    text = (directory / "metrics.jsonl").read_text(encoding="utf-8")

    def no_constants(name: str) -> None:
        raise AssertionError(f"metrics.jsonl holds {name}, which is not JSON")

    return [json.loads(line, parse_constant=no_constants) for line in text.splitlines()]


def trainer_state(directory: Path) -> dict:
    return json.loads((directory / LAST / "trainer.json").read_text())


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_file(str(a)), load_file(str(b))
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def all_finite(path: Path) -> bool:
    return all(torch.isfinite(t).all() for t in load_file(str(path)).values())


def nmt_train(*args: str) -> list[str]:
    """The command line of `nmt train` in a fresh Python process."""
    return [sys.executable, "-m", "nmt.cli.main", "train", *args, "--device", "cpu"]


# ---------------------------------------------------------------- kill -9 and resume


@pytest.mark.slow
def test_kill_9_between_evaluations_then_resume_equals_an_uninterrupted_run(
    tmp_path, make_recipe, quickstart, tiny_overrides
):
    steps = 90
    options = ["train.max_epochs=null", "train.eval_every=30", "train.save_every=4"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(make_recipe(straight, f"train.max_steps={steps}", *options), device="cpu")

    overrides = [*tiny_overrides, f"train.max_steps={steps}", *options]
    command = nmt_train(str(quickstart), *set_args(overrides), "--output-dir", str(split))
    threads = ["--threads", str(torch.get_num_threads())]  # as in this process: same sums
    process = subprocess.Popen(command + threads, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    saved = 0
    while saved < 34 and time.monotonic() < deadline and process.poll() is None:
        try:  # past the first evaluation (step 30), before the second (step 60)
            saved = trainer_state(split)["step"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode()
    killed_at = trainer_state(split)["step"]
    assert 0 < killed_at < steps and killed_at % 4 == 0  # lost at most save_every steps

    r = train(make_recipe(split, f"train.max_steps={steps}", *options), "cpu", resume=True)
    assert r.steps == steps
    assert same_weights(straight / LAST / "model.safetensors", split / LAST / "model.safetensors")
    assert same_weights(straight / "model.safetensors", split / "model.safetensors")
    split_steps = [e["step"] for e in metrics(split)]
    assert split_steps == [30, 60, 90]  # no duplicate, none out of order
    curve = [(e["step"], e["valid_loss"], e["valid_bleu"]) for e in metrics(straight)]
    assert curve == [(e["step"], e["valid_loss"], e["valid_bleu"]) for e in metrics(split)]


def test_resume_drops_metrics_written_after_the_checkpoint(copy_model, make_recipe, model_steps):
    # A run killed after appending an evaluation (and a torn line) but before saving the
    # checkpoint of that step: the resumed run must not keep them, and evaluates again.
    run_dir = copy_model()
    with (run_dir / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"step": model_steps + 5, "valid_loss": 1.0}) + "\n")
        f.write('{"step": 99, "valid_lo')
    more = model_steps + 10
    train(make_recipe(run_dir, f"train.max_steps={more}", "train.eval_every=5"), "cpu", True)
    assert [e["step"] for e in metrics(run_dir)] == [20, 40, 45, 50]


def test_a_run_killed_before_its_first_checkpoint(copy_model, make_recipe):
    run_dir = copy_model()
    for name in ("checkpoints", "metrics.jsonl", "results.json", "test.hyp", "model.safetensors"):
        path = run_dir / name
        subprocess.run(["rm", "-rf", str(path)], check=True)
    with pytest.raises(UserError, match="before its first checkpoint.*--overwrite") as error:
        train(make_recipe(run_dir), "cpu", resume=True)
    assert str(run_dir) in str(error.value)
    with pytest.raises(UserError, match="--overwrite to start it over"):
        train(make_recipe(run_dir), "cpu")
    assert train(make_recipe(run_dir, "train.max_steps=2"), "cpu", overwrite=True).steps == 2


@pytest.mark.parametrize(
    "damage",
    [
        ("optimizer.pt", b"\x80\x04 not a pickle"),
        ("trainer.json", b"{not json"),
        ("trainer.json", b'{"step": 3, "mood": "sunny"}'),
    ],
    ids=["optimizer", "trainer-json", "trainer-keys"],
)
def test_a_damaged_checkpoint_is_one_clear_message(copy_model, make_recipe, damage):
    name, content = damage
    run_dir = copy_model()
    (run_dir / LAST / name).write_bytes(content)
    with pytest.raises(UserError, match="--overwrite") as error:
        train(make_recipe(run_dir, "train.max_steps=50"), "cpu", resume=True)
    assert str(run_dir) in str(error.value)


# ---------------------------------------------------------------- non-finite losses


@pytest.fixture
def nan_at_step_5(monkeypatch):
    """The training loss (not the valid loss) is NaN at the fifth update."""
    real, calls = nmt.training.loop.token_nll, []

    def loss(*args, **kwargs):
        calls.append(1)
        value = real(*args, **kwargs)
        return value * float("nan") if len(calls) == 5 else value

    monkeypatch.setattr(nmt.training.loop, "token_nll", loss)


def test_a_nan_loss_stops_the_run_and_saves_nothing_broken(tmp_path, make_recipe, nan_at_step_5):
    out = tmp_path / "run"
    recipe = make_recipe(out, "train.max_steps=20", "train.eval_every=4", "train.log_every=100")
    with pytest.raises(UserError, match=r"^step 5: the training loss is not finite") as error:
        train(recipe, device="cpu")
    text = str(error.value)
    assert "checkpoint of step 4" in text and "train.learning_rate" in text
    assert "skip_nonfinite" in text and "\n" not in text
    assert trainer_state(out)["step"] == 4
    assert [e["step"] for e in metrics(out)] == [4]
    assert all_finite(out / LAST / "model.safetensors") and all_finite(out / "model.safetensors")


def test_skip_nonfinite_skips_that_update_and_counts_it(tmp_path, make_recipe, nan_at_step_5):
    out = tmp_path / "run"
    events = []
    recipe = make_recipe(
        out, "train.max_steps=10", "train.eval_every=10", "train.skip_nonfinite=true"
    )
    r = train(recipe, device="cpu", on_event=events.append)
    assert r.steps == 10 and r.skipped_updates == 1
    assert trainer_state(out)["skipped"] == 1
    assert metrics(out)[-1]["skipped_updates"] == 1
    assert any("step 5: loss not finite" in e.text for e in events if isinstance(e, Message))
    assert [e.skipped for e in events if isinstance(e, Progress)] == [1]  # step 10's report
    assert math.isfinite(metrics(out)[-1]["valid_loss"])
    assert all_finite(out / "model.safetensors")


@pytest.mark.parametrize(
    ("bad", "what"), [(math.nan, "loss"), (math.inf, "loss"), (1e31, "perplexity")]
)
def test_a_diverged_valid_loss_stops_the_run_and_is_never_saved_as_best(
    tmp_path, make_recipe, monkeypatch, bad, what
):
    """The training loss stays finite; the second evaluation's valid loss is NaN, inf, or
    so large that its perplexity is not finite (what a learning rate of 1e30 gave)."""
    losses = iter([2.0, bad])
    monkeypatch.setattr(
        nmt.training.validation,
        "_validate",
        lambda *a: {"loss": next(losses), "bleu": 1.0, "chrf": 1.0},
    )
    out = tmp_path / "run"
    recipe = make_recipe(out, "train.max_steps=20", "train.eval_every=4", "train.log_every=100")
    with pytest.raises(UserError, match=rf"^step 8: the valid {what} is not finite") as error:
        train(recipe, device="cpu")
    text = str(error.value)
    assert "checkpoint of step 4" in text and "train.learning_rate" in text and "\n" not in text
    assert trainer_state(out)["step"] == 4 and trainer_state(out)["best_step"] == 4
    assert [e["step"] for e in metrics(out)] == [4]
    assert same_weights(out / "model.safetensors", out / LAST / "model.safetensors")
    assert not (out / "results.json").exists()


def test_a_huge_learning_rate_is_divergence_not_a_best_model(
    runner, tmp_path, quickstart, tiny_overrides
):
    """At 1e30 the training loss stayed finite while the weights were not: exit 0 before,
    with those weights saved as the best."""
    from nmt.cli.main import app

    out = tmp_path / "run"
    args = set_args([*tiny_overrides, "train.learning_rate=1e30", "train.eval_every=5"])
    result = runner.invoke(app, ["train", str(quickstart), *args, "--output-dir", str(out)])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "is not finite" in error and result.stderr.endswith(error + "\n")
    assert not (out / "model.safetensors").exists() and not (out / "results.json").exists()


@pytest.mark.parametrize("rate", ["3e38", "1e37"])
def test_a_learning_rate_at_the_float32_limit_ends_in_one_line(
    runner, tmp_path, rate, quickstart, tiny_overrides
):
    """3e38 overflowed Adam's float32 step (a traceback); 1e37 is allowed and diverges."""
    from nmt.cli.main import app

    out = tmp_path / "run"
    args = set_args([*tiny_overrides, f"train.learning_rate={rate}", "train.eval_every=5"])
    result = runner.invoke(app, ["train", str(quickstart), *args, "--output-dir", str(out)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert "train.learning_rate" in error and result.stderr.endswith(error + "\n")


def test_a_diverging_learning_rate_ends_cleanly_with_strict_json(
    runner, tmp_path, quickstart, tiny_overrides
):
    from nmt.cli.main import app

    out = tmp_path / "run"
    args = set_args([*tiny_overrides, "train.learning_rate=1e6", "train.eval_every=5"])
    result = runner.invoke(app, ["train", str(quickstart), *args, "--output-dir", str(out)])
    assert result.exit_code in (0, 1), result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    if result.exit_code == 1:  # before it, only phase lines (stamped) on stderr
        (error,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert "not finite" in error and result.stderr.endswith(error + "\n")
    for entry in metrics(out) if (out / "metrics.jsonl").exists() else []:
        assert entry["valid_ppl"] is None or math.isfinite(entry["valid_ppl"])


# ---------------------------------------------------------------- determinism


@pytest.mark.slow
def test_deterministic_mode_gives_bit_identical_weights(
    runner, tmp_path, quickstart, tiny_overrides
):
    from nmt.cli.main import app

    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        args = ["train", str(quickstart), *set_args([*tiny_overrides, "model.dropout=0.2"])]
        result = runner.invoke(app, [*args, "--output-dir", str(out), "--deterministic"])
        assert result.exit_code == 0, result.output
        runs.append(out)
    assert same_weights(runs[0] / "model.safetensors", runs[1] / "model.safetensors")
    assert same_weights(runs[0] / LAST / "model.safetensors", runs[1] / LAST / "model.safetensors")
    assert "deterministic: true" in (runs[0] / "recipe.yaml").read_text()
    torch.use_deterministic_algorithms(False)


# ---------------------------------------------------------------- one run per directory


def test_a_directory_locked_by_another_run_is_refused(tmp_path, make_recipe):
    run_dir = tmp_path / "busy"
    run_dir.mkdir()
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what a running `nmt train` holds
        with pytest.raises(UserError, match="in use by another nmt train") as error:
            train(make_recipe(run_dir), device="cpu")
        assert str(run_dir) in str(error.value)
        assert list(run_dir.iterdir()) == []
    finally:
        os.close(fd)
    assert train(make_recipe(run_dir, "train.max_steps=2"), "cpu").steps == 2


@pytest.mark.slow
def test_two_trainings_started_together_into_one_directory(tmp_path, quickstart, tiny_overrides):
    out = tmp_path / "shared"
    runs = []
    for hidden in (32, 48):  # different settings: interleaved files would be unusable
        overrides = [*tiny_overrides, f"model.hidden_size={hidden}", "train.max_steps=60"]
        command = nmt_train(str(quickstart), *set_args(overrides), "--output-dir", str(out))
        runs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    finished = [(p.wait(timeout=300), p.stderr.read().decode()) for p in runs]
    codes = sorted(code for code, _ in finished)
    assert codes == [0, 1], finished
    (refusal,) = [err for code, err in finished if code == 1]
    assert refusal.startswith("error: ") and str(out) in refusal
    assert "in use by another nmt train" in refusal or "already exists" in refusal
    assert "Traceback" not in refusal
    from nmt.decode.translate import Translator

    Translator.load(out, "cpu")  # the winner's recipe beside the winner's weights
