"""Batches by a token budget, length-bucketed so that little of a batch is padding.

A batch holds as many sentence pairs as fit `batch_tokens`, counting every padded
position of its longer side: sentences × max(longest source, longest target + 1). Pairs
are sorted by length before they are cut into batches (with ties broken at random for
training, so batches differ between epochs), and the batch order is shuffled by the
seed. The target is stored twice, shifted: `tgt_in = <s> y` is what the decoder reads,
`tgt_out = y </s>` what it must predict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from nmt.vocab import BOS, EOS, PAD


@dataclass
class Batch:
    src: torch.Tensor  # (B, S) token ids, PAD after each sentence's end
    src_lengths: torch.Tensor  # (B,) on the CPU, as packing wants it
    tgt_in: torch.Tensor | None  # (B, T) <s> y, or None when translating
    tgt_out: torch.Tensor | None  # (B, T) y </s>
    indices: list[int]  # each row's position in the corpus, to restore its order

    def to(self, device: torch.device) -> Batch:
        def move(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(
            move(self.src), self.src_lengths, move(self.tgt_in), move(self.tgt_out), self.indices
        )

    @property
    def target_tokens(self) -> int:
        """Real (non-padding) target tokens, </s> included: the unit of the loss."""
        return 0 if self.tgt_out is None else int((self.tgt_out != PAD).sum())


def batch_indices(
    src_lengths: Sequence[int] | np.ndarray,
    tgt_lengths: Sequence[int] | np.ndarray | None,
    batch_tokens: int,
    rng: np.random.Generator | None = None,
) -> list[list[int]]:
    """Cut pair indices into length-sorted batches within the budget (`plan_batches`, as
    lists: for the small sets that evaluation and translation batch)."""
    plan = plan_batches(src_lengths, tgt_lengths, batch_tokens, rng)
    return [plan.rows(k).tolist() for k in range(len(plan))]


@dataclass(frozen=True)
class BatchPlan:
    """An epoch's batches as three numpy arrays, no Python object per pair: batch b holds
    the pairs order[bounds[b]:bounds[b + 1]], and batches are taken in `sequence`'s order."""

    order: np.ndarray  # (n,) pair indices, sorted by source then target length
    bounds: np.ndarray  # (batches + 1,) where each batch starts in `order`
    sequence: np.ndarray  # (batches,) batch numbers in the order they are taken

    def __len__(self) -> int:
        return len(self.sequence)

    def rows(self, k: int) -> np.ndarray:
        """The pair indices of the k-th batch taken."""
        b = int(self.sequence[k])
        return self.order[self.bounds[b] : self.bounds[b + 1]]


def plan_batches(
    src_lengths: Sequence[int] | np.ndarray,
    tgt_lengths: Sequence[int] | np.ndarray | None,
    batch_tokens: int,
    rng: np.random.Generator | None = None,
) -> BatchPlan:
    """Sort pairs by length and cut the sorted order greedily: a batch takes the next pair
    unless its padded size, rows × max(longest source, longest target + 1), would pass
    `batch_tokens` (a first pair is always taken, however long).

    With `rng` (training), equal lengths are ordered at random and the batches are
    shuffled; without it (evaluation, translation), the order is deterministic. The rng
    draws n uniforms, then one shuffle of the batches: a plan depends on the lengths and
    the rng's state alone.
    """
    # int32 lengths and an int32 order: an epoch's plan over tens of millions of pairs is
    # then about 28 bytes a pair while it is made and 4 while it is used (the same plan:
    # sorting equal values in another width orders them alike)
    src = np.asarray(src_lengths, dtype=np.int32)
    tgt = np.zeros_like(src) if tgt_lengths is None else np.asarray(tgt_lengths, np.int32) + 1
    order = _length_order(src, tgt, rng)  # by source length, then target length
    if len(order) < np.iinfo(np.int32).max:
        order = order.astype(np.int32)
    bounds = _cut(np.maximum(src, tgt)[order], batch_tokens)
    sequence = np.arange(len(bounds) - 1)
    if rng is not None:
        rng.shuffle(sequence)
    return BatchPlan(order, bounds, sequence)


def _length_order(src: np.ndarray, tgt: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """(n,) int64: the pairs by source length, then target length, then a uniform draw per
    pair (with `rng`) or their index: np.lexsort((draws, tgt, src)), in two sorts where
    the lengths fit one 16-bit key (always with data.max_length up to 254): a stable sort
    of the draws, then a stable radix sort of the key in that order, which keeps the
    draws' order among equal keys. Twice as fast as lexsort's three passes (which is most
    of the time to a big corpus's first step), and the same order."""
    n = len(src)
    draws = rng.random(n) if rng is not None else None
    width = int(tgt.max()) + 1 if n else 1
    if n and (int(src.max()) + 1) * width <= 1 << 16:
        key = (src * width + tgt).astype(np.uint16)
        if draws is None:
            return np.argsort(key, kind="stable")
        by_draw = np.argsort(draws, kind="stable")
        del draws
        return by_draw[np.argsort(key[by_draw], kind="stable")]
    return np.lexsort((np.arange(n) if draws is None else draws, tgt, src))


def _cut(sizes: np.ndarray, budget: int) -> np.ndarray:
    """Batch starts in `sizes` (the sorted pairs' padded widths), and len(sizes) last.

    A batch from s ends before the first j > s with max(sizes[s..j]) × (j - s + 1) >
    budget; that product never falls as j grows, so the batch is the prefix of a window
    where it stays within the budget, the window doubled until the cut falls inside it."""
    n, starts, s, window = len(sizes), [0], 0, 64
    while s < n:
        while True:
            w = min(window, n - s)
            padded = np.maximum.accumulate(sizes[s : s + w]) * np.arange(1, w + 1)
            fit = int(np.count_nonzero(padded <= budget))
            if fit < w or s + w == n:
                break
            window *= 2
        s += max(fit, 1)
        starts.append(s)
        window = max(64, 2 * max(fit, 1))
    return np.asarray(starts if n else [0], dtype=np.int64)


def collate(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]] | None,
    indices: Sequence[int],
) -> Batch:
    """Pad the chosen pairs into tensors (one numpy fill per row, no per-token Python
    work); rows may be lists or numpy arrays (a memory-mapped dataset's)."""
    rows = [int(i) for i in indices]
    src = _pad([src_ids[i] for i in rows])
    lengths = torch.tensor([len(src_ids[i]) for i in rows], dtype=torch.long)
    if tgt_ids is None:
        return Batch(src, lengths, None, None, rows)
    targets = [tgt_ids[i] for i in rows]
    return Batch(src, lengths, _pad(targets, before=BOS), _pad(targets, after=EOS), rows)


