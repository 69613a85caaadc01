"""Greedy and batched beam search in numpy, with the semantics of nmt.decode.search.

The same rules, step for step, so that the runtime writes what PyTorch writes: scores
are summed float32 log-probabilities, ranked after length normalization (none, average,
GNMT's ((5 + |Y|) / 6)^α); </s> is forbidden before `min_length` tokens and forced at a
sentence's maximum length; at each beam step the best 2·beam extensions of a sentence are
ranked, those ending in </s> among the top beam are finished and the best beam others
carry on; a sentence stops when no live hypothesis can still beat its n-th best finished
one (scores only fall, and the normalizer never shrinks), and stopped sentences leave the
batch.

Search drives a `Stepper`, which holds the model's state between steps:

    log_probs, attention = stepper.step(prev_tokens)   # (N,) → (N, V) float32, (N, S)
    stepper.reorder(rows, shrunk)                       # hypothesis b ← row rows[b]

A stepper whose `top_k` is true also has `step_top(prev_tokens, count)` → each row's best
`count` log-probs and their ids (N, count), the </s> log-probs (N,), the attention: its
graph ranks (nmt.export.onnx_files.add_top_k), and beam search asks for 2k + 1 per row.

`shrunk` says that sentences left the batch. Beam search only ever reorders rows within
a sentence's own block of `beam` rows, whose source tensors (encoder states, keys,
mask) are the same, so a stepper may leave those alone unless `shrunk` is true.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

BOS, EOS = 2, 3
NEG_INF = np.float32(-np.inf)


class Stepper(Protocol):
    def step(self, prev_tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]: ...

    def reorder(self, rows: np.ndarray, shrunk: bool) -> None: ...


@dataclass
class Hypothesis:
    tokens: list[int]  # output ids, </s> not included
    score: float  # length-normalized log-probability (what hypotheses are ranked by)
    attention: np.ndarray | None = None  # (len(tokens) + 1, S), </s> row last


def normalize(
    score: np.ndarray, length: np.ndarray | float, kind: str, length_penalty: float = 0.0
) -> np.ndarray:
    """A hypothesis's rank score from its float32 log-probability and its length (</s>
    counted), in float32 as PyTorch computes it."""
    if kind == "none":
        return score
    if kind == "average":
        return (score / length).astype(np.float32)
    return (score / ((5.0 + length) / 6.0) ** length_penalty).astype(np.float32)


def max_output_lengths(src_lengths: np.ndarray, ratio: float, offset: int) -> np.ndarray:
    """Most tokens (before </s>) each sentence may get: ⌈ratio · source length⌉ + offset."""
    return np.ceil(src_lengths.astype(np.float64) * ratio).astype(np.int64) + offset


def mask_step(log_probs: np.ndarray, t: int, min_length: int, at_max: np.ndarray) -> np.ndarray:
    """Forbid </s> before `min_length` tokens; force it on rows at their maximum length."""
    forced = bool(at_max.any())
    if t >= min_length and not forced:
        return log_probs
    log_probs = log_probs.copy()
    eos = log_probs[:, EOS].copy()
    if t < min_length:
        log_probs[:, EOS] = NEG_INF
    if forced:
        log_probs[at_max] = NEG_INF
        kept = eos[at_max]
        log_probs[at_max, EOS] = np.where(np.isfinite(kept), kept, np.float32(0.0))
    return log_probs


def greedy_search(
    stepper: Stepper,
    max_lengths: np.ndarray,
    min_length: int = 0,
    normalization: str = "none",
    length_penalty: float = 0.0,
    return_attention: bool = False,
) -> list[list[Hypothesis]]:
    """The most probable next token at every step, for B sentences; a sentence leaves the
    batch once it wrote </s>."""
    batch = len(max_lengths)
    steps = int(max_lengths.max()) + 1
    out = np.full((batch, steps), EOS, dtype=np.int64)
    attn: np.ndarray | None = None
    scores = np.zeros(batch, dtype=np.float32)
    live = np.arange(batch)
    prev = np.full(batch, BOS, dtype=np.int64)
    max_len = max_lengths
    for t in range(steps):
        log_probs, attention = stepper.step(prev)
        log_probs = mask_step(log_probs, t, min_length, t >= max_len)
        prev = log_probs.argmax(axis=1)
        scores[live] += log_probs[np.arange(len(live)), prev]
        out[live, t] = prev
        if return_attention and attention is not None:
            if attn is None:
                attn = np.zeros((batch, steps, attention.shape[1]), dtype=np.float32)
            attn[live, t] = attention
        going = np.flatnonzero(prev != EOS)
        if len(going) == 0:
            break
        if len(going) < len(live):
            stepper.reorder(going, True)
            live, prev, max_len = live[going], prev[going], max_len[going]
    lengths = (out == EOS).argmax(axis=1)
    final = normalize(scores, (lengths + 1).astype(np.float32), normalization, length_penalty)
    return [
        [
            Hypothesis(
                out[b, : lengths[b]].tolist(),
                float(final[b]),
                None if attn is None else attn[b, : lengths[b] + 1],
            )
        ]
        for b in range(batch)
    ]


def _top(values: np.ndarray, count: int) -> np.ndarray:
    """Column indices of each row's `count` largest values (N, count), in no set order.

    argpartition on the values themselves, kth counted from the end: no negated copy."""
    width = values.shape[1]
    if count >= width:
        return np.broadcast_to(np.arange(width), values.shape)
    return np.argpartition(values, width - count, axis=1)[:, width - count :]


def _ranked(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """The order (N, C) that sorts each row of values (N, C) largest first, equal values by
    ascending key (a candidate's index among the sentence's k·V), so ties are deterministic."""
    return np.lexsort((keys, -values), axis=1)


def _append_column(history: np.ndarray | None, column: np.ndarray) -> np.ndarray:
    """history (N, t, ...) with column (N, ...) as its step t + 1."""
    column = column[:, None]
    return column if history is None else np.concatenate([history, column], axis=1)


def _row_best(log_probs: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's best `count` log-probs (N, count) and their token ids, in no set order."""
    ids = _top(log_probs, min(count, log_probs.shape[1]))
    return np.take_along_axis(log_probs, ids, axis=1), ids


