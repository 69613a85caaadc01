"""Scores of given translations under a model, teacher-forced: `mean_nll` is the
cross-entropy per real target token (nats, </s> counted) over whole splits of ids,
batched by tokens (the training loss, nmt.model.loss's `token_nll`, summed and divided
by the token count); `perplexity` is its exp, inf where that would overflow (a diverged
model's loss). Validation (nmt.training) and `nmt evaluate perplexity`
(nmt.report.evaluation) read them. `sentence_log_probs` gives each pair's summed
log-probability, for `Translator.score` and `nmt evaluate score`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from nmt.data.batching import batch_indices, collate
from nmt.errors import UserError
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


@torch.no_grad()
def sentence_log_probs(
    model: torch.nn.Module,
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]],
    batch_tokens: int,
    device: torch.device,
) -> list[tuple[float, int]]:
    """Each pair's teacher-forced log p(target | source): (summed log-probability of its
    tokens, </s> counted; that token count), in input order.

    The sum is what greedy and beam search score a hypothesis by before length
    normalization, so a model's own output scores here as its search scored it. `model`
    is one model (logits) or an ensemble (mixed log-probabilities, nmt.decode.ensemble):
    log_softmax gives the model's distribution from either. Every source needs a token.
    """
    model.eval()
    out: list[tuple[float, int]] = [(0.0, 0)] * len(src_ids)
    lengths = [len(x) for x in src_ids], [len(y) for y in tgt_ids]
    for rows in batch_indices(*lengths, batch_tokens):
        batch = collate(src_ids, tgt_ids, rows).to(device)
        real = batch.tgt_out != PAD  # (B, T)
        logits = model(batch.src, batch.src_lengths, batch.tgt_in, positions=real)  # (N, V)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        picked = log_probs.gather(1, batch.tgt_out[real].unsqueeze(1)).squeeze(1)  # (N,)
        counts = real.sum(dim=1)  # (B,) tokens per row, </s> counted
        sums = torch.zeros(len(rows), device=picked.device).index_add_(
            0, torch.arange(len(rows), device=picked.device).repeat_interleave(counts), picked
        )
        for row, total, count in zip(rows, sums.tolist(), counts.tolist(), strict=True):
            out[row] = (total, count)
    return out


def check_pairs(
    sources: Sequence[str], targets: Sequence[str], names: tuple[str, str] = ("source", "target")
) -> None:
    """Refuse, in one line, pairs that cannot be scored: counts that differ, or a line with
    no text on either side (an empty source cannot be encoded; an empty reference is
    almost always a misaligned file, not a translation)."""
    if len(sources) != len(targets):
        raise UserError(
            f"{len(sources)} {names[0]} lines but {len(targets)} {names[1]} lines: give one "
            "target per source"
        )
    for side, lines in zip(names, (sources, targets), strict=True):
        empty = next((i for i, line in enumerate(lines) if not line.strip()), None)
        if empty is not None:
            raise UserError(
                f"{side} line {empty + 1} is empty: every pair to score needs text on both "
                "sides (remove the pair, or give its text)"
            )