def _pad(
    rows: Sequence[Sequence[int]], before: int | None = None, after: int | None = None
) -> torch.Tensor:
    """(len(rows), longest + 1 if `before` or `after` else longest) int64, PAD-filled."""
    extra = int(before is not None or after is not None)
    out = np.full((len(rows), max(len(r) for r in rows) + extra), PAD, dtype=np.int64)
    first = int(before is not None)
    for r, row in enumerate(rows):
        if before is not None:
            out[r, 0] = before
        out[r, first : first + len(row)] = row
        if after is not None:
            out[r, len(row)] = after
    return torch.from_numpy(out)


def lengths_of(ids: Sequence[Sequence[int]]) -> np.ndarray:
    """(n,) int32: each row's length, from a Ragged's offsets (no int64 copy of them) or
    by counting lists."""
    offsets = getattr(ids, "offsets", None)
    if offsets is not None:
        out = np.empty(len(offsets) - 1, dtype=np.int32)
        return np.subtract(offsets[1:], offsets[:-1], out=out, casting="unsafe")
    found = getattr(ids, "lengths", None)
    if found is not None:
        return np.asarray(found, dtype=np.int32)
    return np.fromiter((len(x) for x in ids), dtype=np.int32, count=len(ids))


# epoch → that epoch's (source ids, target ids) of the training pairs (Data.train_ids)
IdsForEpoch = Callable[[int], tuple[Sequence[Sequence[int]], Sequence[Sequence[int]]]]


@dataclass(frozen=True)
class Place:
    """Where the schedule stands once a batch is taken: `epoch` epochs completed and
    `position` batches taken of the next one. Taking an epoch's last batch rolls it over
    (`epoch_end`: epoch + 1, position 0). `batches`: how many the batch's epoch has."""

    epoch: int
    position: int
    batches: int
    epoch_end: bool

    @property
    def epochs_done(self) -> float:
        """Epochs done, fractional: 2.5 is halfway through the third."""
        return round(self.epoch + self.position / self.batches, 2)

    @property
    def taken(self) -> int:
        """Batches taken of the batch's own epoch, this one included."""
        return self.batches if self.epoch_end else self.position


class EpochSchedule:
    """The training batches, epoch after epoch, from `epoch` and `position` on (where a
    resumed run stands: nmt.training.state.TrainerState keeps them).

    Each epoch's token ids come from `ids_for_epoch(epoch)`: the same lists every epoch,
    or, with subword sampling, a segmentation drawn for that epoch; lists, or a prepared
    dataset's memory-mapped `Ragged` rows. Its batches are cut (`plan_batches`) from
    those ids' lengths with an rng of (seed, epoch); both depend on (seed, epoch)
    only, so a resumed run sees the same batches. Yields (batch, place): the batch
    collated from its own epoch's ids, and the `Place` it leaves the schedule at, which
    the training loop records; the next epoch's ids and batches are made when its first
    batch is taken. The schedule changes nothing but its own cursor.
    """

    def __init__(
        self,
        ids_for_epoch: IdsForEpoch,
        batch_tokens: int,
        seed: int,
        epoch: int = 0,
        position: int = 0,
    ):
        self.ids_for_epoch = ids_for_epoch
        self.batch_tokens, self.seed = batch_tokens, seed
        self.place = Place(epoch, position, 1, False)  # `batches` is set by _start_epoch
        self._start_epoch()

    def _start_epoch(self) -> None:
        self.epoch = self.place.epoch  # the epoch of `ids` and `batches`
        self.ids = self.ids_for_epoch(self.epoch)
        src, tgt = self.ids
        rng = np.random.default_rng([self.seed, self.epoch])
        self.batches = plan_batches(lengths_of(src), lengths_of(tgt), self.batch_tokens, rng)
        self.place = Place(self.epoch, self.place.position, len(self.batches), False)

    def __iter__(self) -> Iterator[tuple[Batch, Place]]:
        while True:
            if self.place.epoch != self.epoch:
                self._start_epoch()
            rows = self.batches.rows(self.place.position)
            position = self.place.position + 1
            epoch_end = position == len(self.batches)
            epoch = self.epoch + 1 if epoch_end else self.epoch
            self.place = Place(epoch, 0 if epoch_end else position, len(self.batches), epoch_end)
            yield collate(*self.ids, rows), self.place

    @property
    def epochs_done(self) -> float:
        """Epochs done, fractional, where the schedule stands."""
        return self.place.epochs_done
