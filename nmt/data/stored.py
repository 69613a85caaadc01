"""A prepared dataset's files by name, written (`SplitWriter`) and read back (`read_split`).

nmt.data.dataset describes the directory; the ids are raw arrays of the manifest's dtype,
the offsets raw int64, read memory-mapped so that a split costs no memory of its own
beyond the pages the batches touch.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from nmt.data.ragged import Ragged

SIDES = ("src", "tgt")


def array_name(split: str, side: str, kind: str) -> str:
    """SPLIT.SIDE.ids or SPLIT.SIDE.offsets."""
    return f"{split}.{side}.{kind}"


def text_name(split: str) -> str:
    return f"{split}.text.jsonl"


class SplitWriter:
    """Appends rows to one split's ids and offsets files, both sides, and counts them."""

    def __init__(self, directory: Path, split: str, dtype: np.dtype):
        self.dtype, self.pairs = dtype, 0
        self.tokens = {side: 0 for side in SIDES}
        self.files = {
            side: tuple(
                (directory / array_name(split, side, kind)).open("wb")
                for kind in ("ids", "offsets")
            )
            for side in SIDES
        }
        for _, offsets in self.files.values():
            offsets.write(np.zeros(1, np.int64).tobytes())

    def add(self, src: Ragged, tgt: Ragged, keep: np.ndarray | None = None) -> None:
        """The rows of a chunk, or those where `keep` (a bool mask) holds."""
        for side, rows in zip(SIDES, (src, tgt), strict=True):
            ids, lengths = rows.ids, rows.lengths
            if keep is not None:
                ids, lengths = ids[np.repeat(keep, lengths)], lengths[keep]
            ids_file, offsets_file = self.files[side]
            ids_file.write(np.ascontiguousarray(ids, dtype=self.dtype).tobytes())
            offsets_file.write((self.tokens[side] + np.cumsum(lengths)).tobytes())
            self.tokens[side] += int(lengths.sum())
        self.pairs += int(len(src) if keep is None else keep.sum())

    def close(self) -> dict[str, Any]:
        for handles in self.files.values():
            for f in handles:
                f.flush()
                os.fsync(f.fileno())
                f.close()
        return {
            "pairs": self.pairs,
            "tokens": dict(zip(("source", "target"), self.tokens.values(), strict=True)),
        }


def _mapped(path: Path, dtype: np.dtype, length: int) -> np.ndarray:
    if length == 0:  # an empty file cannot be mapped
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(length,))


def read_split(directory: Path, split: str, manifest: dict[str, Any]) -> tuple[Ragged, Ragged]:
    """A split's source and target rows, memory-mapped (read-only)."""
    counts = manifest["splits"][split]
    dtype = np.dtype(manifest["dtype"])
    pairs = counts["pairs"]
    rows = []
    for side, total in zip(
        SIDES, (counts["tokens"]["source"], counts["tokens"]["target"]), strict=True
    ):
        ids = _mapped(directory / array_name(split, side, "ids"), dtype, total)
        offsets = _mapped(
            directory / array_name(split, side, "offsets"), np.dtype(np.int64), pairs + 1
        )
        rows.append(Ragged(ids, offsets))
    return rows[0], rows[1]


def read_text(directory: Path, split: str) -> tuple[list[str], list[str]]:
    """A small split's source and target lines (text_name)."""
    source, target = [], []
    with (directory / text_name(split)).open(encoding="utf-8") as f:
        for line in f:
            s, t = json.loads(line)
            source.append(s)
            target.append(t)
    return source, target
