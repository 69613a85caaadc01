"""From a recipe to what training reads: tokenizers and encoded, filtered splits.

`prepare_data` reads the recipe's corpora (nmt.data.corpus), trains the tokenizers on the
training split unless a resumed run brings its own (nmt.data.tokenizer), encodes every split,
and drops what a model cannot use: pairs a side of which tokenizes to nothing, and
training pairs beyond the length and ratio limits. It reports what it did through one
callback of events (`Message` lines, and `Phase`s for reading, the tokenizer and
encoding); nothing is written anywhere. `nmt train` reads most recipes through a
prepared dataset instead (nmt.data.prepared), which gives the same `Data`; this path
stays for subword sampling and for inputs that cannot be identified without reading them.

With `tokenizer.sampling` (subword regularization), `Data.train_ids(epoch)` gives each
epoch a fresh segmentation of the training pairs. Which pairs train is decided once, on
the best segmentation, so the same pairs train every epoch. A sampled segmentation has
more pieces than the best one (Multi30k German, 8k unigram: ×1.3 with alpha 0.2, ×2.1
with alpha 0.1; BPE-dropout 0.1: ×1.4), so a sampled pair may exceed data.max_length.
Valid, test, translation and evaluation always use the best segmentation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nmt.data.corpus import Corpus, length_filter, read_corpus
from nmt.data.given import given_files, given_tokenizers
from nmt.data.subwords import Segmenter
from nmt.data.tokenizer import SentencePieceTokenizer, TargetSubset, Tokenizer, train_tokenizers
from nmt.errors import UserError
from nmt.events import Event, Message
from nmt.progress import Tracker
from nmt.recipe.schema import Recipe, TokenizerConfig


@dataclass
class Split:
    """One split as text (to translate and score against) and as token ids (for the loss).
    A prepared dataset's training split (nmt.data.prepared) keeps no text, and its ids
    are memory-mapped rows (nmt.data.ragged.Ragged), not lists."""

    sources: list[str]
    references: list[str]
    src_ids: Sequence[Sequence[int]]
    tgt_ids: Sequence[Sequence[int]]


Ids = list[list[int]]


class Sampler:
    """Subword regularization: each epoch's segmentation of the training split, drawn
    afresh (nmt.data.subwords) with numpy generators seeded by (seed, epoch, side).

    An epoch's draw depends on (seed, epoch) alone: not on the epochs drawn before it,
    nor on the process, so `--resume` continues exactly and two runs with one seed train
    on the same segmentations. With a joint vocabulary both sides share one segmenter
    (and its cache of word lattices); target ids come out compact under a TargetSubset.
    """

    def __init__(self, src_tok: Tokenizer, tgt_tok: Tokenizer, cfg: TokenizerConfig, seed: int):
        self.seed = seed
        self.subset = tgt_tok if isinstance(tgt_tok, TargetSubset) else None
        inner = tgt_tok.inner if isinstance(tgt_tok, TargetSubset) else tgt_tok
        self.src = _segmenter(src_tok, cfg)
        self.tgt = self.src if inner is src_tok else _segmenter(inner, cfg)

    def draw(self, split: Split, epoch: int) -> tuple[Ids, Ids]:
        """Source and target ids of `split` (the training split) for `epoch`."""
        src = self.src.sample(split.sources, np.random.default_rng([self.seed, epoch, 0]))
        tgt = self.tgt.sample(split.references, np.random.default_rng([self.seed, epoch, 1]))
        return src, tgt if self.subset is None else self.subset.compact(tgt)


def _segmenter(tok: Tokenizer, cfg: TokenizerConfig) -> Segmenter:
    if not isinstance(tok, SentencePieceTokenizer) or cfg.sampling is None:
        raise TypeError("sampling needs SentencePiece tokenizers (the recipe check says so)")
    return tok.segmenter(cfg.model_type, cfg.sampling.alpha, cfg.sampling.nbest)


@dataclass
class Data:
    """Everything training reads, ready: tokenizers, encoded splits, the test corpus (all
    its lines, empty ones included), and with tokenizer.sampling the `Sampler`."""

    src_tok: Tokenizer
    tgt_tok: Tokenizer
    train: Split
    valid: Split | None
    test: Corpus | None
    sampler: Sampler | None = None
    # the training pairs of each corpus of a weighted data.train, in order (they are
    # concatenated in `train`); None: one corpus. What weighted epochs draw from.
    corpus_sizes: list[int] | None = None

    def train_ids(self, epoch: int) -> tuple[Sequence[Sequence[int]], Sequence[Sequence[int]]]:
        """The training split's source and target ids for `epoch`: the best segmentation
        (computed once), or with tokenizer.sampling the epoch's own draw."""
        if self.sampler is None:
            return self.train.src_ids, self.train.tgt_ids
        return self.sampler.draw(self.train, epoch)


