"""nmt_runtime.search is nmt.decode.search in numpy: fed the same log-probabilities, both
find the same hypotheses with the same scores, for every setting.

The "model" is a table of random distributions, one per (sentence, step, previous token),
with </s> likely enough that hypotheses end at every length: this drives the paths a
random network rarely takes (early </s>, min_length, the early-stop bound, sentences
leaving the batch) without any network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch

from nmt.decode import search as torch_search
from nmt_runtime import search as numpy_search

VOCAB, STEPS = 20, 30


def table(batch: int, seed: int) -> torch.Tensor:
    """(batch, STEPS, VOCAB, VOCAB) float32 log-probabilities; <pad>, <s> never written."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, STEPS, VOCAB, VOCAB, generator=g) * 2
    logits[..., 3] += torch.rand(batch, STEPS, VOCAB, 1, generator=g).squeeze(-1) * 4 - 1
    logits[..., :2] = float("-inf")
    return logits.log_softmax(-1)


@dataclass
class TableState:
    sentence: torch.Tensor  # (N,) which sentence's table a row reads
    t: torch.Tensor  # (N,) steps taken

    def reorder(self, index: torch.Tensor) -> TableState:
        return TableState(self.sentence[index], self.t[index])


def torch_step(log_probs: torch.Tensor):
    def step(prev: torch.Tensor, state: TableState):
        found = log_probs[state.sentence, state.t, prev]
        return found, TableState(state.sentence, state.t + 1), None

    return step


class TableStepper:
    def __init__(self, log_probs: np.ndarray, rows_per_sentence: int):
        self.log_probs = log_probs
        self.sentence = np.repeat(np.arange(log_probs.shape[0]), rows_per_sentence)
        self.t = np.zeros_like(self.sentence)

    def step(self, prev: np.ndarray):
        found = self.log_probs[self.sentence, self.t, prev]
        self.t = self.t + 1
        return found, None

    def reorder(self, rows: np.ndarray, shrunk: bool) -> None:
        self.sentence, self.t = self.sentence[rows], self.t[rows]


class TopTableStepper(TableStepper):
    """A stepper whose "graph" ranks: the path a top_k export takes (Stepper.step_top)."""

    top_k = True

    def __init__(self, log_probs: np.ndarray, rows_per_sentence: int):
        super().__init__(log_probs, rows_per_sentence)
        self.models = [type("Model", (), {"vocab": log_probs.shape[-1]})]
        self.counts: set[int] = set()

    def step(self, prev: np.ndarray):
        raise AssertionError("a top_k stepper is stepped with step_top")

    def step_top(self, prev: np.ndarray, count: int):
        found, _ = super().step(prev)
        self.counts.add(count)
        ids = np.argsort(-found, axis=1, kind="stable")[:, :count]
        return np.take_along_axis(found, ids, axis=1), ids, found[:, 3], None


SETTINGS = [
    {"beam": 1, "normalization": "none"},
    {"beam": 1, "normalization": "average", "min_length": 3},
    {"beam": 2, "nbest": 2, "normalization": "none"},
    {"beam": 5, "nbest": 5, "normalization": "gnmt", "length_penalty": 0.6},
    {"beam": 5, "nbest": 1, "normalization": "average", "min_length": 2},
    {"beam": 4, "nbest": 3, "normalization": "gnmt", "length_penalty": 2.0, "min_length": 5},
]


