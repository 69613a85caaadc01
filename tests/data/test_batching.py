"""Batching (nmt.data.batching): token-budget batches of length-sorted pairs, and collation.

Checked here: every index lands in exactly one batch; a batch's padded size
n × max(source length, target length + 1) stays within the budget unless it is a single
pair too long for any batch; batches are cut from the length-sorted order; with an rng the
order is shuffled, reproducibly per seed; `collate` builds `tgt_in = <s> y`,
`tgt_out = y </s>` padded with PAD, keeps lengths and indices; `Batch.target_tokens`;
`EpochSchedule` gives each epoch the batches of (seed, epoch) collated from that epoch's
ids (its last batch too, though its place has rolled over), reports the place each batch
leaves it at, continues exactly from a mid-epoch place, and leaves fixed ids uncopied.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nmt.data.batching import (
    Batch,
    EpochSchedule,
    batch_indices,
    collate,
    lengths_of,
    plan_batches,
)
from nmt.data.ragged import Ragged
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


# ---------------------------------------------------------------------------- EpochSchedule


def ids_of(epoch: int, n: int = 40) -> tuple[list[list[int]], list[list[int]]]:
    """Ids that differ by epoch, in content and length, as sampled segmentations do."""
    src, tgt = lengths(100 + epoch, n=n, high=12)
    return [[10 + epoch] * k for k in src], [[20 + epoch] * k for k in tgt]


def take(schedule: EpochSchedule, count: int) -> list[tuple[Batch, bool, int, int]]:
    """`count` batches with epoch_end and the place (epoch, position) after each."""
    out, batches = [], iter(schedule)
    for _ in range(count):
        batch, place = next(batches)
        out.append((batch, place.epoch_end, place.epoch, place.position))
    return out


def test_schedule_batches_are_those_of_seed_and_epoch():
    """Each epoch: the batches `batch_indices` cuts with an rng of (seed, epoch), collated
    from that epoch's ids, the place rolling over after its last batch."""
    schedule = EpochSchedule(ids_of, 60, seed=3)
    expected = []
    for epoch in range(3):
        src, tgt = ids_of(epoch)
        rng = np.random.default_rng([3, epoch])
        rows = batch_indices([len(x) for x in src], [len(y) for y in tgt], 60, rng)
        for k, r in enumerate(rows):
            end = k == len(rows) - 1
            expected.append((collate(src, tgt, r), end, epoch + end, 0 if end else k + 1))
    found = take(schedule, len(expected))
    for (batch, end, epoch, position), (want, want_end, want_epoch, want_position) in zip(
        found, expected, strict=True
    ):
        assert torch.equal(batch.src, want.src) and torch.equal(batch.tgt_out, want.tgt_out)
        assert batch.indices == want.indices
        assert (end, epoch, position) == (want_end, want_epoch, want_position)


def test_an_epochs_last_batch_comes_from_its_own_ids():
    """The place rolls over when the last batch is taken; that batch must still hold the
    ending epoch's ids, and the next epoch's ids are asked for once, when needed."""
    asked = []

    def ids_for_epoch(epoch):
        asked.append(epoch)
        return ids_of(epoch)

    schedule = EpochSchedule(ids_for_epoch, 60, seed=0)
    per_epoch = len(schedule.batches)
    found = take(schedule, per_epoch + 1)
    assert asked == [0, 1]
    last, first = found[per_epoch - 1], found[per_epoch]
    assert last[1] and set(last[0].src[last[0].src != PAD].tolist()) == {10}
    assert set(first[0].src[first[0].src != PAD].tolist()) == {11}
    assert schedule.epochs_done == round(1 + 1 / len(schedule.batches), 2)


def test_a_schedule_started_mid_epoch_continues_as_the_uninterrupted_one():
    straight = take(EpochSchedule(ids_of, 60, 5), 30)
    at = 11
    epoch, position = straight[at - 1][2], straight[at - 1][3]
    resumed = take(EpochSchedule(ids_of, 60, 5, epoch, position), 30 - at)
    for (a, *rest_a), (b, *rest_b) in zip(straight[at:], resumed, strict=True):
        assert a.indices == b.indices and torch.equal(a.tgt_in, b.tgt_in)
        assert rest_a == rest_b


def test_fixed_ids_are_never_copied():
    """Without sampling the ids are the same lists every epoch (nothing re-encoded)."""
    src, tgt = ids_of(0)
    calls = []
    schedule = EpochSchedule(lambda e: calls.append(e) or (src, tgt), 60, 0)
    take(schedule, 3 * len(schedule.batches))
    assert schedule.ids[0] is src and schedule.ids[1] is tgt and calls == [0, 1, 2]


