"""Parallel corpora: pairs of strings from every kind of source a recipe can name.

A source (`data.train`, `data.valid`, `data.test` in a recipe) is one of::

    corpus/train.{lang}.gz                    # parallel plain-text files (.gz read too)
    {tsv: corpus/train.tsv}                   # source<TAB>target per line
    {jsonl: corpus/train.jsonl}               # {"de": "...", "en": "..."} per line
    {hub: bentrevett/multi30k, split: train}  # Hugging Face hub; optional config: NAME
    {dataset_dir: saved/ds, split: train}     # a `datasets` save_to_disk directory
    {toy: numbers, split: train}              # nmt's own synthetic corpus (nmt/data/toy.py)

`read_corpus(source, src_lang, tgt_lang, key)` returns a `Corpus` of stripped, non-empty
pairs; empty pairs are skipped and counted, or with `keep_empty=True` kept in order (a
test set is scored on every line). A file may be a pipe (a FIFO, bash's `<(...)`): it is
opened once and read once. Every mistake a user can make with a corpus
(missing file, a directory, misaligned line counts, bytes that are not UTF-8, a TSV line with the
wrong number of columns, an unreachable hub dataset) raises `UserError` with one line
naming the file and the fix. Length and ratio filters act on token counts, so they live
here as a pure function of lengths and run after tokenization (`length_filter`).
"""

from __future__ import annotations

from dataclasses import dataclass

# Sources: what a recipe's data.train / valid / test can name (parsed in nmt.recipe.load).


@dataclass(frozen=True)
class FilesSource:
    """Two line-aligned plain-text files; `{lang}` in the pattern becomes the language."""

    pattern: str


@dataclass(frozen=True)
class TsvSource:
    """One file, `source<TAB>target` per line."""

    tsv: str


@dataclass(frozen=True)
class JsonlSource:
    """One JSON object per line: `{"de": ..., "en": ...}` or `{"translation": {...}}`."""

    jsonl: str


@dataclass(frozen=True)
class HubSource:
    """A dataset on the Hugging Face hub, loaded with `datasets.load_dataset`."""

    hub: str
    split: str
    config: str | None = None


@dataclass(frozen=True)
class DatasetDirSource:
    """A directory written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`."""

    dataset_dir: str
    split: str | None = None


@dataclass(frozen=True)
class ToySource:
    """nmt's own rule-generated corpus (see `nmt.data.toy`); `size` caps the number of pairs."""

    toy: str
    split: str
    size: int | None = None


Source = FilesSource | TsvSource | JsonlSource | HubSource | DatasetDirSource | ToySource
# The key that identifies each mapping form of a source.
SOURCE_KINDS: dict[str, type] = {
    "tsv": TsvSource,
    "jsonl": JsonlSource,
    "hub": HubSource,
    "dataset_dir": DatasetDirSource,
    "toy": ToySource,
}
