"""Sampled subword segmentations (subword regularization), drawn from a seeded generator.

SentencePiece samples segmentations itself, but its draws cannot be repeated across
processes: with sentencepiece 0.2.3, `set_random_generator_seed(s)` repeats a draw within
one process, yet another process draws differently for the same seed (measured: three
processes, three different draws), and older versions seed one generator per thread, so
the thread count changes the draw. A resumed run is another process. So the draws are
made here, from the model's own pieces and scores, with numpy's generator, from the same
distributions SentencePiece samples:

* unigram, nbest -1 (Kudo 2018): forward-filtering backward-sampling over the lattice of
  every vocabulary piece matching the text; segmentation x has probability
  ∝ exp(alpha · Σ score(piece)), a character outside the vocabulary being <unk> with
  SentencePiece's score for it (the lowest piece score - 10).
* unigram, nbest n > 1: one of SentencePiece's n best segmentations (a deterministic
  search), drawn with probability ∝ exp(alpha · score).
* bpe (BPE-dropout, Provilkov et al. 2020), as SentencePiece runs it: the best-scored
  pair of adjacent symbols that forms a piece is merged next, leftmost first, unless the
  merge is skipped, with probability alpha.

No piece holds "▁" past its start (SentencePiece's split_by_whitespace; were one to,
sentences would be drawn whole), so a segmentation never crosses a word start, and a
sentence's draw is its words' draws: a lattice path's score is a sum over words, and no
BPE merge spans two words. A word's lattice is therefore computed once and cached (up
to CACHED_WORDS words).
"""

from __future__ import annotations

import heapq
import math
import re
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import sentencepiece as spm

from nmt.vocab import SPECIALS, UNK

SPACE = "\u2581"  # "▁": SentencePiece's mark of a word start in normalized text
UNK_PENALTY = 10.0  # SentencePiece's unigram model: score(<unk>) = lowest score - 10

CACHED_WORDS = 200_000  # distinct words whose lattice is kept (about 1 kB each)


@dataclass(frozen=True)
class Lattice:
    """A word's lattice as its backward draw reads it: the pieces ending at position e
    are entries bounds[e - 1] to bounds[e] - 1 of the flat lists: their start, id, and
    cumulative weight (forward weight of the start × exp(alpha · score), in that group)."""

    bounds: list[int]
    starts: list[int]
    ids: list[int]
    cumulative: list[float]


class Uniforms:
    """Uniform numbers in [0, 1) from a numpy generator, one at a time, cheaply."""

    def __init__(self, rng: np.random.Generator, block: int = 65536):
        self.rng, self.block = rng, block
        self.values: list[float] = []
        self.next = 0

    def __call__(self) -> float:
        if self.next == len(self.values):
            self.values, self.next = self.rng.random(self.block).tolist(), 0
        self.next += 1
        return self.values[self.next - 1]


def piece_index(sp: spm.SentencePieceProcessor) -> dict[str, int]:
    """The pieces a segmentation may use, by text: all but the special and unused ones."""
    return {
        sp.id_to_piece(i): i
        for i in range(len(SPECIALS), sp.get_piece_size())
        if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_unused(i) or sp.is_byte(i))
    }


def words(
    sp: spm.SentencePieceProcessor, texts: Sequence[str], index: dict[str, int]
) -> Iterator[list[str]]:
    """Each text normalized as SentencePiece normalizes it ("▁" at word starts), cut before
    each word start, or whole if some piece holds "▁" past its start."""
    whole = any(SPACE in piece[1:] for piece in index)
    for pieces in sp.encode(list(texts), out_type=str):
        text = "".join(pieces)
        yield [text] if whole else [w for w in re.split(f"(?={SPACE})", text) if w]


def reachable(sp: spm.SentencePieceProcessor, texts: Sequence[str]) -> set[int]:
    """Ids of every piece that a sampled segmentation of `texts` can contain.

    Every sampler cuts the normalized text into vocabulary pieces (or <unk> for a
    character outside the vocabulary): BPE-dropout merges only into pieces of the
    vocabulary, the n best are lattice paths, and the lattice holds every piece that
    matches at each position, each of which lies on a complete path (a one-character step
    exists from every position: a piece or <unk>), so each can be drawn. The pieces a draw
    can use are hence exactly the vocabulary pieces that occur in a normalized word.
    """
    index = piece_index(sp)
    longest = max(map(len, index), default=0)
    distinct = {w for cut in words(sp, texts, index) for w in cut}
    return {
        index[w[a:b]]
        for w in distinct
        for a in range(len(w))
        for b in range(a + 1, min(len(w), a + longest) + 1)
        if w[a:b] in index
    }


