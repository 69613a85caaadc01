"""Tokenizers: text ↔ integer ids, SentencePiece subwords or whole words.

Both kinds share the special ids below and one interface (`encode`, `decode`, `pieces`,
`vocab_size`), so nothing downstream knows which is in use. They are trained from the
training split when `nmt train` starts and stored in the model directory under the names
nmt.store.layout gives them:

    joint vocabulary:   spm.model                      | vocab.txt
    one per side:       src.spm.model + tgt.spm.model  | src.vocab.txt + tgt.vocab.txt
"""

from __future__ import annotations

import io
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import sentencepiece as spm

from nmt.data.subwords import Segmenter, reachable
from nmt.errors import UserError
from nmt.recipe.schema import TokenizerConfig
from nmt.store import layout
from nmt.vocab import BOS, EOS, PAD, SPECIALS, UNK


class SentencePieceTokenizer:
    """Subwords from a SentencePiece model (Kudo & Richardson 2018), unigram or BPE."""

    file_name = layout.SENTENCEPIECE

    def __init__(self, model_proto: bytes):
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        self.vocab_size = self.sp.get_piece_size()

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        model_type: str = "unigram",
        character_coverage: float = 1.0,
        seed: int = 1,
    ) -> SentencePieceTokenizer:
        """Train on `texts`; a corpus too small for `vocab_size` gets a smaller vocabulary."""
        spm.set_random_generator_seed(seed)  # sampling of large corpora, for reproducibility
        proto = io.BytesIO()
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(texts),
                model_writer=proto,
                vocab_size=vocab_size,
                model_type=model_type,
                character_coverage=character_coverage,
                pad_id=PAD,
                unk_id=UNK,
                bos_id=BOS,
                eos_id=EOS,
                hard_vocab_limit=False,
                input_sentence_size=2_000_000,
                shuffle_input_sentence=True,
                num_threads=os.cpu_count() or 1,
                minloglevel=2,
            )
        except RuntimeError as e:
            raise UserError(f"SentencePiece could not train on the training split: {e}") from None
        return cls(proto.getvalue())

    @classmethod
    def load(cls, path: Path) -> SentencePieceTokenizer:
        return cls(path.read_bytes())

    def to_bytes(self) -> bytes:
        return self.model_proto

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.sp.encode(list(texts))

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        return self.sp.decode([list(x) for x in ids])

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.sp.id_to_piece(int(i)) for i in ids]

    def segmenter(self, model_type: str, alpha: float, nbest: int) -> Segmenter:
        """A sampler of segmentations (subword regularization, nmt.data.subwords) for this
        model, which was trained as `model_type` (unigram | bpe)."""
        return Segmenter(self.sp, model_type, alpha, nbest)

    def reachable(self, texts: Sequence[str]) -> set[int]:
        """Ids of every piece that a sampled segmentation of `texts` can contain."""
        return reachable(self.sp, texts)


class WordTokenizer:
    """Whitespace-separated words; the `vocab_size` most frequent, `<unk>` for the rest.

    The integer encoding of Sutskever et al. 2014 and Luong et al. 2015, who fed tokenized
    text: give this tokenizer pre-tokenized corpora, since it splits on whitespace only.
    """

    file_name = layout.WORDS

    def __init__(self, words: Sequence[str]):
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError("a word vocabulary starts with the special symbols")
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.vocab_size = len(self.words)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> WordTokenizer:
        """The `vocab_size` - 4 most frequent words (ties alphabetical) after the specials."""
        counts = Counter(word for text in texts for word in text.split())
        for special in SPECIALS:
            counts.pop(special, None)
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        return cls([*SPECIALS, *(w for w, _ in ranked[: vocab_size - len(SPECIALS)])])

    @classmethod
    def load(cls, path: Path) -> WordTokenizer:
        return cls(path.read_text(encoding="utf-8").splitlines())

    def to_bytes(self) -> bytes:
        return "".join(f"{w}\n" for w in self.words).encode("utf-8")

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [[self._id(w) for w in text.split()] for text in texts]

    def _id(self, word: str) -> int:
        i = self.index.get(word, UNK)
        return i if i >= len(SPECIALS) else UNK  # "</s>" in a text is a word, not the end

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        return [" ".join(self.pieces(x)) for x in ids]

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.words[int(i)] for i in ids if int(i) not in (PAD, BOS, EOS)]