def test_a_place_says_how_far_the_epochs_went():
    """Place.epochs_done is fractional and whole at an epoch's end; `taken` counts the
    batch's own epoch, so a bar resumed mid-epoch starts where it stood."""
    schedule = EpochSchedule(ids_of, 60, seed=1)
    per_epoch = len(schedule.batches)
    batches = iter(schedule)
    places = [next(batches)[1] for _ in range(per_epoch + 1)]
    assert [p.taken for p in places[:per_epoch]] == list(range(1, per_epoch + 1))
    assert places[per_epoch - 1].epoch_end and places[per_epoch - 1].epochs_done == 1.0
    assert places[0].epochs_done == round(1 / per_epoch, 2)
    resumed = EpochSchedule(ids_of, 60, seed=1, epoch=0, position=2)
    assert resumed.epochs_done == round(2 / per_epoch, 2)
    assert next(iter(resumed))[1] == places[2]


# ---------------------------------------------------------------- the numpy plan


def list_plan(src_lengths, tgt_lengths, batch_tokens, rng=None):
    """The batch plan as nmt cut it before plan_batches (a Python loop over every pair,
    batches as lists): plan_batches must cut exactly these batches, in this order."""
    src = np.asarray(src_lengths, dtype=np.int64)
    tgt = np.zeros_like(src) if tgt_lengths is None else np.asarray(tgt_lengths) + 1
    tiebreak = rng.random(len(src)) if rng is not None else np.arange(len(src))
    order = np.lexsort((tiebreak, tgt, src))
    batches, current, longest = [], [], 0
    for i in order.tolist():
        size = max(int(src[i]), int(tgt[i]))
        if current and max(longest, size) * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(i)
        longest = max(longest, size)
    if current:
        batches.append(current)
    if rng is not None:
        rng.shuffle(batches)
    return batches


@pytest.mark.parametrize(("seed", "budget"), [*CASES, (3, 7), (4, 3000)])
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("source_only", [False, True])
def test_numpy_plan_cuts_the_list_plans_batches(seed, budget, shuffle, source_only):
    src, tgt = lengths(seed, n=2000, high=120)
    tgt = None if source_only else tgt
    rngs = [np.random.default_rng([seed, 1]) if shuffle else None for _ in range(2)]
    plan = plan_batches(np.asarray(src), None if tgt is None else np.asarray(tgt), budget, rngs[0])
    found = [plan.rows(k).tolist() for k in range(len(plan))]
    assert found == list_plan(src, tgt, budget, rngs[1])
    assert (
        batch_indices(src, tgt, budget, np.random.default_rng([seed, 1]) if shuffle else None)
        == found
    )


def test_schedule_over_ragged_rows_gives_the_batches_of_lists():
    """A memory-mapped split (Ragged) trains on exactly the batches of the same rows as lists."""
    src, tgt = ids_of(0)
    ragged = (Ragged.from_rows(src, np.uint16), Ragged.from_rows(tgt, np.uint16))
    a = take(EpochSchedule(lambda e: (src, tgt), 60, seed=3, position=2), 12)
    b = take(EpochSchedule(lambda e: ragged, 60, seed=3, position=2), 12)
    for (x, *xp), (y, *yp) in zip(a, b, strict=True):
        assert xp == yp and x.indices == y.indices
        for name in ("src", "src_lengths", "tgt_in", "tgt_out"):
            assert torch.equal(getattr(x, name), getattr(y, name)), name


def test_an_epochs_plan_keeps_four_bytes_a_pair():
    """Lengths are read from a Ragged's offsets into int32 without an int64 copy, and the
    plan keeps an int32 order: the same plan as from int64 lengths, at half the memory."""
    src, tgt = ids_of(1)
    ragged = Ragged.from_rows(src, np.uint16)
    found = lengths_of(ragged)
    assert found.dtype == np.int32 and found.tolist() == [len(row) for row in src]
    wide = [np.array([len(r) for r in rows], dtype=np.int64) for rows in (src, tgt)]
    plan = plan_batches(*wide, 60, np.random.default_rng(5))
    narrow = plan_batches(lengths_of(ragged), lengths_of(tgt), 60, np.random.default_rng(5))
    assert plan.order.dtype == np.int32
    assert np.array_equal(plan.order, narrow.order)
    assert np.array_equal(plan.sequence, narrow.sequence)


@pytest.mark.parametrize("high", [120, 254, 255, 1000])
@pytest.mark.parametrize("shuffle", [False, True])
def test_the_length_order_is_lexsorts_whether_or_not_lengths_fit_one_key(high, shuffle):
    """Lengths up to 254 sort as one 16-bit key (two sorts), longer ones by lexsort: both
    give the list plan's batches, equal lengths in the order of the rng's draws."""
    src, tgt = lengths(7, n=3000, high=high)
    rngs = [np.random.default_rng([7, 2]) if shuffle else None for _ in range(2)]
    plan = plan_batches(np.asarray(src), np.asarray(tgt), 4 * high, rngs[0])
    found = [plan.rows(k).tolist() for k in range(len(plan))]
    assert found == list_plan(src, tgt, 4 * high, rngs[1])