class Segmenter:
    """Draws segmentations of texts for one SentencePiece model (`model_type` unigram | bpe)."""

    def __init__(self, sp: spm.SentencePieceProcessor, model_type: str, alpha: float, nbest: int):
        self.sp, self.model_type, self.alpha, self.nbest = sp, model_type, alpha, nbest
        self.index = piece_index(sp)
        self.score = {i: sp.get_score(i) for i in self.index.values()}
        self.unk_score = min(self.score.values(), default=0.0) - UNK_PENALTY
        self.longest = max(map(len, self.index), default=1)
        self.lattices: dict[str, Lattice] = {}

    def sample(self, texts: Sequence[str], rng: np.random.Generator) -> list[list[int]]:
        """One drawn segmentation (ids) per text; the same generator state, the same draw."""
        u = Uniforms(rng)
        if self.model_type == "unigram" and self.nbest > 1:
            return [self._from_nbest(text, u) for text in texts]
        draw = self._unigram if self.model_type == "unigram" else self._bpe
        return [
            _merge_unk([i for w in cut for i in draw(w, u)])
            for cut in words(self.sp, texts, self.index)
        ]

    # ---------------------------------------------------------------- unigram

    def _unigram(self, word: str, u: Uniforms) -> list[int]:
        lattice = self.lattices.get(word)
        if lattice is None:
            lattice = self._lattice(word)
            if len(self.lattices) < CACHED_WORDS:
                self.lattices[word] = lattice
        bounds, cumulative = lattice.bounds, lattice.cumulative
        ids = []
        end = len(word)
        while end > 0:  # backward: the piece ending here, given the forward weights
            lo, hi = bounds[end - 1], bounds[end]
            k = bisect_right(cumulative, u() * cumulative[hi - 1], lo, hi)
            ids.append(lattice.ids[k])
            end = lattice.starts[k]
        ids.reverse()
        return ids

    def _lattice(self, word: str) -> Lattice:
        """Forward weights of `word`'s lattice, as the backward draw reads them."""
        ending: list[list[tuple[int, int, float]]] = [[] for _ in word]
        for b in range(len(word)):
            single = False
            for e in range(b + 1, min(len(word), b + self.longest) + 1):
                i = self.index.get(word[b:e])
                if i is not None:
                    ending[e - 1].append((b, i, self.score[i]))
                    single = single or e == b + 1
            if not single:  # an unknown character: SentencePiece's <unk> node
                ending[b].append((b, UNK, self.unk_score))
        forward = [0.0] * (len(word) + 1)  # log of the summed weight of paths to each point
        lattice = Lattice([0], [], [], [])
        for e, nodes in enumerate(ending, start=1):
            logs = [forward[b] + self.alpha * s for b, _, s in nodes]
            top = max(logs)
            weights = [math.exp(x - top) for x in logs]
            forward[e] = top + math.log(sum(weights))
            lattice.bounds.append(lattice.bounds[-1] + len(nodes))
            lattice.starts.extend(b for b, _, _ in nodes)
            lattice.ids.extend(i for _, i, _ in nodes)
            lattice.cumulative.extend(_cumsum(weights))
        return lattice

    def _from_nbest(self, text: str, u: Uniforms) -> list[int]:
        found = self.sp.nbest_encode(text, nbest_size=self.nbest, out_type=str)
        if not found:
            return []
        logs = [self.alpha * self._path_score(pieces) for pieces in found]
        top = max(logs)
        cumulative = _cumsum([math.exp(x - top) for x in logs])
        pieces = found[bisect_right(cumulative, u() * cumulative[-1])]
        return [self.index.get(p, UNK) for p in pieces]

    def _path_score(self, pieces: list[str]) -> float:
        """A segmentation's score: its pieces' scores, each unknown character's <unk> score."""
        return sum(
            self.score[self.index[p]] if p in self.index else self.unk_score * len(p)
            for p in pieces
        )

    # ---------------------------------------------------------------- BPE-dropout

    def _bpe(self, word: str, u: Uniforms) -> list[int]:
        """SentencePiece's BPE encoding of `word` with each merge skipped with probability
        alpha (bpe_model.cc): merges by score, leftmost first; a skipped pair stays apart
        unless a neighbour's merge makes it a new pair."""
        symbols = list(word)
        following = [*range(1, len(symbols)), -1]
        preceding = list(range(-1, len(symbols) - 1))
        agenda: list[tuple[float, int, int, int]] = []
        for left in range(len(symbols) - 1):
            self._push(agenda, symbols, left, left + 1)
        while agenda:
            _, left, right, size = heapq.heappop(agenda)
            if not symbols[left] or not symbols[right]:
                continue  # merged away since it was queued
            if len(symbols[left]) + len(symbols[right]) != size or u() < self.alpha:
                continue  # out of date, or dropped
            symbols[left] += symbols[right]
            symbols[right] = ""
            following[left] = following[right]
            if following[right] >= 0:
                preceding[following[right]] = left
            if preceding[left] >= 0:
                self._push(agenda, symbols, preceding[left], left)
            if following[left] >= 0:
                self._push(agenda, symbols, left, following[left])
        return [self.index.get(s, UNK) for s in symbols if s]

    def _push(self, agenda: list, symbols: list[str], left: int, right: int) -> None:
        i = self.index.get(symbols[left] + symbols[right])
        if i is not None:  # highest score first, then leftmost
            heapq.heappush(
                agenda, (-self.score[i], left, right, len(symbols[left] + symbols[right]))
            )


def _cumsum(weights: list[float]) -> list[float]:
    out, total = [], 0.0
    for w in weights:
        total += w
        out.append(total)
    return out


def _merge_unk(ids: list[int]) -> list[int]:
    """Runs of <unk> as one <unk>, as SentencePiece writes them."""
    return [i for k, i in enumerate(ids) if i != UNK or k == 0 or ids[k - 1] != UNK]
