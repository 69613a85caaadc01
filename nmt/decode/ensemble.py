"""Ensemble decoding: several models that share tokenizers, searched as one.

At every step the ensemble's next-token distribution is the mean of its members'
probabilities (not of their log-probabilities), the linear mixture of Sutskever et al.
2014 and Luong et al. 2015:

    log p(y | x, y<i) = log (1/M) Σ_m p_m(y | x, y<i) = logsumexp_m(log p_m) - log M

`Ensemble` has `encode` and `step` like `Seq2Seq`, and `EnsembleState` holds one decoder
state per member and reorders them all, so greedy and beam search (nmt.decode.search) run it
unchanged through the `StepFn` / `SearchState` protocols. Members may differ in
architecture (Luong and Bahdanau, LSTM and GRU, any sizes) as long as they read and
write the same ids: `check_same_vocabulary` refuses anything else.

The attention an ensemble step returns is the mean of the attention weights of the
members that have attention (members with model.attention none are left out): still a
distribution over the source, for --attention-out and the plots, though no single
member attended that way. `forward` gives teacher-forced mixed log-probabilities, so
perplexity (`loss.mean_nll`) measures the ensemble exactly as search scores it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nmt.data.tokenizer import TargetSubset, Tokenizer
from nmt.decode.search import SearchState
from nmt.errors import UserError


@dataclass
class EnsembleState:
    """One search state per member, kept in step: row b of each is the same hypothesis."""

    states: tuple[SearchState, ...]

    def reorder(self, index: torch.Tensor) -> EnsembleState:
        """Every member's state with row b ← row index[b]."""
        return EnsembleState(tuple(state.reorder(index) for state in self.states))


def mean_of_probabilities(log_probs: Sequence[torch.Tensor]) -> torch.Tensor:
    """log((1/M) Σ_m exp(log_probs[m])): M tensors of the same shape → one, in fp32.

    Computed as top + log(mean(exp(x_m - top))) with top the largest x_m: stable like
    logsumexp, and exact when every member gives the same numbers (exp(0) = 1, the mean
    of ones is 1), so an ensemble of a model with itself scores exactly as the model.
    Where every member gives -inf (<pad>, <s>, a forbidden token), so does the mixture.
    """
    stacked = torch.stack([x.float() for x in log_probs])  # (M, ..., V)
    top = stacked.max(dim=0).values
    top = torch.where(top.isfinite(), top, torch.zeros_like(top))  # all -inf: no shift
    return top + (stacked - top).exp().mean(dim=0).log()


def mean_attention(weights: Sequence[torch.Tensor | None]) -> torch.Tensor | None:
    """The mean attention (N, S) of the members that returned some; None if none did."""
    present = [w.float() for w in weights if w is not None]
    if not present:
        return None
    return torch.stack(present).mean(dim=0)


class Ensemble(nn.Module):
    """Models searched as one: the mean of their probabilities at every step.

    `members` are modules with `encode(src, src_lengths) → state` and `step(prev, state)
    → (log_probs (N, V), state, attention (N, S) | None)`, like `Seq2Seq`, over the same
    target vocabulary. An nn.Module, so `.to`, `.eval` and quantization reach every member.
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one model")
        self.members = nn.ModuleList(members)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EnsembleState:
        """Each member's initial decoder state for the source batch src (B, S)."""
        return EnsembleState(tuple(m.encode(src, src_lengths) for m in self.members))

    def step(
        self, prev_tokens: torch.Tensor, state: EnsembleState
    ) -> tuple[torch.Tensor, EnsembleState, torch.Tensor | None]:
        """prev_tokens (N,) → mixed log-probs (N, V), every member's next state, the mean
        attention (N, S) of the members with attention."""
        outs = [m.step(prev_tokens, s) for m, s in zip(self.members, state.states, strict=True)]
        log_probs = mean_of_probabilities([lp for lp, _, _ in outs])
        attention = mean_attention([a for _, _, a in outs])
        return log_probs, EnsembleState(tuple(s for _, s, _ in outs)), attention

    def forward(
        self,
        src: torch.Tensor,
        src_lengths: torch.Tensor,
        tgt_in: torch.Tensor,
        teacher_forcing: float = 1.0,
        step_by_step: bool = False,
        positions: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher-forced mixed log-probabilities, (B, T, V) or with `positions` (N, V),
        as `Seq2Seq.forward` gives logits: the softmax of either is the model's
        distribution, so `loss.token_nll` scores an ensemble as it scores one model."""
        args = src, src_lengths, tgt_in, teacher_forcing, step_by_step, positions
        return mean_of_probabilities([F.log_softmax(m(*args).float(), -1) for m in self.members])


def attends(model: nn.Module) -> bool:
    """Whether a model (or any member of an ensemble) has attention weights to show."""
    members = model.members if isinstance(model, Ensemble) else [model]
    decoders = [getattr(m, "decoder", None) for m in members]
    return any(getattr(d, "attention", None) is not None for d in decoders)


def _bytes(tokenizer: Tokenizer) -> bytes:
    """A tokenizer's own file (a target subset's inner tokenizer's)."""
    inner = tokenizer.inner if isinstance(tokenizer, TargetSubset) else tokenizer
    return inner.to_bytes()


def vocabulary_difference(a: tuple[Tokenizer, Tokenizer], b: tuple[Tokenizer, Tokenizer]) -> str:
    """What keeps two models' (source, target) tokenizers from being one: "" if nothing.

    Compared: the source tokenizer's file, the target tokenizer's file and the target
    subset (target_vocab.txt: which pieces the output layer spans, in which order).
    """
    (src_a, tgt_a), (src_b, tgt_b) = a, b
    if type(src_a) is not type(src_b):
        kinds = f"{type(src_a).__name__} vs {type(src_b).__name__}"
        return f"their tokenizers are of different kinds ({kinds})"
    if _bytes(src_a) != _bytes(src_b):
        return "their source tokenizers differ (the tokenizer files are not the same bytes)"
    if _bytes(tgt_a) != _bytes(tgt_b):
        return "their target tokenizers differ (the tokenizer files are not the same bytes)"
    kept_a = tgt_a.kept if isinstance(tgt_a, TargetSubset) else None
    kept_b = tgt_b.kept if isinstance(tgt_b, TargetSubset) else None
    if (kept_a is None) != (kept_b is None):
        which = "the first" if kept_a is not None else "the second"
        return f"only {which} restricts its target vocabulary ({TargetSubset.file_name})"
    if kept_a != kept_b:
        sizes = f"{len(kept_a or [])} vs {len(kept_b or [])} pieces"
        return f"their target vocabularies ({TargetSubset.file_name}) differ ({sizes})"
    return ""


def check_same_vocabulary(
    dir_a: Path, a: tuple[Tokenizer, Tokenizer], dir_b: Path, b: tuple[Tokenizer, Tokenizer]
) -> None:
    """One UserError naming both directories if their models cannot be ensembled."""
    what = vocabulary_difference(a, b)
    if what:
        raise UserError(
            f"--model {dir_a} and --model {dir_b} cannot be ensembled: {what}; the models "
            "of an ensemble must share their tokenizers and target vocabulary (train them "
            "on the same training data with the same tokenizer settings)"
        )
