"""train.accumulate: K batches per update make exactly the update of their union."""

from __future__ import annotations

import json

import pytest
import torch
from helpers.cli import set_args
from helpers.updates import FP32, pairs, tiny_model

from nmt.cli.main import app
from nmt.data.batching import collate
from nmt.recipe.schema import TrainConfig
from nmt.training.loop import train_step
from nmt.training.setup import OPTIMIZERS


def step(model, batches, optimizer_name="adam"):
    optimizer = OPTIMIZERS[optimizer_name](model.parameters(), lr=0.01)
    group = batches if isinstance(batches, list) else [batches]
    tokens = sum(b.target_tokens for b in group)
    cfg = TrainConfig(clip_norm=1.0)
    return train_step(model, batches, tokens, optimizer, cfg, FP32)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_two_accumulated_batches_update_as_their_union(optimizer):
    src, tgt = pairs()
    first, second = collate(src, tgt, [0, 1, 2]), collate(src, tgt, [3, 4, 5])
    union = collate(src, tgt, [0, 1, 2, 3, 4, 5])
    accumulated, together, alone = tiny_model(), tiny_model(), tiny_model()
    loss_a, _ = step(accumulated, [first, second], optimizer)
    loss_u, _ = step(together, [union], optimizer)
    step(alone, [first], optimizer)
    assert torch.allclose(loss_a, loss_u, rtol=1e-5)
    for (name, a), b in zip(accumulated.named_parameters(), together.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), name
    params = zip(accumulated.parameters(), alone.parameters(), strict=True)
    moved = [not torch.allclose(a, c) for a, c in params]
    assert any(moved)  # the second batch counted: the test can fail


def test_a_single_batch_may_be_given_bare():
    src, tgt = pairs()
    batch = collate(src, tgt, [0, 1])
    a, b = tiny_model(), tiny_model()
    step(a, [batch])
    step(b, batch)
    for x, y in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(x, y)


@pytest.mark.slow
def test_accumulate_counts_updates_as_steps(runner, tmp_path, quickstart, tiny_overrides):
    runs = {}
    for k in (1, 2):
        out = tmp_path / f"k{k}"
        overrides = [
            *tiny_overrides,
            "train.max_steps=null",
            "train.max_epochs=1",
            f"train.accumulate={k}",
        ]
        result = runner.invoke(
            app,
            ["train", str(quickstart), *set_args(overrides), "--output-dir", str(out)]
            + ["--device", "cpu"],
        )
        assert result.exit_code == 0, result.output
        runs[k] = json.loads((out / "results.json").read_text())
    batches = runs[1]["steps"]  # one batch per update
    assert runs[2]["steps"] == (batches + 1) // 2  # the epoch's last update may be one batch
    assert runs[2]["epochs"] == 1.0


def test_accumulate_must_be_positive(runner, quickstart):
    result = runner.invoke(app, ["train", str(quickstart), "--set", "train.accumulate=0"])
    assert result.exit_code == 1 and "train.accumulate" in result.output


def test_step_leaves_no_gradient_behind():
    src, tgt = pairs()
    model = tiny_model()
    step(model, [collate(src, tgt, [0, 1]), collate(src, tgt, [2])])
    assert all(p.grad is None for p in model.parameters())
