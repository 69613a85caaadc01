"""Greedy and batched beam search, for any model that can take one step.

Search knows nothing of RNNs. It needs a step function and a state, typed as the
protocols `StepFn` and `SearchState` (`Seq2Seq.step` and `DecoderState` satisfy them):

    log_probs, state, attention = step(prev_tokens, state)    # (N,) → (N, V), ..., (N, S)
    state = state.reorder(index)                               # row b ← row index[b]

Scores are summed log-probabilities; hypotheses are ranked after length normalization
(`normalize`). Beam search keeps a sentence open until no unfinished hypothesis can still
beat its n-th best finished one, using an upper bound on what an unfinished hypothesis can
reach (scores only fall as tokens are added), and drops finished sentences from the batch
so that the rest run on smaller tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar, runtime_checkable

import torch

from nmt.vocab import BOS, EOS

Normalization = Literal["none", "average", "gnmt"]
StateT = TypeVar("StateT", bound="SearchState")


@runtime_checkable
class SearchState(Protocol):
    """A model's decoder state as search sees it: N rows it can keep, repeat and permute."""

    def reorder(self: StateT, index: torch.Tensor) -> StateT:
        """The state whose row b is row index[b] of this one; index (N',) of row numbers."""
        ...


class StepFn(Protocol[StateT]):
    """One decoder step over N rows, which keeps the type of its state."""

    def __call__(
        self, prev_tokens: torch.Tensor, state: StateT, /
    ) -> tuple[torch.Tensor, StateT, torch.Tensor | None]:
        """prev_tokens (N,) → log-probabilities (N, V), the next state, attention (N, S)."""
        ...


@dataclass
class Hypothesis:
    tokens: list[int]  # output ids, </s> not included
    score: float  # length-normalized log-probability (what hypotheses are ranked by)
    attention: torch.Tensor | None = None  # (len(tokens) + 1, S) on the CPU, </s> row last


def gnmt_penalty(length: torch.Tensor | float, length_penalty: float) -> torch.Tensor | float:
    """lp(Y) = ((5 + |Y|) / 6)^α, Wu et al. 2016 (GNMT), eq. 14."""
    return ((5.0 + length) / 6.0) ** length_penalty  # α = length_penalty


def normalize(
    score: torch.Tensor,
    length: torch.Tensor | float,
    kind: Normalization,
    length_penalty: float = 0.0,
) -> torch.Tensor:
    """A hypothesis's rank score from its log-probability and its length (</s> counted).

    Each kind divides by a factor that never shrinks as the length grows, so for a log-
    probability s ≤ 0, `normalize(s, longest allowed length)` bounds every completion.
    """
    if kind == "none":
        return score
    if kind == "average":
        return score / length
    return score / gnmt_penalty(length, length_penalty)


def max_output_lengths(src_lengths: torch.Tensor, ratio: float, offset: int) -> torch.Tensor:
    """Most tokens (before </s>) each sentence may get: ⌈ratio · source length⌉ + offset."""
    return (src_lengths.double() * ratio).ceil().long() + offset


def _mask_step(
    log_probs: torch.Tensor, t: int, min_length: int, at_max: torch.Tensor
) -> torch.Tensor:
    """Forbid </s> before `min_length` tokens; force it on rows at their maximum length."""
    forced = at_max.any()
    if t >= min_length and not forced:
        return log_probs
    log_probs = log_probs.clone()
    eos = log_probs[:, EOS].clone()
    if t < min_length:
        log_probs[:, EOS] = float("-inf")
    if forced:
        log_probs[at_max] = float("-inf")
        log_probs[at_max, EOS] = torch.where(eos[at_max].isfinite(), eos[at_max], 0.0)
    return log_probs


@torch.no_grad()
def greedy_search(
    step: StepFn[StateT],
    state: StateT,
    max_lengths: torch.Tensor,
    min_length: int = 0,
    normalization: Normalization = "none",
    length_penalty: float = 0.0,
    return_attention: bool = False,
) -> list[list[Hypothesis]]:
    """The most probable next token at every step, for a batch of B sentences."""
    batch = max_lengths.size(0)
    device = max_lengths.device
    prev = torch.full((batch,), BOS, dtype=torch.long, device=device)
    alive = torch.ones(batch, dtype=torch.bool, device=device)
    scores = torch.zeros(batch, device=device)
    tokens, attentions = [], []
    for t in range(int(max_lengths.max()) + 1):
        log_probs, state, attention = step(prev, state)
        log_probs = _mask_step(log_probs, t, min_length, t >= max_lengths)
        best, prev = log_probs.max(dim=-1)
        scores += torch.where(alive, best, 0.0)
        tokens.append(torch.where(alive, prev, EOS))
        if return_attention and attention is not None:
            attentions.append(attention.float())
        alive &= prev != EOS
        if not alive.any():
            break
    out = torch.stack(tokens, dim=1).tolist()  # (B, steps)
    attn = torch.stack(attentions, dim=1).cpu() if attentions else None  # (B, steps, S)
    lengths = [row.index(EOS) for row in out]
    final = normalize(
        scores, torch.tensor(lengths, device=device) + 1.0, normalization, length_penalty
    )
    return [
        [
            Hypothesis(
                out[b][: lengths[b]],
                float(final[b]),
                None if attn is None else attn[b, : lengths[b] + 1],
            )
        ]
        for b in range(batch)
    ]


