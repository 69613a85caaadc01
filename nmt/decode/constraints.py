"""Lexically constrained beam search: every output holds each of its sentence's phrases.

Post & Vilar 2018's dynamic beam allocation (the method of fairseq's and Sockeye's
constrained decoding), over the batched beam search of nmt.decode.search and through the
same `StepFn` / `SearchState` protocols, so ensembles need nothing more. A sentence's
constraints are phrases of target token ids, to be met in any order, each as a contiguous
run of tokens. Every hypothesis carries its `Progress`: the phrases it has met and the
one it is part-way through (leaving a phrase half-written gives its tokens back). At
each step:

- the candidates of a sentence are the usual best 2·k extensions (`top_extensions`),
  plus, for each of its k beams, the tokens that continue the phrase it is part-way
  through (or else start one it has not met), plus the beam's best token;
- </s> is offered only to beams that have met every constraint;
- candidates go into banks by how many constraint tokens they have met, and the k beam
  slots are dealt out round by round from the highest bank down, each bank giving its
  best candidate left per round (an even share per bank, the remainder to the higher
  banks; a bank with too few candidates leaves its slots to the others).

Since the highest non-empty bank always gets a slot, and the best beam of the highest
bank always has a candidate one token further, the most constraint tokens any beam has
met grows by one each step until all are met, whatever the beam size: with C constraint
tokens, a beam that meets them all exists after C steps. The length limit of a sentence
with constraints is raised by its C (⌈ratio · source⌉ + offset + C), so there is room for
them; at the limit, </s> is forced on beams that met everything and the others die, so
every finished hypothesis meets every constraint. Beams fewer than C + 1 work, but leave
the lowest banks no slot, so constraints tend to come early; a beam of C + 1 or more
gives every bank one. A phrase that starts with the same token as another, or that
overlaps itself ("a a b" in "a a a b"), is tracked from its first match only, as Sockeye
does: the search still places it, it may miss a placement it did not plan.

A sentence without constraints has one bank, and its beams are exactly the best k
extensions that do not end, as unconstrained search keeps; nmt.decode.batched calls this
search only for batches where some sentence has constraints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch

from nmt.decode.search import (
    Beams,
    Hypothesis,
    Normalization,
    StateT,
    StepFn,
    finish,
    mask_step,
    normalize,
    start_beams,
    top_extensions,
)
from nmt.vocab import EOS

Phrases = Sequence[Sequence[int]]  # one sentence's constraints: target ids per phrase


class Progress(NamedTuple):
    """Where a hypothesis stands with its sentence's phrases."""

    done: int = 0  # bit q set: phrase q is met
    phrase: int = -1  # the phrase part-way written, -1 for none
    at: int = 0  # how many of its tokens are written
    met: int = 0  # constraint tokens met: the done phrases' lengths + at


def advance(phrases: Phrases, progress: Progress, token: int) -> Progress:
    """The progress after writing `token`: the next token of the phrase under way goes on
    with it; any other token gives that phrase's tokens back, and may start the first
    unmet phrase it begins."""
    done, phrase, at, met = progress
    if phrase >= 0:
        if phrases[phrase][at] == token:
            if at + 1 == len(phrases[phrase]):
                return Progress(done | 1 << phrase, -1, 0, met + 1)
            return Progress(done, phrase, at + 1, met + 1)
        met -= at
    for q, tokens in enumerate(phrases):
        if not done >> q & 1 and tokens[0] == token:
            if len(tokens) == 1:
                return Progress(done | 1 << q, -1, 0, met + 1)
            return Progress(done, q, 1, met + 1)
    return Progress(done, -1, 0, met)


def next_tokens(phrases: Phrases, progress: Progress) -> list[int]:
    """The tokens that meet one more constraint token: the next of the phrase under way,
    else the first of each unmet phrase."""
    if progress.phrase >= 0:
        return [phrases[progress.phrase][progress.at]]
    return [tokens[0] for q, tokens in enumerate(phrases) if not progress.done >> q & 1]


def constraint_tokens(phrases: Phrases) -> int:
    """C: how many tokens a sentence's constraints hold together."""
    return sum(len(tokens) for tokens in phrases)