def mask_top(
    values: np.ndarray, ids: np.ndarray, eos: np.ndarray, t: int, min_length: int,
    at_max: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """mask_step on each row's best tokens (values, ids: (N, C); eos: (N,) the </s>
    log-probs): </s> forbidden before `min_length`; rows at their maximum length keep only
    </s> (in column 0; its id written into `ids`). With C ≥ 2k + 1 a row still has its
    best 2k allowed tokens, so the sentence's best 2k extensions are the same."""
    forced = bool(at_max.any())
    if t >= min_length and not forced:
        return values
    values = values.copy()
    if t < min_length:
        values[ids == EOS] = NEG_INF
    if forced:
        values[at_max] = NEG_INF
        kept = eos[at_max]
        values[at_max, 0] = np.where(np.isfinite(kept), kept, np.float32(0.0))
        ids[at_max, 0] = EOS
    return values


def _extensions(
    scores: np.ndarray, row_values: np.ndarray, row_ids: np.ndarray, vocab: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The best 2k extensions of each sentence's k live rows, best first: their summed
    scores (n, 2k), the rows they extend (n, 2k; row b·k + j), the tokens they add.

    In two stages: each row's best C ≥ 2k tokens (row_values, row_ids: (n·k, C), or all
    V when V < 2k), from `_row_best` or the step graph, then the sentence's best 2k of
    its k·C. A row adds one score to all its tokens, so a sentence's best 2k are among
    its rows' best 2k; the sums are the same float32 adds as over all k·V.
    """
    n, k = scores.shape
    width = row_values.shape[1]
    candidates = (scores.reshape(-1, 1) + row_values).reshape(n, k * width)
    local_row = np.arange(k * width) // width  # the row, within the sentence, of a candidate
    flat = local_row * vocab + row_ids.reshape(n, k * width).astype(np.int64)
    pick = _top(candidates, min(2 * k, k * width))
    picked = np.take_along_axis(candidates, pick, axis=1)
    picked_flat = np.take_along_axis(flat, pick, axis=1)
    order = _ranked(picked, picked_flat)
    top_scores = np.take_along_axis(picked, order, axis=1)
    top_flat = np.take_along_axis(picked_flat, order, axis=1)
    rows = top_flat // vocab + np.arange(n)[:, None] * k
    return top_scores, rows, top_flat % vocab


def _beam_step(
    stepper: Stepper, prev: np.ndarray, t: int, k: int, min_length: int, sentence_at_max: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray | None]:
    """One step of k rows per sentence: each row's best allowed tokens (values, ids), the
    vocabulary size, the attention. A stepper with `top_k` ranks in its graph (2k + 1 per
    row: one spare for a forbidden </s>); others give all log-probs, ranked here."""
    at_max = np.repeat(sentence_at_max, k)  # (n·k,)
    if getattr(stepper, "top_k", False):
        values, ids, eos, attention = stepper.step_top(prev, 2 * k + 1)  # type: ignore[attr-defined]
        ids = ids.copy()
        values = mask_top(values, ids, eos, t, min_length, at_max)
        return values, ids, stepper.models[0].vocab, attention  # type: ignore[attr-defined]
    log_probs, attention = stepper.step(prev)
    log_probs = mask_step(log_probs, t, min_length, at_max)
    values, ids = _row_best(log_probs, 2 * k)
    return values, ids, log_probs.shape[1], attention


def _finish(
    finished: list[list[Hypothesis]],
    sentences: np.ndarray,
    prefixes: np.ndarray,
    scores: np.ndarray,
    attention: np.ndarray | None,
) -> None:
    """Add hypothesis e (its tokens `prefixes[e]`, its rank score, its attention) to the
    finished ones of sentence `sentences[e]`."""
    for e, (b, tokens, score) in enumerate(
        zip(sentences.tolist(), prefixes.tolist(), scores.tolist(), strict=True)
    ):
        finished[b].append(Hypothesis(tokens, score, None if attention is None else attention[e]))


def _best_finished(
    best_done: np.ndarray, end_i: np.ndarray, end_j: np.ndarray, ranked: np.ndarray, k: int
) -> np.ndarray:
    """The nbest best finished scores per sentence (best_done: (n, nbest)), with those of
    the hypotheses just finished (`ranked`, at rows end_i, columns end_j of the top k)."""
    new = np.full((len(best_done), k), NEG_INF, dtype=np.float32)
    new[end_i, end_j] = ranked
    both = np.concatenate([best_done, new], axis=1)
    return -np.sort(-both, axis=1)[:, : best_done.shape[1]]


def beam_search(
    stepper: Stepper,
    max_lengths: np.ndarray,
    beam_size: int,
    nbest: int = 1,
    min_length: int = 0,
    normalization: str = "none",
    length_penalty: float = 0.0,
    return_attention: bool = False,
) -> list[list[Hypothesis]]:
    """The `nbest` best hypotheses of each of B sentences, `beam_size` kept per step.

    The stepper must already hold `beam_size` rows per sentence (row b·k + j: sentence b).
    """
    if not 1 <= nbest <= beam_size:
        raise ValueError(f"nbest ({nbest}) must be between 1 and beam_size ({beam_size})")
    k = beam_size
    batch = len(max_lengths)
    sentence = np.arange(batch)  # original index of each sentence still searching
    max_len = max_lengths.copy()
    scores = np.zeros((batch, k), dtype=np.float32)
    scores[:, 1:] = NEG_INF  # at first, all k rows hold the same empty prefix
    history = np.full((batch * k, 1), BOS, dtype=np.int64)
    attn_history: np.ndarray | None = None  # (n·k, t, S)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    best_done = np.full((batch, nbest), NEG_INF, dtype=np.float32)

    for t in range(int(max_len.max()) + 1):
        n = scores.shape[0]
        prev = history[:, -1]
        *found, attention = _beam_step(stepper, prev, t, k, min_length, t >= max_len)
        if return_attention and attention is not None:  # (n·k, t + 1, S)
            attn_history = _append_column(attn_history, attention.astype(np.float32))
        top_scores, rows, tokens = _extensions(scores, *found)
        is_eos = tokens == EOS

        # Finish the hypotheses that end in </s> within the top k.
        end_i, end_j = np.nonzero(is_eos[:, :k] & np.isfinite(top_scores[:, :k]))
        if len(end_i):
            ranked = normalize(top_scores[end_i, end_j], t + 1.0, normalization, length_penalty)
            end_rows = rows[end_i, end_j]
            attn = None if attn_history is None else attn_history[end_rows]
            _finish(finished, sentence[end_i], history[end_rows, 1:], ranked, attn)
            best_done = _best_finished(best_done, end_i, end_j, ranked, k)

        # The best k extensions that do not end carry on (a stable sort keeps their order).
        keep = np.argsort(is_eos, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(top_scores, keep, axis=1)
        rows = np.take_along_axis(rows, keep, axis=1)
        tokens = np.take_along_axis(tokens, keep, axis=1)

        # A sentence is done when no live beam can beat its nbest-th finished hypothesis:
        # the best live one may at most keep its log-probability up to the longest length.
        bound = normalize(scores[:, 0], (max_len + 1.0).astype(np.float32), normalization,
                          length_penalty)  # fmt: skip
        live = np.flatnonzero(~((t >= max_len) | (bound == NEG_INF) | (best_done[:, -1] >= bound)))
        if len(live) == 0:
            break
        rows = rows[live].reshape(-1)
        stepper.reorder(rows, len(live) < n)
        history = np.concatenate([history[rows], tokens[live].reshape(-1, 1)], axis=1)
        if attn_history is not None:
            attn_history = attn_history[rows]
        scores = scores[live]
        max_len = max_len[live]
        best_done = best_done[live]
        sentence = sentence[live]

    return [sorted(hyps, key=lambda h: -h.score)[:nbest] for hyps in finished]