class TargetSubset:
    """A tokenizer restricted to the pieces the target side of the training data uses.

    A joint vocabulary serves both languages, so about half of its pieces never occur in
    the target language, and an output layer over all of them spends a large share of
    every step (the output projection and its softmax are the biggest single cost of a
    CPU training step) on tokens the model should never write. Ids here are compact:
    0..n-1, the special symbols first and unchanged; a piece outside the subset encodes
    as <unk>, and decoding maps back to the full tokenizer. Stored beside the tokenizer
    as target_vocab.txt, one full id and its piece per line.
    """

    file_name = layout.TARGET_SUBSET

    def __init__(self, inner: SentencePieceTokenizer | WordTokenizer, kept: Iterable[int]):
        self.inner = inner
        self.kept = sorted({*range(len(SPECIALS)), *(int(i) for i in kept)})
        self.index = {full: compact for compact, full in enumerate(self.kept)}
        self.vocab_size = len(self.kept)

    @classmethod
    def of_texts(
        cls,
        inner: SentencePieceTokenizer | WordTokenizer,
        texts: Sequence[str],
        sampled: bool = False,
    ) -> TargetSubset:
        """The pieces `texts` use (the target side of the training split); `sampled`: also
        every piece a sampled segmentation of them can use (`reachable`), so that
        tokenizer.sampling never turns a training target piece into <unk>."""
        kept = {i for ids in inner.encode(texts) for i in ids}
        if sampled:
            if not isinstance(inner, SentencePieceTokenizer):
                raise TypeError("only SentencePiece segmentations are sampled")
            kept |= inner.reachable(texts)
        return cls(inner, kept)

    @classmethod
    def load(cls, inner: SentencePieceTokenizer | WordTokenizer, path: Path) -> TargetSubset:
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [int(line.split("\t", 1)[0]) for line in lines if line]
        if any(not 0 <= i < inner.vocab_size for i in kept):
            raise ValueError("an id outside the tokenizer")
        return cls(inner, kept)

    def to_bytes(self) -> bytes:
        pieces = [*SPECIALS, *self.inner.pieces(self.kept[len(SPECIALS) :])]
        return "".join(f"{i}\t{p}\n" for i, p in zip(self.kept, pieces, strict=True)).encode()

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.compact(self.inner.encode(texts))

    def compact(self, rows: list[list[int]]) -> list[list[int]]:
        """Ids of the full tokenizer → compact ids (<unk> for a piece outside the subset)."""
        index = self.index
        return [[index.get(i, UNK) for i in ids] for ids in rows]

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        return self.inner.decode([[self.kept[int(i)] for i in x] for x in ids])

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return self.inner.pieces([self.kept[int(i)] for i in ids])


Tokenizer = SentencePieceTokenizer | WordTokenizer | TargetSubset
KINDS: dict[str, type[SentencePieceTokenizer] | type[WordTokenizer]] = {
    "sentencepiece": SentencePieceTokenizer,
    "word": WordTokenizer,
}


def joint_ids(tok: Tokenizer) -> list[int] | None:
    """The joint id of each compact target id when `tok` is a TargetSubset, else None:
    what a model sharing one embedding table across both sides looks target tokens up by."""
    return tok.kept if isinstance(tok, TargetSubset) else None


def file_names(cfg: TokenizerConfig) -> tuple[str, str]:
    """Names of the source and target tokenizer files in a model directory."""
    return layout.tokenizer_names(KINDS[cfg.type].file_name, cfg.joint)


