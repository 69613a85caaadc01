"""From a recipe to what training reads: tokenizers and encoded, filtered splits.

`prepare_data` reads the recipe's corpora (nmt.corpus), trains the tokenizers on the
training split unless a resumed run brings its own (nmt.tokenizer), encodes every split,
and drops what a model cannot use: pairs a side of which tokenizes to nothing, and
training pairs beyond the length and ratio limits. It reports what it did through one
callback of plain lines; nothing is written anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nmt.config import Recipe
from nmt.corpus import Corpus, length_filter, read_corpus
from nmt.errors import UserError
from nmt.tokenizer import TargetSubset, Tokenizer, train_tokenizers


@dataclass
class Split:
    """One split as text (to translate and score against) and as token ids (for the loss)."""

    sources: list[str]
    references: list[str]
    src_ids: list[list[int]]
    tgt_ids: list[list[int]]


@dataclass
class Data:
    """Everything training reads, ready: tokenizers, encoded splits, the test corpus (all
    its lines, empty ones included)."""

    src_tok: Tokenizer
    tgt_tok: Tokenizer
    train: Split
    valid: Split | None
    test: Corpus | None


def prepare_data(
    recipe: Recipe,
    report: Callable[[str], None] = lambda text: None,
    tokenizers: tuple[Tokenizer, Tokenizer] | None = None,
) -> Data:
    """Read the recipe's corpora, train tokenizers (unless given), encode and filter."""
    corpora = {name: _read(recipe, name, report) for name in ("train", "valid", "test")}
    train_text = corpora["train"]
    assert train_text is not None  # data.train is required
    if tokenizers is None:
        cfg = recipe.tokenizer
        src_tok, tgt_tok = train_tokenizers(cfg, train_text.source, train_text.target, recipe.seed)
        if cfg.restrict_target:  # the output layer covers what the target side uses
            tgt_tok = TargetSubset.of_texts(tgt_tok, train_text.target)
    else:
        src_tok, tgt_tok = tokenizers
    report(f"vocabulary: {src_tok.vocab_size} source, {tgt_tok.vocab_size} target")
    train_split = _encode_train(recipe, train_text, src_tok, tgt_tok, report)
    valid = _encode(corpora["valid"], src_tok, tgt_tok)
    return Data(src_tok, tgt_tok, train_split, valid, corpora["test"])


def _read(recipe: Recipe, name: str, report: Callable[[str], None]) -> Corpus | None:
    source = getattr(recipe.data, name)
    if source is None:
        return None
    key = f"data.{name}"
    data = recipe.data
    # The test split keeps every line, empty or not, so its BLEU compares with any other
    # system's on the same file; training and validation need text on both sides.
    corpus = read_corpus(source, data.source_lang, data.target_lang, key, keep_empty=name == "test")
    if len(corpus) == 0:
        raise UserError(f"{key}: {corpus.origin} holds no sentence pairs with text on both sides")
    skipped = f", {corpus.skipped_empty} empty pairs skipped" if corpus.skipped_empty else ""
    report(f"{key}: {len(corpus)} pairs from {corpus.origin}{skipped}")
    return corpus


def _encode(corpus: Corpus | None, src_tok: Tokenizer, tgt_tok: Tokenizer) -> Split | None:
    """Token ids for a split, without the pairs a side of which tokenizes to nothing."""
    if corpus is None:
        return None
    src_ids, tgt_ids = src_tok.encode(corpus.source), tgt_tok.encode(corpus.target)
    keep = length_filter([len(x) for x in src_ids], [len(y) for y in tgt_ids]).keep
    columns = (corpus.source, corpus.target, src_ids, tgt_ids)
    return Split(*([column[i] for i in keep] for column in columns))


def _encode_train(
    recipe: Recipe,
    corpus: Corpus,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    report: Callable[[str], None],
) -> Split:
    split = _encode(corpus, src_tok, tgt_tok)
    assert split is not None
    data = recipe.data
    found = length_filter(
        [len(x) for x in split.src_ids],
        [len(y) for y in split.tgt_ids],
        data.max_length,
        data.max_ratio,
    )
    empty = len(corpus) - len(split.sources)
    if empty or found.too_long or found.bad_ratio:
        report(
            f"data.train: dropped {empty} pairs that tokenize to nothing, {found.too_long} "
            f"longer than data.max_length={data.max_length} tokens and {found.bad_ratio} "
            f"with a length ratio above data.max_ratio={data.max_ratio}"
        )
    if not found.keep:
        raise UserError(
            f"data.train: no pairs left after the length filters; raise data.max_length "
            f"({data.max_length}) or data.max_ratio ({data.max_ratio})"
        )
    columns = (split.sources, split.references, split.src_ids, split.tgt_ids)
    return Split(*([column[i] for i in found.keep] for column in columns))
