"""train.ema_decay: the moving average of the weights that evaluation and saving use.

Checked here: one update by hand; decay 0 gives the live weights exactly; the warm-up
of the decay; a shared parameter is averaged once; training with ema_decay saves the
average (not the live weights) as model.safetensors and keeps both in checkpoints/last;
a resumed run ends with exactly the average and weights of an uninterrupted one.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from nmt.training.ema import WeightAverage
from nmt.training.setup import train

LAST = Path("checkpoints") / "last"


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.Tanh(), nn.Linear(2, 1))


def test_one_update_by_hand():
    model = tiny()
    average = WeightAverage(model, decay=0.5)
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    average.update(model, updates=100)  # past the warm-up: decay 0.5
    for avg, old in zip(average.model.parameters(), before, strict=True):
        assert torch.allclose(avg, 0.5 * old + 0.5 * (old + 1.0))


def test_decay_zero_is_the_live_weights_exactly():
    model = tiny()
    average = WeightAverage(model, decay=0.0)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.7).add_(0.123)
    average.update(model, updates=5)
    for avg, live in zip(average.model.parameters(), model.parameters(), strict=True):
        assert torch.equal(avg, live)
        assert avg.data_ptr() != live.data_ptr() and not avg.requires_grad


def test_the_decay_warms_up_to_its_value():
    average = WeightAverage(tiny(), decay=0.99)
    assert average.decay_at(1) == pytest.approx(0.1)  # mostly the live weights at first
    assert average.decay_at(11) == pytest.approx(0.55)  # 11 / 20
    assert average.decay_at(10_000) == 0.99
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        WeightAverage(tiny(), decay=1.0)


def test_a_shared_parameter_is_averaged_once():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3))
    model[1].weight = model[0].weight  # one parameter in two places (share_embeddings)
    average = WeightAverage(model, decay=0.5)
    assert average.model[1].weight is average.model[0].weight
    with torch.no_grad():
        model[0].weight.add_(2.0)
    average.update(model, updates=100)
    expected = model[0].weight - 1.0  # halfway between before (w - 2) and after (w)
    assert torch.allclose(average.model[0].weight, expected)  # moved once, not twice


def test_training_saves_and_evaluates_the_average(tmp_path, make_recipe):
    out = tmp_path / "ema"
    recipe = make_recipe(out, "train.max_steps=24", "train.eval_every=12", "train.ema_decay=0.9")
    train(recipe, device="cpu")
    live = load_file(str(out / LAST / "model.safetensors"))
    kept = load_file(str(out / LAST / "average.safetensors"))
    best = load_file(str(out / "model.safetensors"))
    assert live.keys() == kept.keys() == best.keys()
    assert any(not torch.equal(live[k], kept[k]) for k in live)  # the average lags
    assert any(not torch.equal(best[k], live[k]) for k in best)  # never the live weights
    state = json.loads((out / LAST / "trainer.json").read_text())
    if state["best_step"] == 24:  # the last evaluation was the best: its average is kept
        assert all(torch.equal(best[k], kept[k]) for k in best)


@pytest.mark.slow
def test_resume_with_ema_equals_an_uninterrupted_run(tmp_path, make_recipe):
    options = ["train.max_epochs=null", "train.eval_every=10", "train.ema_decay=0.8"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(make_recipe(straight, "train.max_steps=30", *options), device="cpu")
    train(make_recipe(split, "train.max_steps=20", *options), device="cpu")
    train(make_recipe(split, "train.max_steps=30", *options), "cpu", resume=True)
    for name in (LAST / "model.safetensors", LAST / "average.safetensors", "model.safetensors"):
        a, b = load_file(str(straight / name)), load_file(str(split / name))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
