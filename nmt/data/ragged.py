"""Rows of token ids of different lengths in two flat numpy arrays (`Ragged`).

Row i is ids[offsets[i]:offsets[i + 1]]: the whole split is two arrays, whatever its size,
and no Python object per row, so a prepared dataset's training split (nmt.data.dataset)
is read straight from memory-mapped files. `ids` is uint16 when the vocabulary fits in it
(ids < 65536), else uint32; `offsets` is int64 with n + 1 entries, the first 0.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

UINT16_VOCAB = 1 << 16  # a vocabulary up to this size stores its ids as uint16


def id_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned type that holds every id below `vocab_size`."""
    return np.dtype(np.uint16 if vocab_size <= UINT16_VOCAB else np.uint32)


class Ragged(Sequence[np.ndarray]):
    """A sequence of id rows: `self[i]` is row i as a (read-only when mapped) numpy view."""

    def __init__(self, ids: np.ndarray, offsets: np.ndarray):
        if offsets.ndim != 1 or len(offsets) == 0 or offsets[-1] != len(ids):
            raise ValueError("offsets must run from 0 to len(ids)")
        self.ids, self.offsets = ids, offsets

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[int]], dtype: np.dtype) -> Ragged:
        """Rows of Python ints (one chunk of encoded text) as a Ragged of `dtype`."""
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.fromiter((i for r in rows for i in r), dtype=dtype, count=int(offsets[-1]))
        return cls(flat, offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i):  # type: ignore[override]
        if not isinstance(i, int | np.integer):
            raise TypeError("a Ragged is indexed by one row number")
        if i < 0:
            i += len(self)
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    @property
    def lengths(self) -> np.ndarray:
        """(n,) int64: each row's length."""
        return np.diff(self.offsets)

    def tolist(self) -> list[list[int]]:
        """The rows as lists of ints (for the small splits: valid and test)."""
        return [row.tolist() for row in self]
