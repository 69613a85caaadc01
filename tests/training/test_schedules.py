"""The learning-rate and teacher-forcing schedules (nmt.training.schedules).

Checked here: each schedule against its formula at given updates (warm-up, inverse_sqrt,
epoch_decay, Bengio et al.'s three decays); plateau decays exactly where and as torch's
ReduceLROnPlateau does; the recipe rules for the new keys; both schedules resume exactly
(N steps straight = k steps + --resume to N, weights equal), also from a checkpoint saved
with torch's ReduceLROnPlateau before the schedules existed; both reach training from a
recipe file and from --set, and appear in metrics.jsonl and the progress lines.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from nmt.cli.main import app
from nmt.errors import UserError
from nmt.recipe.load import load_recipe
from nmt.recipe.schema import TrainConfig
from nmt.store import checkpoint
from nmt.training.schedules import LearningRate, Schedules, TeacherForcing
from nmt.training.setup import train


def lr(**train: object) -> LearningRate:
    return LearningRate(dataclasses.replace(TrainConfig(), learning_rate=0.5, **train))


def forcing(**train: object) -> TeacherForcing:
    return TeacherForcing(dataclasses.replace(TrainConfig(), **train))


# ---------------------------------------------------------------- formulas


def test_no_warm_up_leaves_the_rate_as_it_is():
    schedule = lr()
    assert [schedule.at(n) for n in (1, 2, 1000)] == [0.5, 0.5, 0.5]


def test_warm_up_rises_linearly_from_zero_then_holds():
    schedule = lr(warmup_steps=4)
    assert [schedule.at(n) for n in (1, 2, 3, 4, 5, 100)] == [0.125, 0.25, 0.375, 0.5, 0.5, 0.5]


@pytest.mark.parametrize("warmup", [0, 1, 4, 100])
def test_inverse_sqrt_decays_as_the_inverse_square_root_after_its_warm_up(warmup):
    schedule = lr(lr_schedule="inverse_sqrt", warmup_steps=warmup)
    w = max(warmup, 1)
    for n in range(1, 3 * w + 10):
        want = 0.5 * n / w if n < w else 0.5 * math.sqrt(w) / math.sqrt(n)
        assert schedule.at(n) == pytest.approx(want, rel=1e-12), n
    assert schedule.at(w) == pytest.approx(0.5) and schedule.at(4 * w) == pytest.approx(0.25)


def test_epoch_decay_multiplies_from_its_start_epoch():
    schedule = lr(lr_schedule="epoch_decay", lr_decay=0.5, lr_decay_start=2)
    rates = []
    for epochs in range(1, 5):
        schedule.epoch_ended(epochs)
        rates.append(schedule.at(1000))
    assert rates == [0.5, 0.25, 0.125, 0.0625]


def test_epochs_and_evaluations_move_only_their_own_policy():
    for policy in ("constant", "inverse_sqrt", "plateau"):
        schedule = lr(lr_schedule=policy, lr_decay_start=0)
        schedule.epoch_ended(3)
        assert schedule.rate == 0.5, policy
    schedule = lr(lr_schedule="epoch_decay", lr_patience=0)
    for score in (3.0, 1.0, 0.0):
        schedule.evaluated(score)
    assert schedule.rate == 0.5


@pytest.mark.parametrize("metric", ["bleu", "loss"])
@pytest.mark.parametrize("patience", [0, 1, 2])
def test_plateau_decays_as_torchs_reduce_lr_on_plateau(metric, patience):
    """The same rates, to the bit, as the scheduler nmt used before (and its mode)."""
    scores = [0.0, 0.0, 1.0, 1.00001, 0.5, 0.5, 0.5, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0, 3.0]
    scores += [1.0] * 2000  # until the decay is smaller than 1e-8 and stops
    schedule = lr(lr_schedule="plateau", lr_decay=0.3, lr_patience=patience, best_metric=metric)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    mode = "min" if metric == "loss" else "max"
    torchs = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=mode, factor=0.3, patience=patience
    )
    for score in scores:
        schedule.evaluated(score)
        torchs.step(score)
        assert schedule.at(10**6) == optimizer.param_groups[0]["lr"]
    assert schedule.rate < 1e-7  # it did decay


def test_constant_teacher_forcing_is_the_recipes_ratio():
    assert [forcing(teacher_forcing=0.7).at(i) for i in (0, 10, 10**9)] == [0.7, 0.7, 0.7]


def test_linear_teacher_forcing_falls_by_c_to_its_floor():
    schedule = forcing(
        teacher_forcing_schedule="linear", teacher_forcing_k=1.0, teacher_forcing_c=0.1,
        teacher_forcing=0.45,
    )  # fmt: skip
    got = [schedule.at(i) for i in range(8)]
    assert got == pytest.approx([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.45, 0.45])


def test_exponential_teacher_forcing_is_k_to_the_i():
    schedule = forcing(
        teacher_forcing_schedule="exponential", teacher_forcing_k=0.9, teacher_forcing=0.3
    )
    for i in (0, 1, 2, 5, 11):
        assert schedule.at(i) == pytest.approx(0.9**i)
    assert schedule.at(12) == 0.3 and schedule.at(10**9) == 0.3  # 0.9^12 < 0.3


def test_inverse_sigmoid_teacher_forcing():
    schedule = forcing(
        teacher_forcing_schedule="inverse_sigmoid", teacher_forcing_k=10.0, teacher_forcing=0.1
    )
    for i in (0, 1, 10, 20, 30):
        assert schedule.at(i) == pytest.approx(10 / (10 + math.exp(i / 10)))
    assert schedule.at(10**9) == 0.1  # exp(i / k) would overflow: the floor


def test_schedules_keep_their_state_through_a_state_dict():
    cfg = dataclasses.replace(TrainConfig(), lr_schedule="plateau", lr_patience=0)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.learning_rate)
    saved = Schedules(cfg, optimizer)
    for score in (5.0, 4.0):
        saved.lr.evaluated(score)
    restored = Schedules(cfg, optimizer)
    restored.load_state_dict(json.loads(json.dumps(saved.state_dict())))
    assert restored.state_dict() == saved.state_dict() and restored.lr.rate < cfg.learning_rate


def test_a_saved_schedule_of_another_policy_is_refused():
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    saved = Schedules(TrainConfig(), optimizer).state_dict()
    plateau = Schedules(dataclasses.replace(TrainConfig(), lr_schedule="plateau"), optimizer)
    with pytest.raises(ValueError, match="saved with train.lr_schedule constant"):
        plateau.load_state_dict(saved)


# ---------------------------------------------------------------- recipe rules


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.teacher_forcing_k=0.5"], "train.teacher_forcing_k shapes a teacher_forcing_"),
        (["train.teacher_forcing_c=0.1"], "remove train.teacher_forcing_c or choose"),
        (
            ["train.teacher_forcing_schedule=exponential", "train.teacher_forcing=0.5"],
            "exponential needs train.teacher_forcing_k in (0, 1) (the ratio decays as k^i); "
            "it is not set",
        ),
        (
            ["train.teacher_forcing_schedule=exponential", "train.teacher_forcing_k=1"],
            "needs train.teacher_forcing_k in (0, 1) (the ratio decays as k^i); it is 1",
        ),
        (
            ["train.teacher_forcing_schedule=inverse_sigmoid", "train.teacher_forcing_k=0.5"],
            "inverse_sigmoid needs train.teacher_forcing_k >= 1",
        ),
        (
            ["train.teacher_forcing_schedule=linear", "train.teacher_forcing_k=1.5"],
            "linear needs train.teacher_forcing_k in (0, 1]",
        ),
        (
            ["train.teacher_forcing_schedule=linear", "train.teacher_forcing_k=1"],
            "linear needs train.teacher_forcing_c, the ratio's decrease per update",
        ),
        (
            ["train.teacher_forcing_schedule=exponential", "train.teacher_forcing_k=0.9"]
            + ["train.teacher_forcing_c=0.1", "train.teacher_forcing=0.5"],
            "train.teacher_forcing_c is the slope of the linear schedule",
        ),
        (
            ["train.teacher_forcing_schedule=exponential", "train.teacher_forcing_k=0.9"],
            "decays to train.teacher_forcing, which is 1: set train.teacher_forcing to the floor",
        ),
        (["train.teacher_forcing_k=-1"], "'train.teacher_forcing_k' must be > 0"),
        (["train.warmup_steps=-1"], "'train.warmup_steps' must be >= 0"),
        (["train.lr_schedule=cosine"], "inverse_sqrt"),  # the valid choices are listed
    ],
)
def test_schedule_keys_are_checked_in_one_line(quickstart, overrides, message):
    with pytest.raises(UserError, match=re.escape(message)) as error:
        load_recipe(quickstart, overrides)
    assert "\n" not in str(error.value)


def test_the_new_keys_default_to_the_old_behaviour(quickstart):
    cfg = load_recipe(quickstart).train
    assert (cfg.lr_schedule, cfg.warmup_steps) == ("constant", 0)
    assert (cfg.teacher_forcing_schedule, cfg.teacher_forcing) == ("constant", 1.0)
    assert cfg.teacher_forcing_k is None and cfg.teacher_forcing_c is None


# ---------------------------------------------------------------- in training

LAST = Path("checkpoints") / "last"


def same_weights(a: Path, b: Path) -> bool:
    x, y = load_file(str(a)), load_file(str(b))
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


SCHEDULES = {
    "warmup+linear": [
        "train.warmup_steps=5", "train.teacher_forcing_schedule=linear",
        "train.teacher_forcing_k=1", "train.teacher_forcing_c=0.05", "train.teacher_forcing=0.3",
    ],
    "plateau+exponential": [
        "train.lr_schedule=plateau", "train.lr_patience=0",
        "train.teacher_forcing_schedule=exponential", "train.teacher_forcing_k=0.9",
        "train.teacher_forcing=0.4",
    ],
    "epoch_decay+inverse_sigmoid": [
        "train.lr_schedule=epoch_decay", "train.lr_decay_start=0",
        "data.train={toy: numbers, split: train, size: 100}",
        "train.teacher_forcing_schedule=inverse_sigmoid", "train.teacher_forcing_k=3",
        "train.teacher_forcing=0.2",
    ],
    "inverse_sqrt": ["train.lr_schedule=inverse_sqrt", "train.warmup_steps=4"],
}  # fmt: skip


@pytest.mark.parametrize("extra", SCHEDULES.values(), ids=SCHEDULES.keys())
def test_a_resumed_run_continues_its_schedules_exactly(tmp_path, make_recipe, extra):
    """N steps straight = k steps, then --resume to N: the same weights and the same
    learning rates and teacher-forcing ratios in metrics.jsonl."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    options = ["train.eval_every=4", "train.max_epochs=null", *extra]
    train(make_recipe(straight, "train.max_steps=16", *options), device="cpu")
    train(make_recipe(split, "train.max_steps=8", *options), device="cpu")  # evaluated at 8
    train(make_recipe(split, "train.max_steps=16", *options), "cpu", resume=True)
    assert same_weights(straight / LAST / "model.safetensors", split / LAST / "model.safetensors")

    def curve(run_dir):
        return [(e["step"], e["learning_rate"], e["teacher_forcing"]) for e in metrics(run_dir)]

    assert curve(straight) == curve(split)
    rates = {rate for _, rate, _ in curve(straight)}
    ratios = {ratio for _, _, ratio in curve(straight)}
    assert len(rates) > 1 or len(ratios) > 1  # a schedule did act


