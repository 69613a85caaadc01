"""The corpus sources a recipe names in `data.train`, `data.valid` and `data.test`, one frozen
dataclass per kind::

    corpus/train.{lang}.gz                    # FilesSource: parallel plain-text files
    {tsv: corpus/train.tsv}                   # TsvSource: source<TAB>target per line
    {jsonl: corpus/train.jsonl}               # JsonlSource: {"de": "...", "en": "..."}
    {hub: bentrevett/multi30k, split: train}  # HubSource: Hugging Face hub; config: NAME;
                                              # streaming: true reads it as it downloads
    {dataset_dir: saved/ds, split: train}     # DatasetDirSource: a save_to_disk directory
    {toy: numbers, split: train}              # ToySource: nmt's synthetic corpus

`data.train` may also be a list of corpora, each any of the above with a weight
(WeightedSources; OpenNMT-py's weighted corpora): every epoch draws its pairs from them
in proportion to the weights (nmt.data.weighted)::

    train:
      - {corpus: europarl/train.{lang}.gz, weight: 3}
      - {corpus: {tsv: crawl/part-*.tsv}, weight: 1}

A source only says where the pairs come from: nmt.recipe.load parses it from YAML
(`parse_source`), and nmt.data.corpus reads it (`read_corpus`).
"""

from __future__ import annotations

from dataclasses import dataclass

from nmt.recipe.fields import positive

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
    # true: read through a `datasets.IterableDataset`, row by row as it downloads, never
    # the whole split in the local cache first; None (not written) and false: load it whole
    streaming: bool | None = None


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


@dataclass(frozen=True)
class WeightedCorpus:
    """One entry of a weighted `data.train`: a source and its share of each epoch."""

    corpus: Source
    # each epoch, this corpus gives weight / (sum of the weights) of the pairs drawn
    weight: float = positive(1.0)


@dataclass(frozen=True)
class WeightedSources:
    """`data.train` as a list of weighted corpora, read one after the other in this order."""

    corpora: tuple[WeightedCorpus, ...]


TrainSource = Source | WeightedSources


def train_corpora(source: TrainSource) -> list[WeightedCorpus]:
    """The corpora of `data.train` with their weights: a plain source is one, weight 1."""
    if isinstance(source, WeightedSources):
        return list(source.corpora)
    return [WeightedCorpus(source)]
