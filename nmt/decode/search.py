"""Greedy and batched beam search, for any model that can take one step.

Search knows nothing of RNNs. It needs a step function and a state, typed as the
protocols `StepFn` and `SearchState` (`Seq2Seq.step` and `DecoderState` satisfy them):

    log_probs, state, attention = step(prev_tokens, state)    # (N,) → (N, V), ..., (N, S)
    state = state.reorder(index)                               # row b ← row index[b]

Scores are summed log-probabilities; hypotheses are ranked after length normalization
(`normalize`), plus, with a coverage penalty β > 0, Wu et al. 2016's coverage term
(`coverage_penalty`, from the attention each source token got). Beam search keeps a
sentence open until no unfinished hypothesis can still beat its n-th best finished one,
using an upper bound on what an unfinished hypothesis can reach (scores only fall as
tokens are added; the coverage term only rises to 0), and drops finished sentences from the batch
so that the rest run on smaller tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Literal, Protocol, TypeVar, runtime_checkable

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


def coverage_penalty(
    coverage: torch.Tensor, src_lengths: torch.Tensor, beta: float
) -> torch.Tensor:
    """cp(X; Y) = β · Σ_i log min(Σ_j p_ij, 1), Wu et al. 2016 (GNMT), eq. 14: coverage
    (N, S) the attention p_ij each source token i got, summed over the target steps j
    (</s> counted); only the first src_lengths[n] columns of row n count → (N,) ≤ 0.

    A source token that got no attention at all would give log 0: it is clamped to the
    smallest positive float, so such a hypothesis ranks very low but stays comparable.
    As steps are added the coverage only grows, so cp only rises towards 0: an unfinished
    hypothesis's rank score plus 0 still bounds every completion (beam search's stop).
    """
    columns = torch.arange(coverage.size(1), device=coverage.device)
    real = columns.unsqueeze(0) < src_lengths.to(coverage.device).unsqueeze(1)  # (N, S)
    logs = coverage.float().clamp(min=torch.finfo(torch.float32).tiny, max=1.0).log()
    return beta * torch.where(real, logs, 0.0).sum(dim=1)


def no_attention() -> ValueError:
    return ValueError("a coverage penalty needs attention, and this model's step returns none")


def max_output_lengths(src_lengths: torch.Tensor, ratio: float, offset: int) -> torch.Tensor:
    """Most tokens (before </s>) each sentence may get: ⌈ratio · source length⌉ + offset."""
    return (src_lengths.double() * ratio).ceil().long() + offset


def mask_step(
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
    coverage_beta: float = 0.0,
    src_lengths: torch.Tensor | None = None,
) -> list[list[Hypothesis]]:
    """The most probable next token at every step, for a batch of B sentences. With
    `coverage_beta` > 0 (it needs `src_lengths` (B,)), the scores include the coverage
    penalty; the choices do not change (greedy ranks nothing)."""
    batch = max_lengths.size(0)
    device = max_lengths.device
    prev = torch.full((batch,), BOS, dtype=torch.long, device=device)
    alive = torch.ones(batch, dtype=torch.bool, device=device)
    scores = torch.zeros(batch, device=device)
    tokens, attentions = [], []
    coverage: torch.Tensor | float = 0.0  # (B, S) once summed: attention of the live rows
    for t in range(int(max_lengths.max()) + 1):
        log_probs, state, attention = step(prev, state)
        log_probs = mask_step(log_probs, t, min_length, t >= max_lengths)
        best, prev = log_probs.max(dim=-1)
        scores += torch.where(alive, best, 0.0)
        tokens.append(torch.where(alive, prev, EOS))
        if coverage_beta > 0:
            if attention is None:
                raise no_attention()
            coverage = coverage + attention.float() * alive.unsqueeze(1)
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
    if coverage_beta > 0:
        assert isinstance(coverage, torch.Tensor) and src_lengths is not None
        final = final + coverage_penalty(coverage, src_lengths, coverage_beta)
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


@dataclass
class Beams(Generic[StateT]):
    """The sentences a beam search still works on, k rows each, row i·k + j being
    sentence i's beam j: what one step hands the next."""

    state: StateT  # the model's, n·k rows
    scores: torch.Tensor  # (n, k) summed log-probabilities of the live beams
    history: torch.Tensor  # (n·k, t + 1) the tokens so far, <s> first
    attention: torch.Tensor | None  # (n·k, t, S) once attention is kept
    max_len: torch.Tensor  # (n,) most tokens before </s>
    best_done: torch.Tensor  # (n, nbest) rank scores of the best finished, best first
    sentence: list[int]  # each one's index in the batch the search began with
    coverage: torch.Tensor | None = None  # (n·k, S) attention summed, with a coverage penalty
    src_lengths: torch.Tensor | None = None  # (n,) source lengths, with a coverage penalty

    def keep_attention(self, attention: torch.Tensor) -> None:
        """Add this step's attention (n·k, S) to the rows' history."""
        step = attention.float().unsqueeze(1)
        self.attention = step if self.attention is None else torch.cat([self.attention, step], 1)

    def observe(self, attention: torch.Tensor | None, keep: bool, cover: bool) -> None:
        """This step's attention (n·k, S): kept in the history if `keep`, added to the
        coverage if `cover` (a coverage penalty, which needs attention)."""
        if keep and attention is not None:
            self.keep_attention(attention)
        if cover:
            if attention is None:
                raise no_attention()
            self.coverage = attention.float() + (0.0 if self.coverage is None else self.coverage)

    def narrow(
        self, live: torch.Tensor, scores: torch.Tensor, rows: torch.Tensor, tokens: torch.Tensor
    ) -> None:
        """Go on with the `live` sentences only, each beam j of sentence i continuing row
        rows[i, j] with tokens[i, j] at the summed log-probability scores[i, j]."""
        rows = rows[live].view(-1)
        self.state = self.state.reorder(rows)
        self.history = torch.cat([self.history[rows], tokens[live].view(-1, 1)], dim=1)
        if self.attention is not None:
            self.attention = self.attention[rows]
        if self.coverage is not None and self.src_lengths is not None:
            self.coverage = self.coverage[rows]
            self.src_lengths = self.src_lengths[live]
        self.scores = scores[live]
        self.max_len = self.max_len[live]
        self.best_done = self.best_done[live]
        self.sentence = [self.sentence[i] for i in live.tolist()]