@pytest.mark.parametrize("ranked_in_graph", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("settings", SETTINGS)
def test_numpy_search_finds_what_torch_search_finds(settings, seed, ranked_in_graph):
    batch = 6
    log_probs = table(batch, seed)
    src_lengths = torch.tensor([1, 4, 9, 2, 12, 6])
    max_lengths = torch_search.max_output_lengths(src_lengths, 1.5, 3)
    common = {
        "min_length": settings.get("min_length", 0),
        "normalization": settings["normalization"],
        "length_penalty": settings.get("length_penalty", 0.0),
    }
    state = TableState(torch.arange(batch), torch.zeros(batch, dtype=torch.long))
    beam, nbest = settings["beam"], settings.get("nbest", 1)
    max_np = numpy_search.max_output_lengths(src_lengths.numpy(), 1.5, 3)
    assert max_np.tolist() == max_lengths.tolist()
    stepper = (TopTableStepper if ranked_in_graph and beam > 1 else TableStepper)(
        log_probs.numpy(), beam
    )
    if beam == 1:
        want = torch_search.greedy_search(torch_step(log_probs), state, max_lengths, **common)
        got = numpy_search.greedy_search(stepper, max_np, **common)
    else:
        want = torch_search.beam_search(
            torch_step(log_probs), state, max_lengths, beam, nbest, **common
        )
        got = numpy_search.beam_search(stepper, max_np, beam, nbest, **common)
    lengths = set()
    for w, g in zip(want, got, strict=True):
        assert [h.tokens for h in w] == [h.tokens for h in g]
        assert np.allclose([h.score for h in w], [h.score for h in g], rtol=0, atol=1e-5)
        lengths.update(len(h.tokens) for h in w)
    assert len(lengths) > 2  # hypotheses of several lengths: </s> was taken early too
    if isinstance(stepper, TopTableStepper):
        assert stepper.counts == {2 * beam + 1}  # the graph ranked only a row's best 2k + 1


def full_sort_extensions(scores: np.ndarray, log_probs: np.ndarray):
    """The reference: every one of a sentence's k·V sums, sorted (ties: lower index first)."""
    n, k = scores.shape
    vocab = log_probs.shape[1]
    candidates = (scores.reshape(-1, 1) + log_probs).reshape(n, k * vocab)
    index = np.broadcast_to(np.arange(k * vocab), candidates.shape)
    order = np.lexsort((index, -candidates), axis=1)[:, : min(2 * k, k * vocab)]
    top = np.take_along_axis(candidates, order, axis=1)
    return top, order // vocab + np.arange(n)[:, None] * k, order % vocab


@pytest.mark.parametrize("vocab", [3, 7, 500])  # below, near and far above 2·beam
@pytest.mark.parametrize("beam", [1, 2, 5])
def test_two_stage_top_k_is_the_full_sort(vocab, beam):
    rng = np.random.default_rng(vocab * 10 + beam)
    n = 7
    log_probs = (rng.standard_normal((n * beam, vocab)) * 3).astype(np.float32)
    log_probs[rng.random(log_probs.shape) < 0.2] = -np.inf  # masked tokens
    scores = (rng.standard_normal((n, beam)) * 5).astype(np.float32)
    scores[::2, 1:] = -np.inf  # first-step sentences: one live row
    want = full_sort_extensions(scores, log_probs)
    got = numpy_search._extensions(scores, *numpy_search._row_best(log_probs, 2 * beam), vocab)
    assert np.array_equal(want[0], got[0])
    finite = np.isfinite(want[0])  # -inf extensions are never used, so any will do
    assert np.array_equal(want[1][finite], got[1][finite])
    assert np.array_equal(want[2][finite], got[2][finite])


def test_two_stage_top_k_gives_the_same_scores_when_values_tie():
    rng = np.random.default_rng(3)
    n, beam, vocab = 5, 4, 50
    log_probs = -rng.integers(0, 4, (n * beam, vocab)).astype(np.float32)  # many ties
    scores = -rng.integers(0, 3, (n, beam)).astype(np.float32)
    want = full_sort_extensions(scores, log_probs)
    row_best = numpy_search._row_best(log_probs, 2 * beam)
    top, rows, tokens = numpy_search._extensions(scores, *row_best, vocab)
    assert np.array_equal(want[0], top)
    assert np.array_equal(scores.reshape(-1)[rows] + log_probs[rows, tokens], top)
    picked = (rows * vocab + tokens).tolist()  # no extension twice
    assert all(len(set(p)) == 2 * beam for p in picked)
