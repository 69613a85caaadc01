"""bf16 autocast on the CPU: it runs, and it agrees with fp32 within a stated tolerance.

bf16 keeps 8 bits of mantissa (about 2-3 significant digits), so on a tiny model the
teacher-forced loss in bf16 must be within 2% of the fp32 loss, and a short bf16
training run on the CPU must end with finite weights and a finite valid loss.
"""

from __future__ import annotations

import math

import torch
from safetensors.torch import load_file

from nmt.config import ModelConfig
from nmt.device import make_autocast
from nmt.loss import token_nll
from nmt.model import build_model
from nmt.train import train
from nmt.vocab import BOS, EOS


def test_bf16_loss_on_cpu_is_within_two_percent_of_fp32():
    torch.manual_seed(0)
    cfg = ModelConfig(embedding_size=32, hidden_size=64, dropout=0.0)
    model = build_model(cfg, 50, 40).eval()
    g = torch.Generator().manual_seed(1)
    src = torch.randint(4, 50, (8, 12), generator=g)
    body = torch.randint(4, 40, (8, 9), generator=g)
    tgt_in = torch.cat([torch.full((8, 1), BOS), body], dim=1)
    tgt_out = torch.cat([body, torch.full((8, 1), EOS)], dim=1)
    lengths = torch.full((8,), 12)
    losses = {}
    for precision in ("fp32", "bf16"):
        with torch.no_grad(), make_autocast(precision, torch.device("cpu")):
            losses[precision] = float(token_nll(model(src, lengths, tgt_in), tgt_out))
    assert losses["bf16"] != losses["fp32"]  # the products really ran in bf16
    assert math.isclose(losses["bf16"], losses["fp32"], rel_tol=0.02)


def test_a_bf16_training_run_on_cpu(tmp_path, make_recipe):
    out = tmp_path / "run"
    r = train(make_recipe(out, "train.precision=bf16", "train.max_steps=6"), device="cpu")
    assert r["steps"] == 6
    weights = load_file(str(out / "model.safetensors"))
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in weights.values())