def top_extensions(
    scores: torch.Tensor, log_probs: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One beam step's choice, pure top-k (fairseq's BeamSearch.step): the best 2·k
    extensions of each sentence's k beams, which holds k that do not end in </s> (at most
    k can).

    scores (n, k) summed log-probabilities, log_probs (n·k, V) of the next token →
    their summed log-probabilities (n, 2k), best first; the rows they extend (n, 2k),
    numbered as log_probs' rows; and their tokens (n, 2k).
    """
    n, vocab = scores.size(0), log_probs.size(-1)
    candidates = (scores.view(-1, 1) + log_probs).view(n, k * vocab)
    top_scores, top_index = candidates.topk(min(2 * k, k * vocab), dim=1)  # (n, 2k)
    rows = top_index // vocab + torch.arange(n, device=scores.device).unsqueeze(1) * k
    return top_scores, rows, top_index % vocab


def finish(
    beams: Beams,
    finished: list[list[Hypothesis]],
    top: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    length: float,
    rank: Callable[[torch.Tensor, torch.Tensor | float], torch.Tensor],
    beta: float = 0.0,
) -> None:
    """File the extensions among the top k (`top`: their scores, rows and tokens, (n, k)
    each) that end in </s> as finished hypotheses of `length` tokens, </s> counted, and
    update each sentence's best finished rank scores (plus the coverage penalty β)."""
    top_scores, rows, tokens = top
    ends = ((tokens == EOS) & top_scores.isfinite()).nonzero()  # (E, 2)
    if not len(ends):
        return
    ranked = rank(top_scores[ends[:, 0], ends[:, 1]], length)
    end_rows = rows[ends[:, 0], ends[:, 1]]
    if beams.coverage is not None and beams.src_lengths is not None:
        cover = beams.coverage[end_rows]
        ranked = ranked + coverage_penalty(cover, beams.src_lengths[ends[:, 0]], beta)
    prefixes = beams.history[end_rows, 1:].tolist()
    attn = None if beams.attention is None else beams.attention[end_rows].cpu()
    for e, (i, score) in enumerate(zip(ends[:, 0].tolist(), ranked.tolist(), strict=True)):
        finished[beams.sentence[i]].append(
            Hypothesis(prefixes[e], score, None if attn is None else attn[e])
        )
    new = torch.full(top_scores.shape, float("-inf"), device=top_scores.device)
    new[ends[:, 0], ends[:, 1]] = ranked
    beams.best_done = torch.cat([beams.best_done, new], dim=1).topk(beams.best_done.size(1)).values


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
    coverage_beta: float = 0.0,
    src_lengths: torch.Tensor | None = None,
) -> list[list[Hypothesis]]:
    """The `nbest` best hypotheses of each of B sentences, `beam_size` kept per step.
    With `coverage_beta` > 0 (it needs `src_lengths` (B,)), finished hypotheses rank by
    their normalized score plus `coverage_penalty`.

    `state` holds B rows; each is repeated `beam_size` times. At each step the best
    2·beam_size extensions of a sentence's beam are ranked (`top_extensions`; at most
    beam_size of them can end in </s>, so beam_size always continue); those ending in </s>
    among the top beam_size are finished (`finish`), the best beam_size others carry on.
    """
    k, batch = beam_size, max_lengths.size(0)
    beams = start_beams(state, max_lengths, k, nbest, coverage_beta, src_lengths)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]

    def rank(score: torch.Tensor, length: torch.Tensor | float) -> torch.Tensor:
        return normalize(score, length, normalization, length_penalty)

    for t in range(int(max_lengths.max()) + 1):
        log_probs, beams.state, attention = step(beams.history[:, -1], beams.state)  # (n·k, V)
        at_max = (t >= beams.max_len).repeat_interleave(k)
        log_probs = mask_step(log_probs, t, min_length, at_max)
        beams.observe(attention, return_attention, coverage_beta > 0)
        top_scores, rows, tokens = top_extensions(beams.scores, log_probs, k)
        top = top_scores[:, :k], rows[:, :k], tokens[:, :k]
        finish(beams, finished, top, t + 1.0, rank, coverage_beta)

        # The best k extensions that do not end carry on (a stable sort keeps their order).
        keep = torch.argsort((tokens == EOS).int(), dim=1, stable=True)[:, :k]
        scores = top_scores.gather(1, keep)

        # A sentence is done when no live beam can beat its nbest-th finished hypothesis:
        # the best live one may at most keep its log-probability up to the longest length
        # (and a coverage penalty, ≤ 0, at most reach 0).
        bound = rank(scores[:, 0], beams.max_len + 1.0)
        done = (t >= beams.max_len) | (bound == float("-inf")) | (beams.best_done[:, -1] >= bound)
        live = (~done).nonzero().squeeze(1)
        if len(live) == 0:
            break
        beams.narrow(live, scores, rows.gather(1, keep), tokens.gather(1, keep))

    return [sorted(hyps, key=lambda h: -h.score)[:nbest] for hyps in finished]


