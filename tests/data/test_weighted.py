"""Weighted corpora (nmt.data.weighted): each epoch's pairs drawn from several corpora in
proportion to their weights, from (seed, epoch) alone.

Checked here: the per-epoch shares sum to the pairs and follow the weights; the pairs a
seeded run trains on come from each corpus in its weight's proportion (within 2%); a
corpus drawn more than its size shows every pair before any repeats; a schedule resumed
mid-epoch gives the batches of an uninterrupted one; a single corpus with weight 1 gives
exactly the batches of no weights; selections over a memory-mapped-like `Ragged` plan
from its lengths.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nmt.data.batching import EpochSchedule
from nmt.data.ragged import Ragged
from nmt.data.weighted import epoch_pairs, shares, weighted_ids

SIZES = [300, 60, 140]  # three corpora, concatenated


def corpora(sizes=SIZES):
    """Rows whose first id is their corpus (1 + c) and lengths 1..12, as a Ragged."""
    rng = np.random.default_rng(0)
    src, tgt = [], []
    for c, size in enumerate(sizes):
        for _ in range(size):
            src.append([1 + c] * int(rng.integers(1, 12)))
            tgt.append([1 + c] * int(rng.integers(1, 12)))
    dtype = np.dtype(np.uint16)
    return Ragged.from_rows(src, dtype), Ragged.from_rows(tgt, dtype)


def test_shares_sum_to_the_pairs_and_follow_the_weights():
    assert shares(SIZES, [1, 1, 2]).tolist() == [125, 125, 250]
    assert shares([10, 10, 10], [1, 1, 1]).tolist() == [10, 10, 10]
    assert shares([5, 5], [1, 2]).tolist() == [3, 7]  # 3.33, 6.67: the larger remainder
    assert shares([7, 0], [0, 1]).tolist() == [0, 7]


def test_sampled_pairs_follow_the_weights():
    src, tgt = corpora()
    weights = [0.2, 0.5, 0.3]
    ids = weighted_ids(lambda epoch: (src, tgt), SIZES, weights, seed=3)
    counts = np.zeros(3)
    for batch, place in itertools.islice(EpochSchedule(ids, 60, seed=3), 2000):
        counts += np.bincount(batch.src[:, 0].numpy() - 1, minlength=3)
        if place.epoch == 4:
            break
    assert np.allclose(counts / counts.sum(), weights, atol=0.02)


def test_a_corpus_drawn_beyond_its_size_shows_each_pair_before_repeating():
    pairs = epoch_pairs([90, 10], [1, 1], seed=1, epoch=0)  # corpus 1: 50 draws of 10 pairs
    small = pairs[pairs >= 90] - 90
    assert len(small) == 50
    for k in range(5):
        assert sorted(small[10 * k : 10 * (k + 1)].tolist()) == list(range(10))
    big = [epoch_pairs([90, 10], [1, 1], seed=1, epoch=e) for e in range(2)]
    seen = np.concatenate([b[b < 90] for b in big])  # 50 draws an epoch: 90 before a repeat
    assert sorted(seen[:90].tolist()) == list(range(90))


@pytest.mark.parametrize("stop", [0, 7, 23])
def test_a_resumed_schedule_gives_the_batches_of_an_uninterrupted_one(stop):
    src, tgt = corpora()
    ids = weighted_ids(lambda epoch: (src, tgt), SIZES, [1, 3, 2], seed=9)
    whole = EpochSchedule(ids, 50, seed=9)
    taken = list(itertools.islice(whole, stop + 40))
    place = taken[stop - 1][1] if stop else None
    resumed = EpochSchedule(
        ids, 50, seed=9, epoch=place.epoch if place else 0, position=place.position if place else 0
    )
    for (a, pa), (b, pb) in zip(taken[stop:], itertools.islice(resumed, 40), strict=True):
        assert pa == pb and a.indices == b.indices and a.src.equal(b.src)
        assert a.tgt_out.equal(b.tgt_out)


def test_one_corpus_with_weight_one_is_todays_batches():
    src, tgt = corpora([200])
    plain = EpochSchedule(lambda epoch: (src, tgt), 40, seed=4)
    weighted = EpochSchedule(weighted_ids(lambda epoch: (src, tgt), [200], [1], 4), 40, seed=4)
    pairs = zip(itertools.islice(plain, 60), itertools.islice(weighted, 60), strict=True)
    for (a, pa), (b, pb) in pairs:  # past the first epoch's end
        assert pa == pb and a.indices == b.indices and a.src.equal(b.src)


def test_epochs_draw_different_pairs_from_the_same_seed():
    a, b = (epoch_pairs(SIZES, [1, 1, 1], seed=2, epoch=e) for e in (0, 1))
    assert len(a) == len(b) == sum(SIZES) and not np.array_equal(np.sort(a), np.sort(b))
