"""Prepare once: a recipe's corpora read in one pass, tokenized, stored as flat arrays.

`prepare_dataset(recipe, out)` writes a prepared dataset directory:

    manifest.json             MANIFEST: format, key, settings, inputs (nmt.data.identity),
                              per split its origin and what each filter dropped, pair and
                              token counts; the arrays, their dtype and lengths
    spm.model | vocab.txt     the tokenizers, named as in a model directory (src.*/tgt.*
    target_vocab.txt          per side; target_vocab.txt with tokenizer.restrict_target)
    counts.npz                int64 `source`, `target`: each id's occurrences in the
                              training split, ids as the stored tokenizers number them
    SPLIT.SIDE.ids            raw ids (uint16 where the vocabulary fits, else uint32),
    SPLIT.SIDE.offsets        raw int64, n + 1: row i is ids[offsets[i]:offsets[i + 1]]
                              (SPLIT: train, valid, test; SIDE: src, tgt)
    valid.text.jsonl          [source, target] per pair, valid and test: what BLEU reads
    test.text.jsonl

The training split is streamed once (nmt.data.corpus.iter_pairs): pairs with an empty
side are counted and skipped, a seeded reservoir sample (tokenizer.sample_sentences)
is kept for the tokenizer, and the text is spilled to a temporary file beside the
output (the input may be a pipe) and encoded from there in chunks (nmt.data.encoding),
filtered by length and ratio as nmt.data.prepare filters, and appended to the arrays:
nothing holds the corpus. Valid and test are small and read whole. Everything is written
into a temporary directory beside `out`, renamed into place at the end.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nmt.data.corpus import iter_corpora, length_filter, read_corpus
from nmt.data.encoding import CHUNK, Chunk, encode_chunks
from nmt.data.given import given_files, given_tokenizers
from nmt.data.identity import FAST_HASH, FORMAT, Identity
from nmt.data.ragged import Ragged, id_dtype
from nmt.data.sample import Reservoir
from nmt.data.stored import SplitWriter, array_name, text_name
from nmt.data.tokenizer import TargetSubset, Tokenizer, tokenizer_files, train_tokenizers
from nmt.errors import UserError
from nmt.events import Event, Message
from nmt.progress import Tracker
from nmt.recipe.schema import Recipe
from nmt.store import files
from nmt.store.layout import COUNTS
from nmt.store.layout import DATASET_MANIFEST as MANIFEST
from nmt.vocab import UNK


def prepare_dataset(
    recipe: Recipe,
    out: Path,
    workers: int = 1,
    overwrite: bool = False,
    tokenizers: tuple[Tokenizer, Tokenizer] | None = None,
    on_event: Callable[[Event], None] = lambda event: None,
) -> dict[str, Any]:
    """Write `recipe`'s prepared dataset to `out` (tokenizers trained, or `tokenizers`
    given: a resumed run's); its manifest. `out` must not exist unless `overwrite`."""
    _check_output(out, overwrite)
    given = None if tokenizers is None else tokenizer_files(recipe.tokenizer, *tokenizers)
    identity = Identity.of(recipe, given)  # before reading: a file changed meanwhile is stale
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # as mkdir would make it, not mkdtemp's 0700
    try:
        manifest = _prepare_into(tmp, recipe, identity, workers, tokenizers, on_event)
        _publish(tmp, out, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _check_output(out: Path, overwrite: bool) -> None:
    if out.is_file():
        raise UserError(f"{out} is a file; give a directory for the prepared dataset")
    if not out.exists() or not any(out.iterdir()):
        return
    if not (out / MANIFEST).is_file():
        raise UserError(
            f"{out} exists and is not a prepared dataset (no {MANIFEST}); give another directory"
        )
    if not overwrite:
        raise UserError(
            f"{out} already holds a prepared dataset; add --overwrite to replace it, or give "
            "another directory"
        )


def _publish(tmp: Path, out: Path, overwrite: bool) -> None:
    """`tmp` renamed to `out`; an old `out` (checked by _check_output) removed after."""
    files.fsync_dir(tmp)
    old = None
    if out.exists() and (overwrite or not any(out.iterdir())):
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    tmp.rename(out)  # fails if another process put one there meanwhile (the caller's)
    files.fsync_dir(out.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _prepare_into(
    tmp: Path,
    recipe: Recipe,
    identity: Identity,
    workers: int,
    tokenizers: tuple[Tokenizer, Tokenizer] | None,
    on_event: Callable[[Event], None],
) -> dict[str, Any]:
    d = recipe.data  # every split's files checked before the long pass over data.train
    streams = iter_corpora(d.train, d.source_lang, d.target_lang, "data.train")
    small = {name: _read_small(recipe, name, on_event) for name in ("valid", "test")}
    own = None if tokenizers is not None else given_tokenizers(recipe.tokenizer)
    train, sample = _spill_train(recipe, streams, tmp, on_event)
    if own is not None:
        named = ", ".join(f"{key} {path}" for key, path in given_files(recipe.tokenizer))
        on_event(Message(f"tokenizers as given ({named}); tokenizer.vocab_size is not used"))
        sample.items.clear()
    src_tok, tgt_tok = tokenizers or own or _train_tokenizers(recipe, sample, on_event)
    inner = tgt_tok.inner if isinstance(tgt_tok, TargetSubset) else tgt_tok
    dtype = id_dtype(max(src_tok.vocab_size, inner.vocab_size))
    restrict = tokenizers is None and recipe.tokenizer.restrict_target
    encoder = tgt_tok if not restrict else inner  # full ids first, compacted after
    counts, used = _encode_train(recipe, tmp, train, (src_tok, encoder), dtype, workers, on_event)
    if restrict:
        tgt_tok = TargetSubset(inner, np.flatnonzero(used).tolist())
        _compact(tmp / array_name("train", "tgt", "ids"), dtype, tgt_tok, inner.vocab_size)
        counts["target"] = counts["target"][tgt_tok.kept]
    buffer = io.BytesIO()
    np.savez(buffer, **counts)
    _write_synced(tmp / COUNTS, buffer.getvalue())
    splits = {"train": train}
    for name, corpus in small.items():
        if corpus is not None:  # reported as the text path reports encoding valid
            with Tracker(on_event, f"encoding data.{name}", len(corpus), "pairs") as tracker:
                splits[name] = _write_small(tmp, name, corpus, src_tok, tgt_tok, dtype)
                tracker.advance(len(corpus))
    for name, content in tokenizer_files(recipe.tokenizer, src_tok, tgt_tok).items():
        _write_synced(tmp / name, content)
    manifest = {
        "format": FORMAT,
        "key": identity.key,
        "settings": identity.settings,
        "inputs": identity.inputs,
        "input_hash": FAST_HASH,
        "tokenizers": "trained" if tokenizers is None and own is None else "given",
        "dtype": dtype.name,
        "vocab": {"source": src_tok.vocab_size, "target": tgt_tok.vocab_size},
        "splits": splits,
    }
    _write_synced(tmp / MANIFEST, (json.dumps(manifest, indent=1) + "\n").encode())
    return manifest


def _write_synced(path: Path, data: bytes) -> None:
    """A new file in the temporary directory, on disk before the directory is renamed."""
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _read_small(recipe: Recipe, name: str, on_event: Callable[[Event], None]) -> Any:
    """Valid or test, read whole as nmt.data.prepare reads it (test keeps empty lines)."""
    source = getattr(recipe.data, name)
    if source is None:
        return None
    d, key = recipe.data, f"data.{name}"
    with Tracker(on_event, f"reading {key}", None, "pairs") as tracker:
        corpus = read_corpus(source, d.source_lang, d.target_lang, key, keep_empty=name == "test")
        tracker.done = len(corpus)
    if len(corpus) == 0:
        raise UserError(f"{key}: {corpus.origin} holds no sentence pairs with text on both sides")
    return corpus


def _spill_train(
    recipe: Recipe,
    streams: list[tuple[str, Iterator[tuple[str, str]]]],
    tmp: Path,
    on_event: Callable[[Event], None],
) -> tuple[dict[str, Any], Reservoir]:
    """One pass over data.train's corpora, each (origin, pairs), one after the other: the
    pairs with text on both sides spilled to tmp, the tokenizer's sample drawn; the
    split's counts so far, and each corpus's (`corpora`)."""
    cfg = recipe.tokenizer
    capacity = max(1, cfg.sample_sentences // 2) if cfg.joint else cfg.sample_sentences
    sample = Reservoir(capacity, np.random.default_rng([recipe.seed, 0x5A4D]))
    read = kept = 0
    corpora = []
    with (
        Tracker(on_event, "reading data.train", None, "pairs") as tracker,
        (tmp / "spill.src").open("wb") as src_out,
        (tmp / "spill.tgt").open("wb") as tgt_out,
    ):
        for i, (origin, pairs) in enumerate(streams):
            before = (read, kept)
            for src, tgt in pairs:
                read += 1
                if src and tgt:
                    kept += 1
                    sample.offer((src, tgt))
                    src_out.write(_spilled(src))
                    tgt_out.write(_spilled(tgt))
                    if kept % CHUNK == 0:
                        tracker.advance(CHUNK)
            if kept == before[1] and len(streams) > 1:
                raise UserError(
                    f"data.train[{i}].corpus: {origin} holds no sentence pairs with text on "
                    "both sides; give pairs or remove the entry"
                )
            corpus_read = read - before[0]
            corpora.append(
                {
                    "origin": origin,
                    "read": corpus_read,
                    "empty_text": corpus_read - kept + before[1],
                }
            )
        tracker.done = kept
    origin = "; ".join(corpus["origin"] for corpus in corpora)
    if kept == 0:
        raise UserError(f"data.train: {origin} holds no sentence pairs with text on both sides")
    return {"origin": origin, "read": read, "empty_text": read - kept, "corpora": corpora}, sample


def _spilled(text: str) -> bytes:
    """One line of the spill file. Stripped text never starts with a tab, so a line that
    does holds JSON: text with a line break inside (a JSONL or hub row may have one)."""
    if "\n" in text or "\r" in text or text.startswith("\t"):
        text = "\t" + json.dumps(text)
    return text.encode("utf-8") + b"\n"


def _unspilled(line: bytes) -> str:
    text = line[:-1].decode("utf-8")
    return json.loads(text[1:]) if text.startswith("\t") else text


def _spill_chunks(tmp: Path) -> Iterator[Chunk]:
    with (tmp / "spill.src").open("rb") as src, (tmp / "spill.tgt").open("rb") as tgt:
        while True:
            chunk = [_unspilled(x) for x in itertools.islice(src, CHUNK)]
            if not chunk:
                return
            yield chunk, [_unspilled(y) for y in itertools.islice(tgt, CHUNK)]


def _train_tokenizers(
    recipe: Recipe, sample: Reservoir, on_event: Callable[[Event], None]
) -> tuple[Tokenizer, Tokenizer]:
    """Trained on the sample: up to tokenizer.sample_sentences pairs, all of them in
    order, exactly what nmt.data.prepare trains on (the whole split)."""
    cfg = recipe.tokenizer
    source = [s for s, _ in sample.items]
    target = [t for _, t in sample.items]
    with Tracker(on_event, f"training the {cfg.type} tokenizer", 1, "tokenizer") as tracker:
        tokenizers = train_tokenizers(cfg, source, target, recipe.seed)
        tracker.advance()
    sample.items.clear()
    return tokenizers


def _encode_train(
    recipe: Recipe,
    tmp: Path,
    train: dict[str, Any],
    tokenizers: tuple[Tokenizer, Tokenizer],
    dtype: np.dtype,
    workers: int,
    on_event: Callable[[Event], None],
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The spilled training pairs encoded, filtered and written; the id counts of what was
    kept, and of every target id the split uses (filtered out or not: restrict_target's)."""
    d = recipe.data
    writer = SplitWriter(tmp, "train", dtype)
    sizes = [t.vocab_size for t in tokenizers]
    counts = {"source": np.zeros(sizes[0], np.int64), "target": np.zeros(sizes[1], np.int64)}
    used = np.zeros(sizes[1], np.int64)
    dropped = dict.fromkeys(("empty_tokens", "too_long", "bad_ratio"), 0)
    total = train["read"] - train["empty_text"]
    ends = np.cumsum([c["read"] - c["empty_text"] for c in train["corpora"]])
    per_corpus, at = np.zeros(len(ends), np.int64), 0  # pairs kept of each corpus
    with Tracker(on_event, "encoding data.train", total, "pairs") as tracker:
        for src, tgt in encode_chunks(_spill_chunks(tmp), *tokenizers, dtype, workers):
            used += np.bincount(tgt.ids, minlength=sizes[1])
            keep = _filter(src.lengths, tgt.lengths, d.max_length, d.max_ratio, dropped)
            writer.add(src, tgt, keep)
            corpus = np.searchsorted(ends, at + np.flatnonzero(keep), side="right")
            per_corpus += np.bincount(corpus, minlength=len(ends))
            at += len(src)
            counts["source"] += np.bincount(
                src.ids[np.repeat(keep, src.lengths)], minlength=sizes[0]
            )
            counts["target"] += np.bincount(
                tgt.ids[np.repeat(keep, tgt.lengths)], minlength=sizes[1]
            )
            tracker.advance(len(src))
    for name in ("spill.src", "spill.tgt"):
        (tmp / name).unlink()
    train.update(dropped, **writer.close())
    for corpus, pairs in zip(train["corpora"], per_corpus.tolist(), strict=True):
        corpus["pairs"] = pairs
    empty = [i for i, c in enumerate(train["corpora"]) if c["pairs"] == 0]
    if train["pairs"] == 0 or empty:
        raise UserError(
            f"{_named_train(empty, len(ends))}: no pairs left after the length filters; raise "
            f"data.max_length ({d.max_length}) or data.max_ratio ({d.max_ratio})"
        )
    return counts, used


def _named_train(empty: list[int], corpora: int) -> str:
    """data.train, or of a weighted one the first corpus that `empty` names."""
    return "data.train" if corpora == 1 or not empty else f"data.train[{empty[0]}].corpus"


def _filter(
    src: np.ndarray,
    tgt: np.ndarray,
    max_length: float,
    max_ratio: float,
    dropped: dict[str, int],
) -> np.ndarray:
    """nmt.data.corpus.length_filter over arrays: the kept pairs' mask; `dropped` counts."""
    empty = (src == 0) | (tgt == 0)
    too_long = ~empty & ((src > max_length) | (tgt > max_length))
    bad_ratio = ~empty & ~too_long & (np.maximum(src, tgt) > max_ratio * np.minimum(src, tgt))
    for name, mask in (("empty_tokens", empty), ("too_long", too_long), ("bad_ratio", bad_ratio)):
        dropped[name] += int(mask.sum())
    return ~(empty | too_long | bad_ratio)


def _compact(path: Path, dtype: np.dtype, subset: TargetSubset, full_size: int) -> None:
    """The training targets' full ids rewritten, in place, as the subset's compact ids."""
    table = np.full(full_size, UNK, dtype=dtype)  # no training target id is outside it
    table[subset.kept] = np.arange(len(subset.kept))
    if path.stat().st_size == 0:
        return
    ids = np.memmap(path, dtype=dtype, mode="r+")
    block = 1 << 24
    for start in range(0, len(ids), block):
        ids[start : start + block] = table[ids[start : start + block]]
    ids.flush()
    del ids


def _write_small(
    tmp: Path, name: str, corpus: Any, src_tok: Tokenizer, tgt_tok: Tokenizer, dtype: np.dtype
) -> dict[str, Any]:
    """Valid (pairs that tokenize to nothing dropped) or test (every line kept)."""
    src = Ragged.from_rows(src_tok.encode(corpus.source), dtype)
    tgt = Ragged.from_rows(tgt_tok.encode(corpus.target), dtype)
    keep = np.ones(len(src), dtype=bool)
    if name != "test":
        keep[:] = False
        keep[length_filter(src.lengths.tolist(), tgt.lengths.tolist()).keep] = True
    writer = SplitWriter(tmp, name, dtype)
    writer.add(src, tgt, keep)
    lines = (
        json.dumps([corpus.source[i], corpus.target[i]], ensure_ascii=False) + "\n"
        for i in np.flatnonzero(keep).tolist()
    )
    _write_synced(tmp / text_name(name), "".join(lines).encode("utf-8"))
    read = len(corpus) + corpus.skipped_empty
    return {
        "origin": corpus.origin,
        "read": read,
        "empty_text": corpus.skipped_empty,
        "empty_tokens": int((~keep).sum()),
        **writer.close(),
    }
