"""Training from a prepared dataset: find or make it (`prepared_data`), read it back.

`nmt train` calls `prepared_data` unless the recipe samples subwords (tokenizer.sampling
segments the text afresh each epoch, so there are no fixed ids to store) or reads an
input it cannot identify without reading it whole (a pipe, a hub dataset) and names no
data.prepared: those read the corpora as nmt.data.prepare always has.

With data.prepared, that directory is made if absent and used if its manifest matches
the recipe (nmt.data.identity); one that does not match is refused, naming what differs.
Without it, datasets live in the cache under their key, so a second run, and every
--resume, reads the arrays instead of the text. A resumed run (or --init-from) brings its
own tokenizers: a dataset encoded with the very same ones is used, else one is made.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nmt.data.corpus import Corpus
from nmt.data.dataset import prepare_dataset
from nmt.data.identity import Identity
from nmt.data.prepare import Data, Split
from nmt.data.stored import read_split, read_text
from nmt.data.tokenizer import Tokenizer, load_tokenizers, tokenizer_files
from nmt.errors import UserError
from nmt.events import Event, Message
from nmt.recipe.schema import Recipe
from nmt.recipe.sources import WeightedSources
from nmt.store.layout import DATASET_MANIFEST as MANIFEST


def default_workers() -> int:
    """Encoding processes when none are asked for: one per core."""
    return os.cpu_count() or 1


def trains_from_prepared(recipe: Recipe) -> bool:
    """Whether `nmt train` reads this recipe's data through a prepared dataset."""
    if recipe.tokenizer.sampling is not None:
        return False
    return recipe.data.prepared is not None or Identity.of(recipe).checkable


def read_manifest(path: Path) -> dict[str, Any] | None:
    """`path`'s manifest, or None where there is none."""
    file = path / MANIFEST
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise UserError(
            f"{file}: not a prepared dataset's manifest ({type(e).__name__}); make it again "
            f"with nmt prepare RECIPE --output-dir {path} --overwrite"
        ) from None
    if not isinstance(manifest, dict):
        raise UserError(f"{file}: not a prepared dataset's manifest; make it again")
    return manifest


def prepared_data(
    recipe: Recipe,
    on_event: Callable[[Event], None] = lambda event: None,
    tokenizers: tuple[Tokenizer, Tokenizer] | None = None,
    workers: int | None = None,
) -> Data:
    """The recipe's data from its prepared dataset, found or made (see the module)."""
    given = None if tokenizers is None else tokenizer_files(recipe.tokenizer, *tokenizers)
    identities = [Identity.of(recipe)] + ([Identity.of(recipe, given)] if given else [])
    workers = workers or default_workers()
    if recipe.data.prepared is not None:
        path = Path(recipe.data.prepared)
        manifest = read_manifest(path)
        if manifest is not None:
            problem = _problem(path, manifest, identities, given)
            if problem is not None:
                raise UserError(
                    f"data.prepared {path}: {problem}; make it again with nmt prepare RECIPE "
                    f"--output-dir {path} --overwrite, or set data.prepared to another directory"
                )
    else:
        path, manifest = _in_cache(identities, given)
    if manifest is None:
        manifest = _make(recipe, path, workers, tokenizers, identities, given, on_event)
    else:
        on_event(Message(f"data: the prepared dataset {path} (made before: not read again)"))
    return load_dataset(path, recipe, manifest, on_event)


def _problem(
    path: Path, manifest: dict[str, Any], identities: list[Identity], given: dict | None
) -> str | None:
    """Why the dataset at `path` cannot serve (None: it can): its settings or inputs
    differ, or it holds other tokenizers than those `given`."""
    problems = [identity.mismatch(manifest) for identity in identities]
    if None not in problems:
        return problems[0]
    if given is not None and any(_read(path / name) != data for name, data in given.items()):
        return "its tokenizers are not the run's (trained anew since)"
    return None


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def _in_cache(identities: list[Identity], given: dict | None) -> tuple[Path, dict[str, Any] | None]:
    """The cached dataset that serves, or where to make one (with the run's tokenizers
    when they are given) and None."""
    for identity in identities:
        manifest = read_manifest(identity.cached())
        if (
            manifest is not None
            and _problem(identity.cached(), manifest, [identity], given) is None
        ):
            return identity.cached(), manifest
    return identities[-1].cached(), None


def _make(
    recipe: Recipe,
    path: Path,
    workers: int,
    tokenizers: tuple[Tokenizer, Tokenizer] | None,
    identities: list[Identity],
    given: dict | None,
    on_event: Callable[[Event], None],
) -> dict[str, Any]:
    """Prepare the dataset at `path`; in the cache, one that another run put there
    meanwhile is as good, and a broken one (no manifest: removed by hand?) is replaced."""
    cached = recipe.data.prepared is None
    if cached and path.is_dir() and read_manifest(path) is None:
        shutil.rmtree(path)
    try:
        manifest = prepare_dataset(recipe, path, workers, False, tokenizers, on_event)
    except OSError:
        found = read_manifest(path) if cached else None
        if found is None or _problem(path, found, identities, given) is not None:
            raise
        manifest = found
    on_event(Message(f"data: prepared {path}"))
    return manifest


def load_dataset(
    path: Path,
    recipe: Recipe,
    manifest: dict[str, Any],
    on_event: Callable[[Event], None] = lambda event: None,
) -> Data:
    """The prepared dataset at `path` as training reads it: the training split
    memory-mapped, valid and test as lists and text; reported as nmt.data.prepare does."""
    splits = manifest["splits"]
    for name in ("train", "valid", "test"):
        if name in splits:
            on_event(Message(_read_line(name, splits[name])))
    src_tok, tgt_tok = load_tokenizers(recipe.tokenizer, path)
    on_event(Message(f"vocabulary: {src_tok.vocab_size} source, {tgt_tok.vocab_size} target"))
    train = splits["train"]
    if train["empty_tokens"] or train["too_long"] or train["bad_ratio"]:
        d = recipe.data
        on_event(
            Message(
                f"data.train: dropped {train['empty_tokens']} pairs that tokenize to nothing, "
                f"{train['too_long']} longer than data.max_length={d.max_length} tokens and "
                f"{train['bad_ratio']} with a length ratio above data.max_ratio={d.max_ratio}"
            )
        )
    src_ids, tgt_ids = read_split(path, "train", manifest)
    valid = None
    if "valid" in splits:
        rows = read_split(path, "valid", manifest)
        valid = Split(*read_text(path, "valid"), rows[0].tolist(), rows[1].tolist())
    test = None
    if "test" in splits:
        test = Corpus(*read_text(path, "test"), splits["test"]["origin"])
    sizes = None  # a weighted data.train's corpora, as the text path counts them
    if isinstance(recipe.data.train, WeightedSources):
        sizes = [corpus["pairs"] for corpus in train["corpora"]]
    return Data(src_tok, tgt_tok, Split([], [], src_ids, tgt_ids), valid, test, None, sizes)


def _read_line(name: str, split: dict[str, Any]) -> str:
    """nmt.data.prepare's line for a split read: its pairs with text, the empty skipped."""
    empty = split["empty_text"]
    skipped = f", {empty} empty pairs skipped" if empty else ""
    return f"data.{name}: {split['read'] - empty} pairs from {split['origin']}{skipped}"
