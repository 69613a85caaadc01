"""train.precision fp16: dynamic loss scaling around the update, CUDA only.

The scaler's arithmetic is the same on every device, so it is checked on the CPU with
fp32 arithmetic, where multiplying by a power of two is exact: a scaled update must
equal the unscaled one, and an overflowing one must be skipped and halve the scale. fp16
autocast itself (no fp16 LSTM kernels on most CPUs) runs in the GPU-only test.
"""

from __future__ import annotations

import json

import pytest
import torch
from helpers.cli import set_args
from helpers.updates import FP32, pairs, tiny_model

from nmt.cli.main import app
from nmt.data.batching import collate
from nmt.device import make_scaler
from nmt.errors import UserError
from nmt.recipe.schema import TrainConfig
from nmt.training.loop import train_step
from nmt.training.setup import OPTIMIZERS


def scaled_steps(model, scale: float | None, steps: int = 3) -> list[bool]:
    src, tgt = pairs()
    batch = collate(src, tgt, list(range(len(src))))
    optimizer = OPTIMIZERS["adam"](model.parameters(), lr=0.01)
    scaler = None if scale is None else torch.amp.GradScaler("cpu", init_scale=scale)
    cfg = TrainConfig(clip_norm=1.0)
    out = []
    for _ in range(steps):
        _, applied = train_step(model, batch, batch.target_tokens, optimizer, cfg, FP32,
                                scaler=scaler)  # fmt: skip
        out.append(applied)
    return out


def test_a_scaled_update_equals_the_unscaled_one():
    plain, scaled, untouched = tiny_model(), tiny_model(), tiny_model()
    assert scaled_steps(plain, None) == [True] * 3
    assert scaled_steps(scaled, 2.0**12) == [True] * 3
    for (name, a), b in zip(scaled.named_parameters(), plain.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5), name
    params = zip(scaled.parameters(), untouched.parameters(), strict=True)
    moved = [not torch.equal(a, c) for a, c in params]
    assert any(moved)  # the updates happened: the test can fail


def test_an_overflowing_update_is_skipped_and_the_scale_halved():
    model, untouched = tiny_model(), tiny_model()
    src, tgt = pairs()
    batch = collate(src, tgt, list(range(len(src))))
    optimizer = OPTIMIZERS["adam"](model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    first = next(model.parameters())
    first.register_hook(lambda grad: grad * float("inf"))  # as an fp16 overflow would
    cfg = TrainConfig(clip_norm=1.0)
    _, applied = train_step(model, batch, batch.target_tokens, optimizer, cfg, FP32,
                            scaler=scaler)  # fmt: skip
    assert not applied
    assert scaler.get_scale() == 2.0**11
    for a, b in zip(model.parameters(), untouched.parameters(), strict=True):
        assert torch.equal(a, b)
        assert a.grad is None  # nothing left behind for the next update


def test_fp16_is_refused_off_cuda_with_the_fix():
    assert make_scaler("bf16", torch.device("cpu")) is None
    with pytest.raises(UserError, match="train.precision fp16 .*use train.precision bf16"):
        make_scaler("fp16", torch.device("cpu"))


def test_fp16_on_the_cpu_ends_in_one_message(runner, tmp_path, quickstart, tiny_overrides):
    out = tmp_path / "m"
    args = ["train", str(quickstart), *set_args([*tiny_overrides, "train.precision=fp16"])]
    result = runner.invoke(app, [*args, "--output-dir", str(out), "--device", "cpu"])
    assert result.exit_code != 0
    assert "train.precision fp16" in result.output
    assert "Traceback" not in result.output


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 training needs CUDA")
def test_fp16_training_on_cuda_keeps_its_loss_scale(runner, tmp_path, quickstart, tiny_overrides):
    out = tmp_path / "m"
    args = ["train", str(quickstart), *set_args([*tiny_overrides, "train.precision=fp16"])]
    result = runner.invoke(app, [*args, "--output-dir", str(out), "--device", "cuda"])
    assert result.exit_code == 0, result.output
    trainer = json.loads((out / "checkpoints" / "last" / "trainer.json").read_text())
    assert trainer["loss_scale"] > 0
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 20
    resumed = runner.invoke(app, [*args, "--set", "train.max_steps=30", "--output-dir",
                                  str(out), "--device", "cuda", "--resume"])  # fmt: skip
    assert resumed.exit_code == 0, resumed.output