def deal(entries: list[tuple[float, int, int, int, Progress]], k: int) -> list[int]:
    """The k entries (score, met, row, token, progress) that carry on, as indices into
    `entries`, best score first: round by round, each bank of equal `met`, highest first,
    gives its best entry left. Entries scoring -inf come last. Needs k ≤ len(entries)."""
    finite = [e for e in range(len(entries)) if entries[e][0] > float("-inf")]
    banks: dict[int, list[int]] = {}
    for e in sorted(finite, key=lambda e: -entries[e][0]):  # stable: ties keep their order
        banks.setdefault(entries[e][1], []).append(e)
    order = [banks[met] for met in sorted(banks, reverse=True)]
    chosen: list[int] = []
    depth = 0
    while len(chosen) < k and any(depth < len(bank) for bank in order):
        chosen += [bank[depth] for bank in order if depth < len(bank)][: k - len(chosen)]
        depth += 1
    kept = set(finite)
    chosen += [e for e in range(len(entries)) if e not in kept][: k - len(chosen)]
    return sorted(chosen, key=lambda e: -entries[e][0])


class Book:
    """The constraints of the sentences a search still works on, and each beam's
    `Progress`: row i·k + j is sentence i's beam j, as in `Beams`."""

    def __init__(self, constraints: Sequence[Phrases], k: int):
        self.phrases = [[tuple(p) for p in phrases] for phrases in constraints]
        self.needed = [constraint_tokens(p) for p in self.phrases]
        self.k = k
        self.progress = [Progress() for _ in range(len(constraints) * k)]
        self.pending: list[Progress] = []

    def unmet(self, device: torch.device) -> torch.Tensor:
        """(n·k,) bool: the rows that have not met every constraint yet."""
        rows = [p.met < self.needed[r // self.k] for r, p in enumerate(self.progress)]
        return torch.tensor(rows, dtype=torch.bool, device=device)

    def allocate(
        self,
        beam_scores: torch.Tensor,
        log_probs: torch.Tensor,
        top: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The k extensions of each sentence that carry on, by dynamic beam allocation:
        beam_scores (n, k) summed log-probabilities, log_probs (n·k, V) of this step (</s>
        already held back from unmet rows), `top` the best 2k (`top_extensions`) → their
        scores, the rows they extend and their tokens, (n, k) each, best score first. Their
        progress waits in `pending` for `narrow`."""
        n, k = beam_scores.size(0), self.k
        flat = beam_scores.view(-1).tolist()
        best = log_probs.clone()
        best[:, EOS] = float("-inf")
        best_tokens = best.argmax(dim=1).tolist()
        top_rows, top_tokens = top[1].tolist(), top[2].tolist()
        pool: list[list[tuple[int, int]]] = []
        for i in range(n):
            seen = dict.fromkeys(
                (r, w) for r, w in zip(top_rows[i], top_tokens[i], strict=True) if w != EOS
            )
            for r in range(i * k, i * k + k):
                if flat[r] > float("-inf"):
                    for w in [*next_tokens(self.phrases[i], self.progress[r]), best_tokens[r]]:
                        seen.setdefault((r, w), None)
            pool.append(list(seen))
        rows = [r for entries in pool for r, _ in entries]
        tokens = [w for entries in pool for _, w in entries]
        row_index = torch.tensor(rows, device=log_probs.device)
        token_index = torch.tensor(tokens, device=log_probs.device)
        scores = beam_scores.view(-1)[row_index] + log_probs[row_index, token_index]
        return self._deal(pool, scores.tolist(), log_probs.device)

    def _deal(
        self, pool: list[list[tuple[int, int]]], scores: list[float], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`allocate`'s choice among each sentence's pool of (row, token) candidates, whose
        scores are `scores` in pool order."""
        out_scores, out_rows, out_tokens = [], [], []
        self.pending = []
        start = 0
        for i, candidates in enumerate(pool):
            entries = []
            for (r, w), s in zip(candidates, scores[start : start + len(candidates)], strict=True):
                progress = advance(self.phrases[i], self.progress[r], w)
                entries.append((s, progress.met, r, w, progress))
            start += len(candidates)
            for e in deal(entries, self.k):
                s, _, r, w, progress = entries[e]
                out_scores.append(s)
                out_rows.append(r)
                out_tokens.append(w)
                self.pending.append(progress)
        shape = (len(pool), self.k)
        return (
            torch.tensor(out_scores, device=device).view(shape),
            torch.tensor(out_rows, device=device).view(shape),
            torch.tensor(out_tokens, device=device).view(shape),
        )

    def narrow(self, live: list[int]) -> None:
        """Go on with the `live` sentences, their beams at their `pending` progress."""
        k = self.k
        self.phrases = [self.phrases[i] for i in live]
        self.needed = [self.needed[i] for i in live]
        self.progress = [p for i in live for p in self.pending[i * k : i * k + k]]


def hold_ends(log_probs: torch.Tensor, unmet: torch.Tensor, at_max: torch.Tensor) -> torch.Tensor:
    """No </s> for rows that have not met their constraints (`unmet`, (n·k,)); such a row at
    its length limit (`at_max`) can write nothing at all, and dies."""
    if not unmet.any():
        return log_probs
    log_probs = log_probs.clone()
    log_probs[unmet, EOS] = float("-inf")
    log_probs[unmet & at_max] = float("-inf")
    return log_probs


@torch.no_grad()
def constrained_beam_search(
    step: StepFn[StateT],
    state: StateT,
    max_lengths: torch.Tensor,
    beam_size: int,
    constraints: Sequence[Phrases],
    nbest: int = 1,
    min_length: int = 0,
    normalization: Normalization = "none",
    length_penalty: float = 0.0,
    return_attention: bool = False,
    coverage_beta: float = 0.0,
    src_lengths: torch.Tensor | None = None,
) -> list[list[Hypothesis]]:
    """`beam_search` (nmt.decode.search, same arguments) where every finished hypothesis
    of sentence b holds each phrase of constraints[b] (B lists of phrases of target ids,
    possibly empty). Sentence b may write C_b more tokens than `max_lengths[b]`, C_b being
    its constraint tokens."""
    k, batch, device = beam_size, max_lengths.size(0), max_lengths.device
    book = Book(constraints, k)
    max_lengths = max_lengths + torch.tensor(book.needed, device=device)
    beams = start_beams(state, max_lengths, k, nbest, coverage_beta, src_lengths)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]

    def rank(score: torch.Tensor, length: torch.Tensor | float) -> torch.Tensor:
        return normalize(score, length, normalization, length_penalty)

    for t in range(int(max_lengths.max()) + 1):
        log_probs, beams.state, attention = step(beams.history[:, -1], beams.state)  # (n·k, V)
        at_max = (t >= beams.max_len).repeat_interleave(k)
        log_probs = mask_step(log_probs, t, min_length, at_max)
        log_probs = hold_ends(log_probs, book.unmet(device), at_max)
        beams.observe(attention, return_attention, coverage_beta > 0)
        top = top_extensions(beams.scores, log_probs, k)
        finish(beams, finished, (top[0][:, :k], top[1][:, :k], top[2][:, :k]), t + 1.0, rank,
               coverage_beta)  # fmt: skip
        if not _step_on(beams, book, book.allocate(beams.scores, log_probs, top), t, rank):
            break
    return [sorted(hyps, key=lambda h: -h.score)[:nbest] for hyps in finished]


def _step_on(
    beams: Beams,
    book: Book,
    kept: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    t: int,
    rank: Callable[[torch.Tensor, torch.Tensor | float], torch.Tensor],
) -> bool:
    """Narrow the search to the sentences that are not done (as `beam_search` decides:
    the best live beam can no longer beat the nbest-th finished one, or the limit is
    reached), their beams continuing with `kept` (scores, rows, tokens); False if none."""
    scores, rows, tokens = kept
    bound = rank(scores.max(dim=1).values, beams.max_len + 1.0)
    done = (t >= beams.max_len) | (bound == float("-inf")) | (beams.best_done[:, -1] >= bound)
    live = (~done).nonzero().squeeze(1)
    if len(live) == 0:
        return False
    book.narrow(live.tolist())
    beams.narrow(live, scores, rows, tokens)
    return True
