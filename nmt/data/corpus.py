"""Parallel corpora: pairs of strings from every kind of source a recipe can name.

Reading a corpus source (nmt/recipe/sources.py lists the kinds: parallel files, .gz
read too; TSV; JSONL; a Hugging Face hub dataset; a `datasets` directory; the toy corpus).

`read_corpus(source, src_lang, tgt_lang, key)` returns a `Corpus` of stripped, non-empty
pairs; empty pairs are skipped and counted, or with `keep_empty=True` kept in order (a
test set is scored on every line); `iter_pairs` gives the same pairs one at a time, empty
ones included, for a reader that must not hold the corpus (nmt.data.dataset), and
`iter_corpora` each corpus of a weighted data.train so (read_corpus concatenates them
and keeps their sizes). A file may
be a pipe (a FIFO, bash's `<(...)`): it is opened once and read once. Every mistake a user
can make with a corpus (missing file, a directory, misaligned line counts, bytes that are
not UTF-8, a TSV line with the wrong number of columns, an unreachable hub dataset)
raises `UserError` with one line naming the file and the fix. Length and ratio filters act
on token counts, so they live here as a pure function of lengths and run after
tokenization (`length_filter`).
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from nmt.data import toy
from nmt.data.globbed import expand_pairs, expand_paths
from nmt.errors import UserError, one_line
from nmt.recipe.sources import (
    DatasetDirSource,
    FilesSource,
    HubSource,
    JsonlSource,
    Source,
    ToySource,
    TrainSource,
    TsvSource,
    WeightedSources,
)


@dataclass
class Corpus:
    source: list[str]
    target: list[str]
    origin: str  # where the pairs came from, for log lines
    skipped_empty: int = 0  # pairs dropped because one side was empty (0 with keep_empty)
    # weighted data.train: each corpus's pairs, in order (they are concatenated); else None
    sizes: list[int] | None = None

    def __len__(self) -> int:
        return len(self.source)


def read_corpus(
    source: TrainSource, src_lang: str, tgt_lang: str, key: str = "data", keep_empty: bool = False
) -> Corpus:
    """Read all pairs of `source`; `key` (e.g. "data.train") names it in messages. A
    weighted data.train's corpora are read in order, one after the other (`sizes`).

    Pairs with an empty side are skipped and counted, or with `keep_empty` kept in their
    place, so that a test set is scored on every line (a blank line of a JSONL file holds
    no row and is never a pair).
    """
    parts = [
        _clean(*_columns(pairs), origin, keep_empty)
        for origin, pairs in iter_corpora(source, src_lang, tgt_lang, key)
    ]
    if not isinstance(source, WeightedSources):
        return parts[0]
    for i, part in enumerate(parts):  # named here, where each corpus's origin is known
        if len(part) == 0:
            raise UserError(
                f"{key}[{i}].corpus: {part.origin} holds no sentence pairs with text on "
                "both sides; give pairs or remove the entry"
            )
    return Corpus(
        [s for part in parts for s in part.source],
        [t for part in parts for t in part.target],
        "; ".join(part.origin for part in parts),
        sum(part.skipped_empty for part in parts),
        [len(part) for part in parts],
    )


def _columns(pairs: Iterator[tuple[str, str]]) -> tuple[list[str], list[str]]:
    src: list[str] = []
    tgt: list[str] = []
    for s, t in pairs:
        src.append(s)
        tgt.append(t)
    return src, tgt


def iter_corpora(
    source: TrainSource, src_lang: str, tgt_lang: str, key: str = "data.train"
) -> list[tuple[str, Iterator[tuple[str, str]]]]:
    """`iter_pairs` of each corpus of `source`: a plain source is one; a weighted list's
    corpora in order, each named `key[i].corpus` in messages. Every corpus's files are
    checked now, before any is read."""
    if isinstance(source, WeightedSources):
        return [
            iter_pairs(entry.corpus, src_lang, tgt_lang, f"{key}[{i}].corpus")
            for i, entry in enumerate(source.corpora)
        ]
    return [iter_pairs(source, src_lang, tgt_lang, key)]


def iter_pairs(
    source: Source, src_lang: str, tgt_lang: str, key: str = "data"
) -> tuple[str, Iterator[tuple[str, str]]]:
    """Where `source`'s pairs come from (for messages), and its pairs one at a time, each
    side stripped, empty ones included: the source is read once, never held whole (what
    nmt.data.dataset streams). A missing file is reported now; a misaligned one at its end."""
    if isinstance(source, FilesSource):
        files = expand_pairs(source.pattern, src_lang, tgt_lang, key)
        lines = [(iter_lines(a, key), iter_lines(b, key), a, b) for a, b in files]
        (first, second), many = files[0], f"{source.pattern} ({len(files)} pairs of files)"
        origin = f"{first} + {second}" if len(files) == 1 else many  # one short log line
        return origin, itertools.chain.from_iterable(_aligned(*each) for each in lines)
    if isinstance(source, TsvSource | JsonlSource):
        named = source.tsv if isinstance(source, TsvSource) else source.jsonl
        paths = expand_paths(named, key)
        parts = [_file_pairs(source, path, src_lang, tgt_lang, key) for path in paths]
        origin = str(paths[0]) if len(paths) == 1 else f"{named} ({len(paths)} files)"
        return origin, itertools.chain.from_iterable(parts)
    if isinstance(source, HubSource | DatasetDirSource):
        origin, rows = _dataset(source, src_lang, tgt_lang, key)
        return origin, _from_rows(rows, src_lang, tgt_lang, origin)
    if isinstance(source, ToySource):
        return f"toy:{source.toy}", iter(_toy_pairs(source, key))
    raise TypeError(f"not a corpus source: {source!r}")


def _file_pairs(
    source: TsvSource | JsonlSource, path: Path, src_lang: str, tgt_lang: str, key: str
) -> Iterator[tuple[str, str]]:
    """One TSV or JSONL file's pairs (checked for existence now, read later)."""
    lines = _numbered_lines(path, key)
    if isinstance(source, TsvSource):
        return _tsv_pairs(path, lines)
    rows = ((n, _parse_json(line, path, n)) for n, line in lines if line.strip())
    return _from_rows(rows, src_lang, tgt_lang, f"{path}:")


