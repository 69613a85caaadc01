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
    src_lengths: Sequence[int],
    tgt_lengths: Sequence[int] | None,
    batch_tokens: int,
    rng: np.random.Generator | None = None,
) -> list[list[int]]:
    """Cut pair indices into length-sorted batches within the budget.

    With `rng` (training), equal lengths are ordered at random and the batches are
    shuffled; without it (evaluation, translation), the order is deterministic.
    """
    src = np.asarray(src_lengths, dtype=np.int64)
    tgt = np.zeros_like(src) if tgt_lengths is None else np.asarray(tgt_lengths) + 1
    tiebreak = rng.random(len(src)) if rng is not None else np.arange(len(src))
    order = np.lexsort((tiebreak, tgt, src))  # by source length, then target length
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
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


def collate(
    src_ids: Sequence[Sequence[int]],
    tgt_ids: Sequence[Sequence[int]] | None,
    indices: Sequence[int],
) -> Batch:
    """Pad the chosen pairs into tensors (one numpy fill, no per-token Python work)."""
    src = _pad([src_ids[i] for i in indices])
    lengths = torch.tensor([len(src_ids[i]) for i in indices], dtype=torch.long)
    if tgt_ids is None:
        return Batch(src, lengths, None, None, list(indices))
    tgt_in = _pad([[BOS, *tgt_ids[i]] for i in indices])
    tgt_out = _pad([[*tgt_ids[i], EOS] for i in indices])
    return Batch(src, lengths, tgt_in, tgt_out, list(indices))


def _pad(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    out = np.full((len(rows), max(len(r) for r in rows)), PAD, dtype=np.int64)
    for r, row in enumerate(rows):
        out[r, : len(row)] = row
    return torch.from_numpy(out)


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
    or, with subword sampling, a segmentation drawn for that epoch. Its batches are cut
    from those ids' lengths with an rng of (seed, epoch); both depend on (seed, epoch)
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
        self.batches = batch_indices(
            [len(x) for x in src], [len(y) for y in tgt], self.batch_tokens, rng
        )
        self.place = Place(self.epoch, self.place.position, len(self.batches), False)

    def __iter__(self) -> Iterator[tuple[Batch, Place]]:
        while True:
            if self.place.epoch != self.epoch:
                self._start_epoch()
            rows = self.batches[self.place.position]
            position = self.place.position + 1
            epoch_end = position == len(self.batches)
            epoch = self.epoch + 1 if epoch_end else self.epoch
            self.place = Place(epoch, 0 if epoch_end else position, len(self.batches), epoch_end)
            yield collate(*self.ids, rows), self.place

    @property
    def epochs_done(self) -> float:
        """Epochs done, fractional, where the schedule stands."""
        return self.place.epochs_done
