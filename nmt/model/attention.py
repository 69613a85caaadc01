"""Attention: how the decoder weighs the encoder's states, one small class per score.

Every variant has the same two-call interface and keeps no state between calls:

    keys = attention.project_keys(memory)              # once per batch: (B, S, K)
    context, weights = attention(query, keys, memory, mask)

`query` is the decoder state, (B, H) for one step or (B, T, H) for all target steps at
once; `memory` (B, S, D) holds the encoder outputs that the context averages; `mask`
(B, S) is True at real source tokens. Padded positions get exactly zero weight. Which
decoder state is the query (the previous one for Bahdanau, the current one for Luong) is
the decoder's business, not the score's.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _attend(
    scores: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked softmax over source positions, then the weighted average of `memory`.

    scores (B, T, S), memory (B, S, D), mask (B, S) → context (B, T, D), weights (B, T, S).
    """
    scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
    weights = F.softmax(scores, dim=-1, dtype=torch.float32).to(memory.dtype)
    return torch.bmm(weights, memory), weights


class _Attention(nn.Module):
    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """query (B, T, H), keys (B, S, K) → scores (B, T, S)."""
        raise NotImplementedError

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return memory

    def forward(
        self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        one_step = query.dim() == 2
        q = query.unsqueeze(1) if one_step else query  # (B, T, H)
        context, weights = _attend(self.score(q, keys), memory, mask)
        if one_step:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights


class DotAttention(_Attention):
    """score(s, h_j) = sᵀ h_j: Luong, Pham & Manning 2015, "dot".

    Needs the decoder state and the encoder outputs to have the same size.
    """

    def __init__(self, query_size: int, memory_size: int):
        super().__init__()
        if query_size != memory_size:
            raise ValueError(f"dot attention needs equal sizes, got {query_size}, {memory_size}")

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.bmm(query, keys.transpose(1, 2))


class GeneralAttention(_Attention):
    """score(s, h_j) = sᵀ W h_j: Luong, Pham & Manning 2015, "general".

    W h_j is computed once per batch as the keys, so each step is one batched product.
    """

    def __init__(self, query_size: int, memory_size: int):
        super().__init__()
        self.key_proj = nn.Linear(memory_size, query_size, bias=False)  # W

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_proj(memory)  # (B, S, H)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        return torch.bmm(query, keys.transpose(1, 2))


class AdditiveAttention(_Attention):
    """score(s, h_j) = vᵀ tanh(W s + U h_j): Bahdanau, Cho & Bengio 2015 ("additive").

    Luong et al. 2015's "concat", vᵀ tanh(W_a [s; h_j]), is the same function with W_a
    split into [W; U]; the two differ only in which decoder state is the query.
    """

    def __init__(self, query_size: int, memory_size: int, attention_size: int | None = None):
        super().__init__()
        size = attention_size or query_size
        self.query_proj = nn.Linear(query_size, size, bias=False)  # W
        self.key_proj = nn.Linear(memory_size, size, bias=True)  # U (and the bias)
        self.v = nn.Linear(size, 1, bias=False)

    def project_keys(self, memory: torch.Tensor) -> torch.Tensor:
        return self.key_proj(memory)  # (B, S, A)

    def score(self, query: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        q = self.query_proj(query).unsqueeze(2)  # (B, T, 1, A)
        return self.v(torch.tanh(q + keys.unsqueeze(1))).squeeze(3)  # (B, T, S)


ATTENTION: dict[str, type[_Attention]] = {
    "bahdanau": AdditiveAttention,
    "luong_dot": DotAttention,
    "luong_general": GeneralAttention,
    "luong_concat": AdditiveAttention,
}