def _aligned(
    a: Iterator[str], b: Iterator[str], first: Path, second: Path
) -> Iterator[tuple[str, str]]:
    """Pairs of lines of two files, or at the first file's end, if the other goes on (or
    stops first), the UserError read_aligned gives with both files' line counts."""
    n = 0
    for x, y in itertools.zip_longest(a, b):
        if x is None or y is None:
            rest = 1 + sum(1 for _ in (a if x is not None else b))
            counts = (n + rest, n) if x is not None else (n, n + rest)
            raise _misaligned(first, counts[0], second, counts[1])
        n += 1
        yield x, y


def _misaligned(first: Path, a: int, second: Path, b: int) -> UserError:
    return UserError(
        f"{first} has {a} lines but {second} has {b}: the files must be "
        "line-aligned (line i of one answers line i of the other)"
    )


def _toy_pairs(source: ToySource, key: str) -> list[tuple[str, str]]:
    if source.toy not in toy.TASKS:
        raise UserError(f"{key}: unknown toy corpus {source.toy!r}; known: {', '.join(toy.TASKS)}")
    if source.split not in toy.SPLITS:
        raise UserError(f"{key}: toy split must be one of {', '.join(toy.SPLITS)}")
    return toy.TASKS[source.toy](source.split, source.size)


def read_lines(path: Path, key: str = "input") -> list[str]:
    """All lines of a UTF-8 text file (gzip read transparently), stripped."""
    return list(iter_lines(path, key))


def read_aligned(
    first: Path, second: Path, key: str = "input", *, purpose: str | None = None
) -> tuple[list[str], list[str]]:
    """The lines of two files that must answer each other line by line.

    With a `purpose` (e.g. "score") the files must hold lines for it: empty ones are an
    error, "FIRST is empty: nothing to score".
    """
    a, b = read_lines(first, key), read_lines(second, key)
    if len(a) != len(b):
        raise _misaligned(first, len(a), second, len(b))
    if purpose is not None and not a:
        raise UserError(f"{first} is empty: nothing to {purpose}")
    return a, b


