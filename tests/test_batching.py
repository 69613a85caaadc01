"""Batching (nmt.batching): token-budget batches of length-sorted pairs, and collation.

Checked here: every index lands in exactly one batch; a batch's padded size
n × max(source length, target length + 1) stays within the budget unless it is a single
pair too long for any batch; batches are cut from the length-sorted order; with an rng the
order is shuffled, reproducibly per seed; `collate` builds `tgt_in = <s> y`,
`tgt_out = y </s>` padded with PAD, keeps lengths and indices; `Batch.target_tokens`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nmt.batching import Batch, batch_indices, collate
from nmt.vocab import BOS, EOS, PAD


def lengths(seed: int, n: int = 300, high: int = 40) -> tuple[list[int], list[int]]:
    rng = np.random.default_rng(seed)
    return rng.integers(1, high, n).tolist(), rng.integers(0, high, n).tolist()


def padded_size(batch: list[int], src: list[int], tgt: list[int] | None) -> int:
    longest = max(max(src[i], 0 if tgt is None else tgt[i] + 1) for i in batch)
    return len(batch) * longest


def sort_key(i: int, src: list[int], tgt: list[int]) -> tuple[int, int]:
    return src[i], tgt[i]


CASES = [(seed, budget) for seed in range(3) for budget in (1, 45, 200, 1000, 100_000)]


@pytest.mark.parametrize(("seed", "budget"), CASES)
@pytest.mark.parametrize("shuffle", [False, True])
def test_every_index_in_exactly_one_batch(seed, budget, shuffle):
    src, tgt = lengths(seed)
    rng = np.random.default_rng(seed) if shuffle else None
    batches = batch_indices(src, tgt, budget, rng)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(src)))
    assert all(batches)


@pytest.mark.parametrize(("seed", "budget"), CASES)
@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_fit_the_budget(seed, budget, shuffle):
    src, tgt = lengths(seed)
    rng = np.random.default_rng(seed) if shuffle else None
    for batch in batch_indices(src, tgt, budget, rng):
        assert padded_size(batch, src, tgt) <= budget or len(batch) == 1


def test_budget_counts_target_plus_one():
    # target 9 + </s> = 10 positions per row: three rows need 30 tokens
    assert batch_indices([2, 2, 2], [9, 9, 9], 29) == [[0, 1], [2]]
    assert batch_indices([2, 2, 2], [9, 9, 9], 30) == [[0, 1, 2]]


def test_source_only_budget():
    src = [5, 5, 5, 5]
    assert batch_indices(src, None, 20) == [[0, 1, 2, 3]]
    assert batch_indices(src, None, 19) == [[0, 1, 2], [3]]
    for batch in batch_indices(*lengths(1)[:1], None, 100):
        assert padded_size(batch, lengths(1)[0], None) <= 100


def test_long_pair_gets_a_batch_of_its_own():
    batches = batch_indices([3, 500, 4, 3], [3, 2, 4, 3], 50)
    assert [1] in batches
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]


def test_batches_are_filled():
    """A greedy cut: adding the next pair in sorted order would break the budget."""
    src, tgt = lengths(4)
    budget = 300
    batches = batch_indices(src, tgt, budget)
    for batch, following in zip(batches, batches[1:], strict=False):
        assert padded_size([*batch, following[0]], src, tgt) > budget


@pytest.mark.parametrize("seed", range(3))
def test_batches_are_length_sorted(seed):
    src, tgt = lengths(seed)
    flat = [i for b in batch_indices(src, tgt, 500) for i in b]
    keys = [sort_key(i, src, tgt) for i in flat]
    assert keys == sorted(keys)


@pytest.mark.parametrize("seed", range(3))
def test_shuffled_batches_are_runs_of_the_sorted_order(seed):
    src, tgt = lengths(seed)
    batches = batch_indices(src, tgt, 500, np.random.default_rng(seed))
    for batch in batches:
        keys = [sort_key(i, src, tgt) for i in batch]
        assert keys == sorted(keys)
    # batches do not interleave: ordered by their first pair they are sorted overall
    ordered = sorted(batches, key=lambda b: sort_key(b[0], src, tgt))
    keys = [sort_key(i, src, tgt) for b in ordered for i in b]
    assert keys == sorted(keys)


def test_sorting_keeps_padding_low():
    """With target lengths close to source lengths, as in real corpora, few positions are
    padding: far fewer than when the corpus order is cut into batches of the same sizes."""
    src = np.random.default_rng(5).integers(1, 50, 400)
    tgt = np.maximum(0, src + np.random.default_rng(6).integers(-2, 3, 400))
    src, tgt = src.tolist(), tgt.tolist()
    batches = batch_indices(src, tgt, 400)
    real = sum(max(s, t + 1) for s, t in zip(src, tgt, strict=True))
    padded = sum(padded_size(b, src, tgt) for b in batches)
    assert padded < 1.1 * real
    cuts = np.cumsum([len(b) for b in batches])[:-1]
    unsorted = sum(padded_size(b.tolist(), src, tgt) for b in np.split(np.arange(400), cuts))
    assert unsorted > 1.5 * real


def test_without_rng_is_deterministic():
    src, tgt = lengths(0)
    assert batch_indices(src, tgt, 300) == batch_indices(src, tgt, 300)


def test_same_seed_same_batches_other_seed_other_order():
    src, tgt = lengths(0)
    a = batch_indices(src, tgt, 300, np.random.default_rng(7))
    b = batch_indices(src, tgt, 300, np.random.default_rng(7))
    c = batch_indices(src, tgt, 300, np.random.default_rng(8))
    assert a == b
    assert a != c
    unshuffled = batch_indices(src, tgt, 300)
    assert a != unshuffled


def test_ties_are_broken_at_random_with_rng():
    src, tgt = [4] * 50, [4] * 50
    orders = {
        tuple(i for b in batch_indices(src, tgt, 25, np.random.default_rng(s)) for i in b)
        for s in range(5)
    }
    assert len(orders) > 1


def test_no_pairs_no_batches():
    assert batch_indices([], [], 100) == []


# ---------------------------------------------------------------------------- collate

SRC = [[10, 11, 12], [13], [14, 15]]
TGT = [[20], [21, 22, 23], []]


def test_collate_shapes_and_padding():
    batch = collate(SRC, TGT, [2, 0, 1])
    assert batch.indices == [2, 0, 1]
    assert batch.src.tolist() == [[14, 15, PAD], [10, 11, 12], [13, PAD, PAD]]
    assert batch.src_lengths.tolist() == [2, 3, 1]
    assert batch.tgt_in.tolist() == [
        [BOS, PAD, PAD, PAD],
        [BOS, 20, PAD, PAD],
        [BOS, 21, 22, 23],
    ]
    assert batch.tgt_out.tolist() == [
        [EOS, PAD, PAD, PAD],
        [20, EOS, PAD, PAD],
        [21, 22, 23, EOS],
    ]
    for t in (batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out):
        assert t.dtype == torch.long


def test_collate_subset_pads_to_its_own_longest():
    batch = collate(SRC, TGT, [1])
    assert batch.src.tolist() == [[13]]
    assert batch.tgt_in.tolist() == [[BOS, 21, 22, 23]]


def test_tgt_in_and_tgt_out_are_shifted():
    batch = collate(SRC, TGT, [0, 1, 2])
    real = batch.tgt_out != PAD
    assert torch.equal(batch.tgt_in[:, 0], torch.full((3,), BOS))
    # where tgt_out holds a real token before </s>, tgt_in holds it one step later
    body = real & (batch.tgt_out != EOS)
    assert torch.equal(batch.tgt_in[:, 1:][body[:, :-1]], batch.tgt_out[:, :-1][body[:, :-1]])
    assert (batch.tgt_out == EOS).sum(dim=1).tolist() == [1, 1, 1]


def test_target_tokens_counts_eos_not_padding():
    assert collate(SRC, TGT, [0, 1, 2]).target_tokens == 1 + 3 + 0 + 3
    assert collate(SRC, TGT, [2]).target_tokens == 1


def test_collate_without_targets():
    batch = collate(SRC, None, [1, 0])
    assert batch.tgt_in is None and batch.tgt_out is None
    assert batch.target_tokens == 0
    assert batch.src.tolist() == [[13, PAD, PAD], [10, 11, 12]]


def test_to_keeps_lengths_on_cpu_and_indices():
    batch = collate(SRC, TGT, [0, 2])
    moved = batch.to(torch.device("cpu"))
    assert isinstance(moved, Batch)
    assert moved.indices == [0, 2]
    assert moved.src_lengths.device.type == "cpu"
    assert torch.equal(moved.tgt_out, batch.tgt_out)


def test_batches_and_collate_restore_corpus_order():
    src_ids = [[5] * n for n in lengths(2, n=50)[0]]
    tgt_ids = [[6] * n for n in lengths(2, n=50)[1]]
    rows = {}
    for indices in batch_indices(
        [len(s) for s in src_ids], [len(t) for t in tgt_ids], 120, np.random.default_rng(0)
    ):
        batch = collate(src_ids, tgt_ids, indices)
        for row, i in enumerate(batch.indices):
            rows[i] = batch.src[row, : batch.src_lengths[row]].tolist()
    assert [rows[i] for i in range(len(src_ids))] == src_ids