def start_beams(
    state: StateT,
    max_lengths: torch.Tensor,
    k: int,
    nbest: int,
    coverage_beta: float = 0.0,
    src_lengths: torch.Tensor | None = None,
) -> Beams[StateT]:
    """Every sentence's k beams before the first step: all hold the empty prefix, and only
    the first counts (the others score -inf), so the first step extends it alone. The
    arguments checked as `beam_search` takes them (a coverage penalty needs src_lengths)."""
    if not 1 <= nbest <= k:
        raise ValueError(f"nbest ({nbest}) must be between 1 and beam_size ({k})")
    if coverage_beta > 0 and src_lengths is None:
        raise ValueError("a coverage penalty needs the source lengths (src_lengths)")
    batch, device = max_lengths.size(0), max_lengths.device
    scores = torch.zeros(batch, k, device=device)
    scores[:, 1:] = float("-inf")
    return Beams(
        state=state.reorder(torch.arange(batch, device=device).repeat_interleave(k)),
        scores=scores,
        history=torch.full((batch * k, 1), BOS, dtype=torch.long, device=device),
        attention=None,
        max_len=max_lengths.clone(),
        best_done=torch.full((batch, nbest), float("-inf"), device=device),
        sentence=list(range(batch)),
        src_lengths=None if coverage_beta <= 0 else src_lengths.to(device),
    )