def test_a_checkpoint_with_torchs_plateau_state_still_resumes(tmp_path, make_recipe):
    """Checkpoints saved before nmt.training.schedules hold ReduceLROnPlateau's state
    dict: a resume reads its best score and bad evaluations (the rate is the
    optimizer's) and continues as the uninterrupted run."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    options = ["train.eval_every=3", "train.lr_schedule=plateau", "train.lr_patience=1"]
    train(make_recipe(straight, "train.max_steps=15", *options), device="cpu")
    train(make_recipe(split, "train.max_steps=9", *options), device="cpu")
    path = split / LAST / checkpoint.OPTIMIZER
    saved = torch.load(path, weights_only=True)
    ours = saved["scheduler"]["learning_rate"]
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=ours["rate"])
    old = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", patience=1)
    old.best, old.num_bad_epochs, old.last_epoch = ours["best"], ours["bad"], 3
    saved["scheduler"] = old.state_dict()
    for group in saved["optimizer"]["param_groups"]:  # ReduceLROnPlateau wrote its decay
        group["lr"] = ours["rate"]  # into the optimizer at once; ours sets it per update
    torch.save(saved, path)

    train(make_recipe(split, "train.max_steps=15", *options), "cpu", resume=True)
    assert same_weights(straight / LAST / "model.safetensors", split / LAST / "model.safetensors")
    rates = [e["learning_rate"] for e in metrics(straight)]
    assert rates == [e["learning_rate"] for e in metrics(split)] and rates[-1] < rates[0]


def test_schedules_from_a_recipe_file_and_from_set(runner, quickstart, tiny_overrides, tmp_path):
    """lr_schedule from the recipe's YAML, the teacher-forcing schedule from --set: both
    act, with the rate and ratio the formulas give in metrics.jsonl and the progress lines."""
    recipe = tmp_path / "scheduled.yaml"
    text = quickstart.read_text(encoding="utf-8")
    recipe.write_text(
        text.replace("train:\n", "train:\n  lr_schedule: inverse_sqrt\n  warmup_steps: 3\n", 1),
        encoding="utf-8",
    )
    sets = [*tiny_overrides, "train.max_steps=8", "train.eval_every=4", "train.log_every=2"]
    sets += ["train.teacher_forcing_schedule=exponential", "train.teacher_forcing_k=0.8"]
    sets += ["train.teacher_forcing=0.25"]
    args = ["train", str(recipe), *[a for s in sets for a in ("--set", s)]]
    out = tmp_path / "run"
    result = runner.invoke(app, [*args, "--output-dir", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    base = 0.003  # quickstart's train.learning_rate
    for entry in metrics(out):
        step = entry["step"]  # what the next update, step + 1, uses
        assert entry["learning_rate"] == pytest.approx(base * math.sqrt(3) / math.sqrt(step + 1))
        assert entry["teacher_forcing"] == pytest.approx(max(0.25, 0.8**step))
    assert [e["step"] for e in metrics(out)] == [4, 8]
    line = next(x for x in result.stdout.splitlines() if "step       2 " in x)
    assert "lr 3.00e-03" in line and f"tf {0.8**2:.3f}" in line, line  # update 3: warm
    saved = load_recipe(out / "recipe.yaml").train  # the model directory keeps them
    assert (saved.lr_schedule, saved.warmup_steps, saved.teacher_forcing_k) == (
        "inverse_sqrt", 3, 0.8
    )  # fmt: skip
