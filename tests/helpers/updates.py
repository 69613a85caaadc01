"""A small model and random id pairs for one training update (accumulation, fp16 scaling)."""

from __future__ import annotations

import contextlib

import torch

from nmt.model.seq2seq import build_model
from nmt.recipe.schema import ModelConfig

FP32 = contextlib.nullcontext()  # the autocast of a plain fp32 update


def tiny_model() -> torch.nn.Module:
    """The same random model at each call (seed 0): 20 source ids, 15 target ids, no dropout."""
    torch.manual_seed(0)
    cfg = ModelConfig(embedding_size=8, hidden_size=12, encoder_layers=1, decoder_layers=1)
    return build_model(cfg.__class__(**{**cfg.__dict__, "dropout": 0.0}), 20, 15)


def pairs(n: int = 6) -> tuple[list[list[int]], list[list[int]]]:
    """n (source ids, target ids) pairs of random lengths, the same at each call."""
    g = torch.Generator().manual_seed(1)
    src = [torch.randint(4, 20, (int(torch.randint(2, 8, (1,), generator=g)),), generator=g)
           .tolist() for _ in range(n)]  # fmt: skip
    tgt = [torch.randint(4, 15, (len(s) + 1,), generator=g).tolist() for s in src]
    return src, tgt
