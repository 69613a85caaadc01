"""Weighted corpora: each epoch's training pairs drawn from several corpora in proportion
to their weights (OpenNMT-py's weighted corpora), as a pure function of (seed, epoch).

The corpora live in one prepared array set, concatenated in the recipe's order, with each
pair's corpus known by its place: corpus c holds pairs starts[c]..starts[c + 1]. (One
array set, not one per corpus, so the tokenizers, the filters and `nmt prepare` stay as
they are; the corpus of a pair is its range, so no array per pair is needed.)

An epoch is N draws, N the number of pairs over all corpora (what an epoch is without
weights): corpus c gives n_c = N × w_c / Σw of them (largest remainders make the n_c sum
to N). Corpus c is read as an endless stream of passes, each a permutation of its pairs
drawn from rng(seed, c, pass); epoch e takes that stream's draws e × n_c ..
(e + 1) × n_c - 1. So a corpus weighted above its size repeats pairs only after showing
each once, one below it shows a different part of itself each epoch, and an epoch's
pairs depend on (seed, epoch) alone: a resumed run, which recomputes its epoch, sees the
same batches (`EpochSchedule` plans them from the selected pairs' lengths as always).
A single corpus is not sampled at all (`weighted_ids` gives the ids as they are), so
today's batches stay exactly today's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nmt.data.batching import IdsForEpoch, lengths_of


def shares(sizes: Sequence[int], weights: Sequence[float]) -> np.ndarray:
    """(corpora,) int64: each corpus's draws per epoch, summing to sum(sizes)."""
    total = int(sum(sizes))
    w = np.asarray(weights, dtype=np.float64)
    exact = total * w / w.sum()
    out = np.floor(exact).astype(np.int64)
    left = total - int(out.sum())
    # largest remainders first, ties to the earlier corpus (stable sort)
    out[np.argsort(-(exact - out), kind="stable")[:left]] += 1
    return out


def epoch_pairs(
    sizes: Sequence[int], weights: Sequence[float], seed: int, epoch: int
) -> np.ndarray:
    """(sum(sizes),) int64: the pair indices (into the concatenated corpora) epoch
    `epoch` trains on, corpus after corpus; batches are planned and shuffled from them."""
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    parts = []
    for c, (size, n) in enumerate(zip(sizes, shares(sizes, weights), strict=True)):
        if n == 0:
            continue
        parts.append(starts[c] + _stream(int(size), seed, c, epoch * int(n), int(n)))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def _stream(size: int, seed: int, corpus: int, first: int, count: int) -> np.ndarray:
    """Draws first .. first + count - 1 of a corpus's stream of seeded permutations."""
    out, at = [], first
    while at < first + count:
        p, offset = divmod(at, size)
        take = min(size - offset, first + count - at)
        perm = np.random.default_rng([seed, corpus, p]).permutation(size)
        out.append(perm[offset : offset + take])
        at += take
    return np.concatenate(out)


class Selected(Sequence):
    """Rows `index` of a sequence of id rows (lists or a `Ragged`), with `lengths`
    (what `lengths_of` reads) so that planning an epoch needs no Python list of rows."""

    def __init__(self, rows: Sequence, index: np.ndarray):
        self.rows, self.index = rows, index
        self.lengths = lengths_of(rows)[index]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i):  # type: ignore[override]
        return self.rows[int(self.index[i])]


def weighted_ids(
    ids_for_epoch: IdsForEpoch, sizes: Sequence[int], weights: Sequence[float], seed: int
) -> IdsForEpoch:
    """`ids_for_epoch` with each epoch's rows drawn by `epoch_pairs`; a single corpus
    unchanged (no draw, no reordering: the same batches as without weights)."""
    if len(sizes) == 1:
        return ids_for_epoch

    def drawn(epoch: int) -> tuple[Sequence, Sequence]:
        src, tgt = ids_for_epoch(epoch)
        index = epoch_pairs(sizes, weights, seed, epoch)
        return Selected(src, index), Selected(tgt, index)

    return drawn


def weights_line(sizes: Sequence[int], weights: Sequence[float]) -> str:
    """The log line of a weighted data.train: what each epoch draws from each corpus."""
    draws = " + ".join(str(n) for n in shares(sizes, weights).tolist())
    held = " + ".join(str(n) for n in sizes)
    ratio = " : ".join(f"{w:g}" for w in weights)
    return (
        f"data.train: each epoch draws {draws} pairs from its {len(sizes)} corpora "
        f"({held} pairs, weights {ratio})"
    )
