"""`nmt vocab`: a vocabulary, one entry per line (id, piece, and a count or a score), from a
model directory (`nmt train`) or a prepared dataset (`nmt prepare`'s DATA_DIR).

Both hold the tokenizers under the names nmt.store.layout gives them, so the files alone
say which kind and whether joint. Only a prepared dataset has counts (counts.npz: each
id's occurrences on each side of the training split); for a model directory the column
is the SentencePiece piece's score (its log-probability in a unigram model, its merge
rank, negated, in a BPE one), and a word vocabulary has no column at all: its file is
ordered by the training split's frequencies, but they were not kept. The header says
which. The target side's ids are the tokenizer's own; with a restricted target
vocabulary (target_vocab.txt) the header says how many of them the output layer spans.
"""

from __future__ import annotations

import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from nmt.data.tokenizer import SentencePieceTokenizer, TargetSubset, Tokenizer, found_tokenizers
from nmt.errors import UserError
from nmt.store import layout

Side = Literal["source", "target"]
Holder = Literal["model directory", "prepared dataset"]


@dataclass(frozen=True)
class Entry:
    id: int
    piece: str
    value: float | int | None  # the count, the score, or nothing (see Vocabulary.column)


@dataclass(frozen=True)
class Vocabulary:
    directory: str
    holder: Holder
    side: Side
    tokenizer: str  # sentencepiece | word
    joint: bool
    size: int  # entries in the tokenizer, special symbols included
    column: Literal["count", "score"] | None
    output_layer: int | None  # target side, restricted: the pieces the output layer spans
    entries: list[Entry]

    def header(self) -> str:
        """One line: what is listed and what its columns are."""
        joint = "joint" if self.joint else f"{self.side} side's"
        what = {
            "count": "count (occurrences in the training split)",
            "score": "score (the SentencePiece model's; a model directory keeps no counts)",
            None: "nothing more (a model directory keeps no counts, a word vocabulary no scores)",
        }[self.column]
        shown = f"{len(self.entries)} of {self.size}" if len(self.entries) < self.size else ""
        output = (
            f"; the output layer spans {self.output_layer} of them ({layout.TARGET_SUBSET})"
            if self.output_layer is not None
            else ""
        )
        return (
            f"# {self.directory} ({self.holder}): the {joint} {self.tokenizer} vocabulary, "
            f"{self.side} side, {shown or self.size} entries{output}; columns: id, piece, {what}"
        )

    def lines(self) -> list[str]:
        """The header, then one tab-separated line per entry."""
        return [self.header(), *(f"{e.id}\t{e.piece}{_shown(e.value)}" for e in self.entries)]

    def to_json(self) -> dict[str, Any]:
        entries = [
            {"id": e.id, "piece": e.piece, **({self.column: e.value} if self.column else {})}
            for e in self.entries
        ]
        return {**asdict(self), "entries": entries}


def _shown(value: float | int | None) -> str:
    if value is None:
        return ""
    return f"\t{value}" if isinstance(value, int) else f"\t{value:.6g}"


def holder(path: Path, verb: str) -> Holder:
    """What `path` is: a model directory or a prepared dataset; else one UserError that
    says what `verb` (the command) wants."""
    wants = f"{verb} wants a directory that nmt train or nmt prepare wrote"
    if not path.exists():
        raise UserError(f"{path}: no such directory; {wants}")
    if not path.is_dir():
        raise UserError(f"{path} is a file, not a directory; {wants}")
    if (path / layout.RECIPE).is_file():
        return "model directory"
    if (path / layout.DATASET_MANIFEST).is_file():
        return "prepared dataset"
    raise UserError(
        f"{path}: neither a model directory (no {layout.RECIPE}) nor a prepared dataset "
        f"(no {layout.DATASET_MANIFEST}); {wants}"
    )


def read_vocabulary(path: Path, side: Side = "source", top: int | None = None) -> Vocabulary:
    """The `side` vocabulary of the directory at `path`, every entry by id, or with `top`
    the `top` most frequent (prepared dataset) or the first `top` ids (model directory)."""
    if top is not None and top < 1:
        raise UserError(f"--top {top}: give 1 or more entries")
    kind = holder(path, "nmt vocab")
    found = found_tokenizers(path)
    if found is None:
        raise UserError(
            f"{path}: no tokenizer files ({layout.SENTENCEPIECE} or {layout.WORDS}, or src./tgt. "
            "ones); copy the directory again or make it again"
        )
    cfg, src, tgt = found
    tok = src if side == "source" else tgt
    inner = tok.inner if isinstance(tok, TargetSubset) else tok
    size = inner.vocab_size
    pieces = inner.pieces(range(size)) if isinstance(inner, SentencePieceTokenizer) else inner.words
    values: list[float] | list[int] | None = None
    column: Literal["count", "score"] | None = None
    if kind == "prepared dataset":
        values, column = _counts(path, side, tok), "count"
    elif isinstance(inner, SentencePieceTokenizer):
        values, column = [inner.sp.get_score(i) + 0.0 for i in range(size)], "score"  # no -0
    ids = list(range(size))
    if top is not None:
        if column == "count" and values is not None:
            ids.sort(key=lambda i: (-values[i], i))
        ids = ids[:top]
    entries = [Entry(i, pieces[i], None if values is None else values[i]) for i in ids]
    subset = tok.vocab_size if isinstance(tok, TargetSubset) else None
    name = str(path)
    return Vocabulary(name, kind, side, cfg.type, cfg.joint, size, column, subset, entries)


def _counts(path: Path, side: Side, tok: Tokenizer) -> list[int]:
    """Each tokenizer id's count on `side`, from counts.npz (indexed by the tokenizer's ids,
    or by a restricted target vocabulary's compact ids, mapped back here)."""
    file = path / layout.COUNTS
    fix = "make the dataset again with nmt prepare"
    try:
        with np.load(file) as arrays:
            counts = np.asarray(arrays[side], dtype=np.int64)
    except FileNotFoundError:
        raise UserError(f"{file}: missing, so no counts; {fix}") from None
    except KeyError:
        raise UserError(f"{file}: no '{side}' counts; {fix}") from None
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise UserError(f"{file}: not a readable numpy archive ({e}); {fix}") from None
    inner = tok.inner if isinstance(tok, TargetSubset) else tok
    if counts.ndim == 1 and len(counts) == inner.vocab_size:
        return counts.tolist()
    if isinstance(tok, TargetSubset) and counts.ndim == 1 and len(counts) == tok.vocab_size:
        full = np.zeros(inner.vocab_size, dtype=np.int64)
        full[tok.kept] = counts
        return full.tolist()
    raise UserError(
        f"{file}: {counts.size} '{side}' counts for a vocabulary of {inner.vocab_size}; {fix}"
    )