def tokenizer_files(cfg: TokenizerConfig, src: Tokenizer, tgt: Tokenizer) -> dict[str, bytes]:
    """Every file the tokenizers need in a model directory, by name."""
    src_name, tgt_name = file_names(cfg)
    inner = tgt.inner if isinstance(tgt, TargetSubset) else tgt
    files = {src_name: src.to_bytes(), tgt_name: inner.to_bytes()}
    if isinstance(tgt, TargetSubset):
        files[TargetSubset.file_name] = tgt.to_bytes()
    return files


def train_tokenizers(
    cfg: TokenizerConfig, source: Sequence[str], target: Sequence[str], seed: int = 1
) -> tuple[Tokenizer, Tokenizer]:
    """Train on the training split: one joint tokenizer or one per side."""

    def one(texts: Sequence[str], vocab_size: int) -> Tokenizer:
        if cfg.type == "word":
            return WordTokenizer.train(texts, vocab_size)
        return SentencePieceTokenizer.train(
            texts, vocab_size, cfg.model_type, cfg.character_coverage, seed
        )

    if cfg.joint:
        joint = one([*source, *target], cfg.vocab_size)
        return joint, joint
    return one(source, cfg.vocab_size), one(target, cfg.target_vocab_size or cfg.vocab_size)


def load_tokenizers(cfg: TokenizerConfig, model_dir: Path) -> tuple[Tokenizer, Tokenizer]:
    """The tokenizers `nmt train` saved in `model_dir`; a missing or broken file is a UserError."""
    src_name, tgt_name = file_names(cfg)
    src = _load(cfg.type, model_dir, src_name)
    tgt = src if tgt_name == src_name else _load(cfg.type, model_dir, tgt_name)
    subset = model_dir / TargetSubset.file_name
    if not subset.is_file():  # trained with tokenizer.restrict_target: false, or before it
        return src, tgt
    try:
        return src, TargetSubset.load(tgt, subset)
    except (OSError, UnicodeDecodeError, ValueError):
        raise UserError(
            f"{subset}: not a list of target ids; copy the model directory again or train again"
        ) from None


def found_tokenizers(directory: Path) -> tuple[TokenizerConfig, Tokenizer, Tokenizer] | None:
    """The tokenizers saved in `directory` (a model directory or a prepared dataset), found
    by their file names, and the settings (type, joint) those names stand for; None when
    it holds none."""
    for kind in KINDS:
        for joint in (True, False):
            cfg = TokenizerConfig(type=kind, joint=joint)  # type: ignore[arg-type]
            if all((directory / name).is_file() for name in file_names(cfg)):
                return cfg, *load_tokenizers(cfg, directory)
    return None


def _load(kind: str, model_dir: Path, name: str) -> Tokenizer:
    path = model_dir / name
    if not path.is_file():
        raise UserError(
            f"{path}: missing; {model_dir} is not a complete model directory "
            "(train one with nmt train)"
        )
    fix = "copy the model directory again or train again"
    try:
        if kind == "word":
            return WordTokenizer.load(path)
        proto = path.read_bytes()
        if not proto:  # SentencePiece would take it as no model at all
            raise RuntimeError("empty")
        tokenizer = SentencePieceTokenizer(proto)
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror or e}); {fix}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text, so not a word vocabulary; {fix}") from None
    except ValueError:  # WordTokenizer: the specials are not the first lines
        first = " ".join(SPECIALS)
        raise UserError(
            f"{path}: not a word vocabulary (its first lines must be {first}); {fix}"
        ) from None
    except RuntimeError:  # SentencePiece could not parse it
        raise UserError(f"{path}: not a SentencePiece model; {fix}") from None
    specials = tokenizer.vocab_size >= len(SPECIALS) and tokenizer.pieces(range(len(SPECIALS)))
    if specials != list(SPECIALS):
        raise UserError(
            f"{path}: a SentencePiece model without nmt's special symbols "
            f"({' '.join(SPECIALS)} as ids 0-3), so not one nmt trained; {fix}"
        )
    return tokenizer