def prepare_data(
    recipe: Recipe,
    on_event: Callable[[Event], None] = lambda event: None,
    tokenizers: tuple[Tokenizer, Tokenizer] | None = None,
) -> Data:
    """Read the recipe's corpora, train tokenizers (unless given), encode and filter."""
    cfg = recipe.tokenizer
    own = given_tokenizers(cfg) if tokenizers is None else None  # before the corpora: fast
    corpora = {name: _read(recipe, name, on_event) for name in ("train", "valid", "test")}
    train_text = corpora["train"]
    assert train_text is not None  # data.train is required
    if tokenizers is None:
        if own is not None:
            src_tok, tgt_tok = own
            named = ", ".join(f"{key} {path}" for key, path in given_files(cfg))
            on_event(Message(f"tokenizers as given ({named}); tokenizer.vocab_size is not used"))
        else:
            with Tracker(on_event, f"training the {cfg.type} tokenizer", 1, "tokenizer") as tracker:
                src_tok, tgt_tok = train_tokenizers(
                    cfg, train_text.source, train_text.target, recipe.seed
                )
                tracker.advance()
        if cfg.restrict_target:  # the output layer covers what the target side uses
            sampled = cfg.sampling is not None  # ... in any segmentation it may be given
            tgt_tok = TargetSubset.of_texts(tgt_tok, train_text.target, sampled)
    else:
        src_tok, tgt_tok = tokenizers
    on_event(Message(f"vocabulary: {src_tok.vocab_size} source, {tgt_tok.vocab_size} target"))
    train_split, sizes = _encode_train(recipe, train_text, src_tok, tgt_tok, on_event)
    valid = _encode(corpora["valid"], src_tok, tgt_tok, on_event, "data.valid")
    sampler = None if cfg.sampling is None else Sampler(src_tok, tgt_tok, cfg, recipe.seed)
    return Data(src_tok, tgt_tok, train_split, valid, corpora["test"], sampler, sizes)


def _read(recipe: Recipe, name: str, on_event: Callable[[Event], None]) -> Corpus | None:
    source = getattr(recipe.data, name)
    if source is None:
        return None
    key = f"data.{name}"
    data = recipe.data
    # The test split keeps every line, empty or not, so its BLEU compares with any other
    # system's on the same file; training and validation need text on both sides.
    with Tracker(on_event, f"reading {key}", None, "pairs") as tracker:
        corpus = read_corpus(
            source, data.source_lang, data.target_lang, key, keep_empty=name == "test"
        )
        tracker.done = len(corpus)
    if len(corpus) == 0:
        raise UserError(f"{key}: {corpus.origin} holds no sentence pairs with text on both sides")
    skipped = f", {corpus.skipped_empty} empty pairs skipped" if corpus.skipped_empty else ""
    on_event(Message(f"{key}: {len(corpus)} pairs from {corpus.origin}{skipped}"))
    return corpus


ENCODE_CHUNK = 10_000  # pairs encoded between two progress reports


def _encode(
    corpus: Corpus | None,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    on_event: Callable[[Event], None],
    key: str,
) -> Split | None:
    """Token ids for a split, without the pairs a side of which tokenizes to nothing."""
    if corpus is None:
        return None
    return _encode_kept(corpus, src_tok, tgt_tok, on_event, key)[0]


def _encode_kept(
    corpus: Corpus,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    on_event: Callable[[Event], None],
    key: str,
) -> tuple[Split, list[int]]:
    """`_encode`'s split, and which of the corpus's pairs it kept."""
    src_ids: Ids = []
    tgt_ids: Ids = []
    with Tracker(on_event, f"encoding {key}", len(corpus), "pairs") as tracker:
        for start in range(0, len(corpus), ENCODE_CHUNK):
            end = min(start + ENCODE_CHUNK, len(corpus))
            src_ids += src_tok.encode(corpus.source[start:end])
            tgt_ids += tgt_tok.encode(corpus.target[start:end])
            tracker.advance(end - start)
    keep = length_filter([len(x) for x in src_ids], [len(y) for y in tgt_ids]).keep
    columns = (corpus.source, corpus.target, src_ids, tgt_ids)
    return Split(*([column[i] for i in keep] for column in columns)), keep


def _encode_train(
    recipe: Recipe,
    corpus: Corpus,
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    on_event: Callable[[Event], None],
) -> tuple[Split, list[int] | None]:
    """The training split encoded and filtered; with weighted corpora, each one's pairs
    left (what nmt.data.dataset counts while it streams)."""
    split, kept = _encode_kept(corpus, src_tok, tgt_tok, on_event, "data.train")
    data = recipe.data
    found = length_filter(
        [len(x) for x in split.src_ids],
        [len(y) for y in split.tgt_ids],
        data.max_length,
        data.max_ratio,
    )
    empty = len(corpus) - len(split.sources)
    if empty or found.too_long or found.bad_ratio:
        on_event(
            Message(
                f"data.train: dropped {empty} pairs that tokenize to nothing, "
                f"{found.too_long} longer than data.max_length={data.max_length} tokens and "
                f"{found.bad_ratio} with a length ratio above data.max_ratio={data.max_ratio}"
            )
        )
    sizes = None
    if corpus.sizes is not None:
        ends = np.cumsum(corpus.sizes)
        which = np.searchsorted(ends, np.asarray(kept)[found.keep], side="right")
        sizes = np.bincount(which, minlength=len(ends)).tolist()
    if not found.keep or (sizes is not None and 0 in sizes):
        named = "data.train" if not found.keep else f"data.train[{sizes.index(0)}].corpus"
        raise UserError(
            f"{named}: no pairs left after the length filters; raise data.max_length "
            f"({data.max_length}) or data.max_ratio ({data.max_ratio})"
        )
    columns = (split.sources, split.references, split.src_ids, split.tgt_ids)
    return Split(*([column[i] for i in found.keep] for column in columns)), sizes
