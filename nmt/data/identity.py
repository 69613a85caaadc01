"""What a prepared dataset was made from, and where `nmt train` keeps one (`Identity`).

A prepared dataset (nmt.data.dataset) answers one recipe's data: its key is a hash of
the resolved data and tokenizer sections and seed (the seed draws the tokenizer's
sample), of tokenizers given instead of trained (a resumed run's, --init-from's), and of
each input file's identity: its absolute path, size, modification time and a fast hash,
sha256 of the size and the first and last MiB (FAST_HASH). Anything else about a recipe
(model, training, decoding, data.prepared itself) leaves the dataset as it is; so do the
weights of a weighted data.train: the arrays hold every pair of every corpus, whatever
the weights, which only decide what each epoch draws (training's plan, not the data).

A pipe, or a Hugging Face hub dataset, cannot be identified without reading it all:
such an input is recorded by name only (`checkable` is False), and `nmt train` reads
it as before unless data.prepared names a directory, which is then trusted.
With data.prepared unset, `nmt train` keeps datasets in cache_root()/prepared/<key>.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmt.data.given import given_files
from nmt.data.globbed import expand_pairs, expand_paths
from nmt.recipe.load import recipe_to_dict
from nmt.recipe.schema import Recipe
from nmt.recipe.sources import (
    DatasetDirSource,
    FilesSource,
    HubSource,
    JsonlSource,
    TrainSource,
    TsvSource,
    WeightedSources,
    train_corpora,
)

FORMAT = 1  # of a prepared dataset's files; another is refused, as made by another nmt
FAST_HASH = "sha256 of the size (8 bytes, little-endian), the first MiB and the last MiB"
MIB = 1 << 20
SPLITS = ("train", "valid", "test")
NOT_DATA = ("prepared", "alternatives", "use")  # data keys that do not change the data


def cache_root() -> Path:
    """$NMT_CACHE_DIR, or ~/.cache/nmt."""
    return Path(os.environ.get("NMT_CACHE_DIR") or Path.home() / ".cache" / "nmt")


def fast_hash(path: Path, size: int) -> str:
    """FAST_HASH of a regular file of `size` bytes."""
    digest = hashlib.sha256(size.to_bytes(8, "little"))
    with path.open("rb") as f:
        digest.update(f.read(MIB))
        if size > MIB:
            f.seek(max(MIB, size - MIB))
            digest.update(f.read(MIB))
    return digest.hexdigest()


def file_identity(path: Path) -> dict[str, Any]:
    """{path, size, mtime_ns, sha256} of a regular file; of a directory (a `datasets`
    one) the same over its files; a pipe or a missing file: {path, kind}."""
    where = str(path.absolute())
    if path.is_file():
        stat = path.stat()
        return {
            "path": where,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": fast_hash(path, stat.st_size),
        }
    if path.is_dir():
        inside = sorted(p for p in path.rglob("*") if p.is_file())
        parts = [file_identity(p) for p in inside]
        digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        return {"path": where, "files": len(parts), "sha256": digest}
    return {"path": where, "kind": "pipe" if path.exists() else "missing"}


def source_files(
    source: TrainSource | None, src_lang: str, tgt_lang: str, key: str = "data"
) -> list[Path]:
    """The files (or directory) a source reads, a glob's each, a weighted data.train's
    corpus after corpus; none for toy or hub sources. `key` (data.train) names the
    source in a glob's refusals."""
    if isinstance(source, WeightedSources):
        return [
            path
            for i, entry in enumerate(source.corpora)
            for path in source_files(entry.corpus, src_lang, tgt_lang, f"{key}[{i}].corpus")
        ]
    if isinstance(source, FilesSource):  # a glob: each pair of files, in their order
        pairs = expand_pairs(source.pattern, src_lang, tgt_lang, key)
        return [path for pair in pairs for path in pair]
    if isinstance(source, TsvSource):
        return expand_paths(source.tsv, key)
    if isinstance(source, JsonlSource):
        return expand_paths(source.jsonl, key)
    if isinstance(source, DatasetDirSource):
        return [Path(source.dataset_dir)]
    return []


@dataclass(frozen=True)
class Identity:
    """A recipe's data as a prepared dataset records it (manifest.json's "settings" and
    "inputs"), and its key."""

    settings: dict[str, Any]
    inputs: list[dict[str, Any]]
    key: str
    checkable: bool  # every input identified without reading it whole

    @classmethod
    def of(cls, recipe: Recipe, given: dict[str, bytes] | None = None) -> Identity:
        """`given`: tokenizer files (by name) used instead of training tokenizers."""
        resolved = recipe_to_dict(recipe)
        data = {k: v for k, v in resolved["data"].items() if k not in NOT_DATA}
        if isinstance(recipe.data.train, WeightedSources):  # weights: how epochs sample
            data["train"] = [{"corpus": entry["corpus"]} for entry in data["train"]]
        tokens = None
        if given is not None:
            joined = b"".join(name.encode() + b"\0" + given[name] for name in sorted(given))
            tokens = hashlib.sha256(joined).hexdigest()
        settings = {
            "data": data,
            "tokenizer": resolved["tokenizer"],
            "seed": recipe.seed,
            "given_tokenizers": tokens,
        }
        d = recipe.data
        inputs = [
            {"split": split, **file_identity(path)}
            for split in SPLITS
            for path in source_files(
                getattr(d, split), d.source_lang, d.target_lang, f"data.{split}"
            )
        ]
        given_by_recipe = given_files(recipe.tokenizer)  # tokenizer.model, ...: their content
        inputs += [{"split": key, **file_identity(Path(path))} for key, path in given_by_recipe]
        sources = [entry.corpus for entry in train_corpora(d.train)] + [d.valid, d.test]
        hub = any(isinstance(source, HubSource) for source in sources)
        checkable = not hub and all("kind" not in i for i in inputs)
        blob = json.dumps(
            {"format": FORMAT, "settings": settings, "inputs": inputs}, sort_keys=True
        )
        return cls(settings, inputs, hashlib.sha256(blob.encode()).hexdigest()[:20], checkable)

    def cached(self) -> Path:
        """Where `nmt train` keeps this dataset without data.prepared."""
        return cache_root() / "prepared" / self.key

    def mismatch(self, manifest: dict[str, Any]) -> str | None:
        """What differs between this identity and a dataset's manifest, in words, or None."""
        if manifest.get("format") != FORMAT:
            return f"it was made by another version of nmt (format {manifest.get('format')})"
        for old, new in zip(manifest.get("inputs", []), self.inputs, strict=False):
            if old != new:
                what = "moved" if old.get("path") != new["path"] else "changed"
                return f"its input {old.get('path')} has {what} since (size, time or content)"
        if len(manifest.get("inputs", [])) != len(self.inputs):
            return "it was made from other input files"
        old, new = _flat(manifest.get("settings", {})), _flat(self.settings)
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                if key == "given_tokenizers":
                    return "it was encoded with other tokenizers"
                return f"{key} was {old.get(key)!r} and is now {new.get(key)!r}"
        return None


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value and key in ("data", "tokenizer", "sampling"):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