@torch.no_grad()
def beam_search(
    step: StepFn[StateT],
    state: StateT,
    max_lengths: torch.Tensor,
    beam_size: int,
    nbest: int = 1,
    min_length: int = 0,
    normalization: Normalization = "none",
    length_penalty: float = 0.0,
    return_attention: bool = False,
) -> list[list[Hypothesis]]:
    """The `nbest` best hypotheses of each of B sentences, `beam_size` kept per step.

    `state` holds B rows; each is repeated `beam_size` times. At each step the best
    2·beam_size extensions of a sentence's beam are ranked (at most beam_size of them can
    end in </s>, so beam_size always continue); those ending in </s> among the top
    beam_size are finished, the best beam_size others carry on.
    """
    if not 1 <= nbest <= beam_size:
        raise ValueError(f"nbest ({nbest}) must be between 1 and beam_size ({beam_size})")
    k = beam_size
    batch = max_lengths.size(0)
    device = max_lengths.device
    state = state.reorder(torch.arange(batch, device=device).repeat_interleave(k))
    sentence = list(range(batch))  # original index of each sentence still searching
    max_len = max_lengths.clone()
    scores = torch.zeros(batch, k, device=device)  # summed log-probs of the live beams
    scores[:, 1:] = float("-inf")  # at first, all k rows hold the same empty prefix
    history = torch.full((batch * k, 1), BOS, dtype=torch.long, device=device)
    attn_history: torch.Tensor | None = None  # (n·k, t, S)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    best_done = torch.full((batch, nbest), float("-inf"), device=device)  # finished, ranked

    for t in range(int(max_len.max()) + 1):
        n = scores.size(0)
        log_probs, state, attention = step(history[:, -1], state)  # (n·k, V)
        at_max = (t >= max_len).repeat_interleave(k)
        log_probs = _mask_step(log_probs, t, min_length, at_max)
        vocab = log_probs.size(-1)
        if return_attention and attention is not None:
            step_attn = attention.float().unsqueeze(1)
            attn_history = (
                step_attn if attn_history is None else torch.cat([attn_history, step_attn], dim=1)
            )
        candidates = (scores.view(-1, 1) + log_probs).view(n, k * vocab)
        top_scores, top_index = candidates.topk(min(2 * k, k * vocab), dim=1)  # (n, 2k)
        rows = top_index // vocab + torch.arange(n, device=device).unsqueeze(1) * k
        tokens = top_index % vocab
        is_eos = tokens == EOS

        # Finish the hypotheses that end in </s> within the top k.
        ends = (is_eos[:, :k] & top_scores[:, :k].isfinite()).nonzero()  # (E, 2)
        if len(ends):
            ranked = normalize(
                top_scores[ends[:, 0], ends[:, 1]], t + 1.0, normalization, length_penalty
            )
            end_rows = rows[ends[:, 0], ends[:, 1]]
            prefixes = history[end_rows, 1:].tolist()
            attn = None if attn_history is None else attn_history[end_rows].cpu()
            for e, (i, score) in enumerate(zip(ends[:, 0].tolist(), ranked.tolist(), strict=True)):
                finished[sentence[i]].append(
                    Hypothesis(prefixes[e], score, None if attn is None else attn[e])
                )
            new = torch.full((n, k), float("-inf"), device=device)
            new[ends[:, 0], ends[:, 1]] = ranked
            best_done = torch.cat([best_done, new], dim=1).topk(nbest, dim=1).values

        # The best k extensions that do not end carry on (a stable sort keeps their order).
        keep = torch.argsort(is_eos.int(), dim=1, stable=True)[:, :k]
        scores = top_scores.gather(1, keep)
        rows = rows.gather(1, keep)
        tokens = tokens.gather(1, keep)

        # A sentence is done when no live beam can beat its nbest-th finished hypothesis:
        # the best live one may at most keep its log-probability up to the longest length.
        bound = normalize(scores[:, 0], max_len + 1.0, normalization, length_penalty)
        done = (t >= max_len) | (bound == float("-inf")) | (best_done[:, -1] >= bound)
        live_t = (~done).nonzero().squeeze(1)
        if len(live_t) == 0:
            break
        rows = rows[live_t].view(-1)
        state = state.reorder(rows)
        history = torch.cat([history[rows], tokens[live_t].view(-1, 1)], dim=1)
        if attn_history is not None:
            attn_history = attn_history[rows]
        scores = scores[live_t]
        max_len = max_len[live_t]
        best_done = best_done[live_t]
        sentence = [sentence[i] for i in live_t.tolist()]

    return [sorted(hyps, key=lambda h: -h.score)[:nbest] for hyps in finished]
