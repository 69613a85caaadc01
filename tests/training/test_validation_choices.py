"""train.best_metric and train.valid_beam: what chooses the best model, and how valid
is decoded.

Validation scores are scripted (as in test_train.py) so that each metric picks a
different step: the best step, the patience stop and the plateau decay must follow the
metric the recipe names.
"""

from __future__ import annotations

import json

import pytest

import nmt.training.setup
import nmt.training.validation
from nmt.decode.translate import Translator
from nmt.events import Message
from nmt.training.setup import train

# four evaluations: BLEU peaks at the 2nd, chrF at the 3rd, loss is lowest at the 4th
SCRIPT = [
    {"loss": 3.0, "bleu": 10.0, "chrf": 30.0},
    {"loss": 2.5, "bleu": 20.0, "chrf": 35.0},
    {"loss": 2.2, "bleu": 15.0, "chrf": 40.0},
    {"loss": 2.0, "bleu": 12.0, "chrf": 38.0},
]


@pytest.fixture
def scripted(monkeypatch):
    scores = iter(SCRIPT)
    monkeypatch.setattr(nmt.training.validation, "_validate", lambda *args: dict(next(scores)))


def metrics(directory):
    lines = (directory / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize(("metric", "best_step"), [("bleu", 4), ("chrf", 6), ("loss", 8)])
def test_the_best_step_follows_best_metric(tmp_path, make_recipe, scripted, metric, best_step):
    out = tmp_path / metric
    extra = ["train.max_steps=8", "train.eval_every=2", f"train.best_metric={metric}"]
    r = train(make_recipe(out, *extra), device="cpu")
    assert r.best_step == best_step
    assert r.valid_bleu == SCRIPT[best_step // 2 - 1]["bleu"]  # the chosen model's BLEU


def test_patience_counts_the_metric_it_watches(tmp_path, make_recipe, scripted):
    # by chrF, evaluation 4 is the first without improvement; with patience 1 it stops there
    out = tmp_path / "run"
    extra = ["train.max_steps=100", "train.eval_every=2"]
    extra += ["train.best_metric=chrf", "train.patience=1"]
    events = []
    r = train(make_recipe(out, *extra), device="cpu", on_event=events.append)
    assert r.steps == 8
    assert any(
        "no better valid chrF in 1 evaluations" in e.text for e in events if isinstance(e, Message)
    )
    assert [e["valid_chrf"] for e in metrics(out)] == [30.0, 35.0, 40.0, 38.0]


@pytest.mark.slow
@pytest.mark.parametrize(("metric", "decays"), [("loss", False), ("bleu", True)])
def test_plateau_decay_follows_the_metric(tmp_path, make_recipe, monkeypatch, metric, decays):
    # loss falls at every evaluation while BLEU falls too: only BLEU has plateaued
    scores = iter([{"loss": 3.0 - i / 10, "bleu": 20.0 - i, "chrf": 0.0} for i in range(4)])
    monkeypatch.setattr(nmt.training.validation, "_validate", lambda *args: next(scores))
    out = tmp_path / metric
    extra = ["train.max_steps=8", "train.eval_every=2", f"train.best_metric={metric}"]
    extra += ["train.lr_schedule=plateau", "train.lr_patience=0"]
    train(make_recipe(out, *extra), device="cpu")
    rates = [e["learning_rate"] for e in metrics(out)]
    assert (rates[-1] < rates[0]) is decays


def test_valid_beam_decodes_validation_with_that_beam(tmp_path, make_recipe, monkeypatch):
    seen = []
    original = Translator.translate

    def spy(self, lines, **options):
        seen.append(options.get("beam_size"))
        return original(self, lines, **options)

    monkeypatch.setattr(Translator, "translate", spy)
    out = tmp_path / "run"
    extra = ["train.max_steps=4", "train.eval_every=2", "train.valid_beam=3"]
    train(make_recipe(out, *extra, "data.test=null"), device="cpu")
    assert seen == [3, 3]  # two evaluations, each with beam 3
    assert all(0 <= e["valid_bleu"] <= 100 for e in metrics(out))
