"""Scores of given translations under a model, teacher-forced: `mean_nll` is the
cross-entropy per real target token (nats, </s> counted) over whole splits of ids,
batched by tokens (the training loss, nmt.model.loss's `token_nll`, summed and divided
by the token count); `perplexity` is its exp, inf where that would overflow (a diverged
model's loss). Validation (nmt.training) and `nmt evaluate perplexity`
(nmt.report.evaluation) read them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from nmt.data.batching import batch_indices, collate
from nmt.model.loss import token_nll
from nmt.vocab import PAD


@torch.no_grad()
def mean_nll(
    model: torch.nn.Module,
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    batch_tokens: int,
    device: torch.device,
) -> tuple[float, int]:
    """Teacher-forced cross-entropy per target token (nats, </s> counted) and the count."""
    model.eval()
    total, tokens = 0.0, 0
    lengths = [len(x) for x in src_ids], [len(y) for y in tgt_ids]
    for rows in batch_indices(*lengths, batch_tokens):
        batch = collate(src_ids, tgt_ids, rows)
        tokens += batch.target_tokens
        batch = batch.to(device)
        real = batch.tgt_out != PAD
        logits = model(batch.src, batch.src_lengths, batch.tgt_in, positions=real)
        total += float(token_nll(logits, batch.tgt_out[real]))
    return total / max(tokens, 1), tokens


def perplexity(nll: float) -> float:
    """exp(nll), or inf where that would overflow a float (a diverged model's loss)."""
    return math.exp(nll) if nll < 700 else math.inf