def iter_lines(path: Path, key: str = "input") -> Iterator[str]:
    """The same lines one at a time; a missing file is reported at once, not on reading."""
    return (line.strip() for _, line in _numbered_lines(path, key))


def decode_lines(stream: BinaryIO, name: str) -> Iterator[tuple[int, str]]:
    """(line number, text) from a byte stream; bytes that are not UTF-8 name the line."""
    for n, raw in enumerate(stream, start=1):
        yield n, decode_line(raw, name, n)


def decode_line(raw: bytes, name: str, number: int) -> str:
    """One line's text without its line break; bytes that are not UTF-8 name the line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(
            f"{name}:{number}: not valid UTF-8 (byte {e.start}); convert the text, "
            f"e.g. iconv -f latin1 -t utf-8"
        ) from None
    return text.rstrip("\r\n")


class Filtered(NamedTuple):
    keep: list[int]  # indices of the pairs that pass
    empty: int  # a side has no tokens (text that tokenizes to nothing, e.g. "\u200b")
    too_long: int  # a side is longer than max_length
    bad_ratio: int  # the longer side is more than max_ratio times the shorter


def length_filter(
    src_lengths: Sequence[int],
    tgt_lengths: Sequence[int],
    max_length: int | None = None,
    max_ratio: float | None = None,
) -> Filtered:
    """Which pairs, by their token counts, a model can train or be measured on."""
    keep, empty, too_long, bad_ratio = [], 0, 0, 0
    longest = max_length if max_length is not None else float("inf")
    ratio = max_ratio if max_ratio is not None else float("inf")
    for i, (s, t) in enumerate(zip(src_lengths, tgt_lengths, strict=True)):
        if s == 0 or t == 0:
            empty += 1
        elif s > longest or t > longest:
            too_long += 1
        elif max(s, t) > ratio * min(s, t):
            bad_ratio += 1
        else:
            keep.append(i)
    return Filtered(keep, empty, too_long, bad_ratio)


def _numbered_lines(path: Path, key: str) -> Iterator[tuple[int, str]]:
    """Checked now, read later: a regular file, a FIFO or a pipe such as /dev/fd/63."""
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a text file (named by {key}); give a file")
    if not path.exists():
        hint = "check the path in the recipe (relative paths start where nmt runs)"
        hint = hint if key.startswith("data.") else "check the path"
        raise UserError(f"{path}: no such file (named by {key}); {hint}")
    return _read_numbered(path)


def _read_numbered(path: Path) -> Iterator[tuple[int, str]]:
    """Opened once and read once, so a pipe loses nothing; gzip is found by its magic bytes,
    peeked at without consuming them."""
    try:
        f = path.open("rb")
    except OSError as e:
        raise UserError(f"{path}: cannot be opened ({e.strerror})") from None
    try:
        with f:
            gzipped = f.peek(2)[:2] == b"\x1f\x8b"
            with gzip.GzipFile(fileobj=f) if gzipped else contextlib.nullcontext(f) as stream:
                yield from decode_lines(stream, str(path))
    except (EOFError, OSError, zlib.error) as e:  # a cut-off or corrupt .gz, a read error
        raise UserError(f"{path}: cannot be read to the end ({e}); is the file complete?") from None


def _clean(src: list[str], tgt: list[str], origin: str, keep_empty: bool = False) -> Corpus:
    if keep_empty:
        return Corpus(src, tgt, origin)
    keep = [i for i, (s, t) in enumerate(zip(src, tgt, strict=True)) if s and t]
    skipped = len(src) - len(keep)
    if skipped:
        src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
    return Corpus(src, tgt, origin, skipped)


def _tsv_pairs(path: Path, lines: Iterator[tuple[int, str]]) -> Iterator[tuple[str, str]]:
    for n, line in lines:
        if not line.strip():
            yield "", ""
            continue
        columns = line.split("\t")
        if len(columns) != 2:
            raise UserError(
                f"{path}:{n}: expected 2 tab-separated columns (source, target), found "
                f"{len(columns)}; remove stray tabs or give the sides as two files"
            )
        yield columns[0].strip(), columns[1].strip()


def _parse_json(line: str, path: Path, n: int) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise UserError(
            f"{path}:{n}: not a JSON object ({e.msg}); write one object per line"
        ) from None


def _from_rows(
    rows: Iterator[tuple[int, Any]], src_lang: str, tgt_lang: str, origin: str
) -> Iterator[tuple[str, str]]:
    """Numbered rows, flat {src: .., tgt: ..} or nested {"translation": {src: .., tgt: ..}}.

    `origin` ends in ":" for files (rows are line numbers) or names a dataset (row indices).
    """
    where = origin if origin.endswith(":") else f"{origin}: row "
    for n, row in rows:
        pair = row.get("translation", row) if isinstance(row, dict) else None
        if not isinstance(pair, dict) or src_lang not in pair or tgt_lang not in pair:
            found = ", ".join(map(str, pair)) if isinstance(pair, dict) else type(row).__name__
            raise UserError(
                f"{where}{n}: no {src_lang!r} and {tgt_lang!r} fields (found: "
                f"{found}); rows look like {{{src_lang!r}: ..., {tgt_lang!r}: ...}} or "
                f"{{'translation': {{...}}}}; check data.source_lang and data.target_lang"
            )
        yield str(pair[src_lang] or "").strip(), str(pair[tgt_lang] or "").strip()


def _dataset_rows(dataset: Any, src_lang: str, tgt_lang: str) -> Iterator[tuple[int, dict]]:
    """Numbered rows of a `datasets.Dataset` (or a streamed `IterableDataset`, whose
    columns may be unknown before its first row), reading only the columns that matter."""
    columns = dataset.column_names or []
    if src_lang in columns and tgt_lang in columns:
        dataset = dataset.select_columns([src_lang, tgt_lang])
    elif "translation" in columns:
        dataset = dataset.select_columns(["translation"])
    return enumerate(dataset, start=1)


def _dataset(
    source: HubSource | DatasetDirSource, src_lang: str, tgt_lang: str, key: str
) -> tuple[str, Iterator[tuple[int, dict]]]:
    """Where a `datasets` source's rows come from (for messages), and the rows."""
    if isinstance(source, HubSource):
        origin, dataset = _load_hub(source, key)
    else:
        origin, dataset = str(Path(source.dataset_dir)), _load_dataset_dir(source, key)
    return origin, _dataset_rows(dataset, src_lang, tgt_lang)


