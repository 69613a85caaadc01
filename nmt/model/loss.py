"""The training and scoring loss: cross-entropy per real target token.

`token_nll` sums the loss over the non-padding positions of a batch; dividing by the
token count is the caller's choice (training divides per batch, `mean_nll` over a whole
split). Label smoothing (Szegedy et al. 2016) mixes the one-hot target with a uniform
distribution over the tokens the model can write: the decoder gives <pad> and <s> a logit
of -inf (`nmt.vocab.NEVER_WRITTEN`), so smoothing over the full vocabulary, as
`F.cross_entropy(label_smoothing=ε)` does, would sum -inf log-probabilities and make the
loss +inf, and would spend smoothing mass on tokens that can never be written.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nmt.vocab import NEVER_WRITTEN, PAD


def token_nll(
    logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Summed (label-smoothed) cross-entropy over the real tokens of target (B, T) or (N,).

    logits (B, T, V) or (N, V) with -inf at `NEVER_WRITTEN`; PAD targets cost nothing.
    With smoothing ε, each position costs (1 - ε) · (-log p(y)) + ε · mean over the W
    writable tokens w of (-log p(w)).
    """
    flat = logits.reshape(-1, logits.size(-1)).float()  # (N, V)
    gold = target.reshape(-1)  # (N,)
    if label_smoothing == 0.0:
        return F.cross_entropy(flat, gold, ignore_index=PAD, reduction="sum")
    real = gold != PAD
    log_probs = F.log_softmax(flat[real], dim=-1)  # (R, V), only real positions
    nll = -log_probs.gather(1, gold[real].unsqueeze(1)).squeeze(1)  # (R,)
    writable = torch.ones(flat.size(-1), dtype=torch.bool, device=flat.device)
    writable[list(NEVER_WRITTEN)] = False
    uniform = -log_probs[:, writable].mean(dim=-1)  # (R,)
    return ((1.0 - label_smoothing) * nll + label_smoothing * uniform).sum()
