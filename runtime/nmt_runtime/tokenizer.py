"""Tokenizers: text ↔ ids, as nmt trained them, read from an exported directory.

The same three kinds as nmt.data.tokenizer, giving the same ids (tests compare them):
SentencePiece subwords (spm.model), whole words (vocab.txt, one word a line, the four
special symbols first), and a target subset (target_vocab.txt: the full ids the output
layer covers, one per line, so that output id y is piece kept[y]).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sentencepiece as spm

from nmt_runtime.errors import UserError

PAD, UNK, BOS, EOS = 0, 1, 2, 3
SPECIALS = ("<pad>", "<unk>", "<s>", "</s>")
FIX = "export the model again with nmt export"


class SentencePieceTokenizer:
    def __init__(self, path: Path):
        self.sp = spm.SentencePieceProcessor(model_proto=path.read_bytes())
        self.vocab_size = self.sp.get_piece_size()

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.sp.encode(list(texts))

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        return self.sp.decode([list(x) for x in ids])

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.sp.id_to_piece(int(i)) for i in ids]


class WordTokenizer:
    """Whitespace-separated words; a word outside the vocabulary is <unk>."""

    def __init__(self, path: Path):
        self.words = path.read_text(encoding="utf-8").splitlines()
        if tuple(self.words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError("a word vocabulary starts with the special symbols")
        self.index = {w: i for i, w in enumerate(self.words)}
        self.vocab_size = len(self.words)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [[self._id(w) for w in text.split()] for text in texts]

    def _id(self, word: str) -> int:
        i = self.index.get(word, UNK)
        return i if i >= len(SPECIALS) else UNK  # "</s>" in a text is a word, not the end

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        return [" ".join(self.pieces(x)) for x in ids]

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.words[int(i)] for i in ids if int(i) not in (PAD, BOS, EOS)]


Inner = SentencePieceTokenizer | WordTokenizer


class TargetSubset:
    """The output layer's pieces only: compact ids 0..n-1, decoded through `inner`."""

    def __init__(self, inner: Inner, path: Path):
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = [int(line.split("\t", 1)[0]) for line in lines if line]
        if any(not 0 <= i < inner.vocab_size for i in kept):
            raise ValueError("an id outside the tokenizer")
        self.inner = inner
        self.kept = sorted({*range(len(SPECIALS)), *kept})
        self.index = {full: compact for compact, full in enumerate(self.kept)}
        self.vocab_size = len(self.kept)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        index = self.index
        return [[index.get(i, UNK) for i in ids] for ids in self.inner.encode(texts)]

    def decode(self, ids: Sequence[Sequence[int]]) -> list[str]:
        return self.inner.decode([[self.kept[int(i)] for i in x] for x in ids])

    def pieces(self, ids: Sequence[int]) -> list[str]:
        return self.inner.pieces([self.kept[int(i)] for i in ids])


Tokenizer = SentencePieceTokenizer | WordTokenizer | TargetSubset


def load_tokenizers(directory: Path, spec: dict[str, Any]) -> tuple[Tokenizer, Tokenizer]:
    """The source and target tokenizers the manifest's "tokenizer" entry names."""
    kind = {"sentencepiece": SentencePieceTokenizer, "word": WordTokenizer}.get(spec["type"])
    if kind is None:
        raise UserError(f"{directory}: tokenizer type {spec['type']!r} is unknown here; {FIX}")

    def one(name: str, make: Any, *args: Any) -> Any:
        try:
            return make(*args, directory / name)
        except (OSError, UnicodeDecodeError, ValueError, RuntimeError):
            raise UserError(f"{directory / name}: not a tokenizer file nmt wrote; {FIX}") from None

    src = one(spec["source"], kind)
    tgt = src if spec["target"] == spec["source"] else one(spec["target"], kind)
    if spec.get("target_subset"):
        tgt = one(spec["target_subset"], TargetSubset, tgt)
    return src, tgt