def _load_hub(source: HubSource, key: str) -> tuple[str, Any]:
    import datasets  # slow to import; only hub and dataset_dir sources need it

    name = source.hub + (f" ({source.config})" if source.config else "")
    try:
        dataset = datasets.load_dataset(
            source.hub, source.config, split=source.split, streaming=bool(source.streaming)
        )
    except Exception as e:  # network, auth, missing dataset or split: all end the same way
        reason = one_line(e)[:200] or type(e).__name__
        raise UserError(
            f"{key}: could not load hub dataset {name}, split {source.split!r}: {reason}. "
            "Without network access, point the recipe at local files instead "
            "(e.g. data.train: corpus/train.{lang}.gz or {dataset_dir: DIR, split: S}, or "
            "--set data.use=NAME for a recipe's data.alternatives)"
        ) from None
    return f"hub:{name}", dataset


def _load_dataset_dir(source: DatasetDirSource, key: str) -> Any:
    import datasets

    path = Path(source.dataset_dir)
    if not path.is_dir():
        raise UserError(
            f"{path}: no such directory (named by {key}); give the directory "
            "that Dataset.save_to_disk wrote"
        )
    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as e:
        raise UserError(
            f"{path}: not a saved `datasets` directory ({e}); write one with "
            "Dataset.save_to_disk or use {jsonl: FILE}"
        ) from None
    if isinstance(loaded, datasets.DatasetDict):
        splits = list(loaded)
        split = source.split or (splits[0] if len(splits) == 1 else None)
        if split not in loaded:
            raise UserError(f"{path}: choose a split with {key}.split: one of {', '.join(splits)}")
        loaded = loaded[split]
    elif source.split is not None:
        raise UserError(f"{path} holds a single dataset without splits; remove {key}.split")
    return loaded
