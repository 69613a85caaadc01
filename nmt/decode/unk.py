"""UNK replacement (`decode.replace_unk`, `nmt translate --replace-unk`, the JSON API's
`replace_unk`): each `<unk>` a model writes becomes the source word it attended to most
(Luong et al. 2015b's copy rule), or, with a dictionary (`decode.unk_dictionary`, lines
`source_word<TAB>target_word`), that word's entry:

    source "ein Hund namens Bello", output "a dog named <unk>" → "a dog named Bello"

A word-level vocabulary capped at a few thousand words writes `<unk>` for every rarer
word, and names, numbers and rare nouns are usually translated by copying. `<unk>` is
recognised on the output's ids (vocab.UNK) before detokenization: a word tokenizer writes
the id as the text "<unk>", and SentencePiece as " ⁇ ", neither of which can be told from
text. The source word is the one of most attention mass, pooled into whitespace words as
`alignment.word_alignment` pools it (an ensemble's attention is its members' mean), and
copied as the source line has it (a source word outside the vocabulary is `<unk>` to the
model, but its text is in the line): word i of the pieces is word i of the line's split(),
exactly for a word tokenizer, and for SentencePiece wherever its normalization keeps the
line's whitespace words (it does for ordinary text).

Word tokenizer: a piece is a word, so each `<unk>` is replaced by the source word its
attention row peaks on. SentencePiece (whose `<unk>` is rare: a character its training
data never had): the same rule on the whole target word holding the `<unk>` piece, which
is replaced by the source word (or entry) of its pooled attention, since an unknown
character inside a word is most often a name's, spelled as in the source.

An output with no `<unk>` keeps its text as it was, bit for bit; the other words of an
output with one are the tokenizer's words, joined by single spaces.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Protocol, TypeVar

from nmt.data.tokenizer import Tokenizer
from nmt.decode.alignment import marks_words, piece_words, word_alignment
from nmt.errors import UserError
from nmt.recipe.schema import DecodeConfig
from nmt.vocab import UNK

FORMAT = "one source word, a tab and one target word a line"


class Searched(Protocol):
    """What replacement reads of a translation (nmt.decode.translate.Translation)."""

    text: str
    source_pieces: list[str]
    attention: list[list[float]] | None
    target_ids: list[int] | None


T = TypeVar("T", bound=Searched)


class Tokenized(Protocol):
    """What replacement reads of a translator: its tokenizers (a `Translator`'s)."""

    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer


@dataclasses.dataclass(frozen=True)
class UnkReplacer:
    """The copy rule over a model's tokenizers, with an optional dictionary."""

    source: Tokenizer
    target: Tokenizer
    dictionary: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def text(
        self,
        text: str,
        line: str,
        target_ids: Sequence[int],
        attention: Sequence[Sequence[float]],
        source_pieces: Sequence[str],
    ) -> str:
        """`text` (the detokenized `target_ids`) with each target word holding an `<unk>`
        replaced; `text` itself when none does. attention: (T + 1) × S, a row per target
        id and one for </s>; source_pieces (S,) the pieces of `line` the model read."""
        if UNK not in target_ids:
            return text
        src_words = piece_words(source_pieces, marks_words(self.source))
        pieces = self.target.pieces(target_ids)
        tgt_words = piece_words(pieces, marks_words(self.target))
        aligned = {j: i for i, j in word_alignment(attention, src_words, tgt_words)}
        words = line.split()  # the model's source words: its pieces split at whitespace too
        ids_of: dict[int, list[int]] = {}
        for token, word in zip(target_ids, tgt_words, strict=True):
            if word is not None:
                ids_of.setdefault(word, []).append(int(token))
        out = []
        for j, ids in sorted(ids_of.items()):
            if UNK in ids and aligned.get(j, len(words)) < len(words):
                source_word = words[aligned[j]]
                out.append(self.dictionary.get(source_word, source_word))
            else:
                out.append(self.target.decode([ids])[0])
        return " ".join(out)

    def apply(self, found: Sequence[Sequence[T]], lines: Sequence[str]) -> list[list[T]]:
        """Each line's translations (`Translator.search`'s) with their `<unk>`s replaced;
        one without attention (an empty line's none) is left as it was."""
        out = []
        for line, translations in zip(lines, found, strict=True):
            out.append([self._one(t, line) for t in translations])
        return out

    def _one(self, t: T, line: str) -> T:
        if t.attention is None or t.target_ids is None:
            return t
        text = self.text(t.text, line, t.target_ids, t.attention, t.source_pieces)
        return t if text == t.text else dataclasses.replace(t, text=text)  # type: ignore[type-var]


def check_settings(settings: DecodeConfig, attends: bool) -> None:
    """Refuse, in one line, UNK replacement for a model without attention and a dictionary
    without replacement; read the dictionary, so that its errors come before any search."""
    if settings.replace_unk and not attends:
        raise UserError(
            "--replace-unk copies the source word of most attention, and this model has "
            "none (model.attention none); leave --replace-unk out or train with attention"
        )
    if settings.unk_dictionary is not None:
        if not settings.replace_unk:
            raise UserError(
                f"--unk-dictionary {settings.unk_dictionary} (decode.unk_dictionary) is read "
                "only when <unk>s are replaced: add --replace-unk (decode.replace_unk: true)"
            )
        read_dictionary(settings.unk_dictionary)


def replace_unks(
    found: Sequence[Sequence[T]],
    lines: Sequence[str],
    settings: DecodeConfig,
    translator: Tokenized,
) -> list[list[T]]:
    """`found` (`translator`'s translations of `lines`) as it was unless
    `settings.replace_unk`; then with its `<unk>`s replaced (`UnkReplacer`, with the
    dictionary `settings.unk_dictionary` if one is named). `Translator.search` and `stream`
    call it; a caller of `search_ids`, which has no source text, calls it after (the
    server does), having searched with attention."""
    if not settings.replace_unk:
        return [list(translations) for translations in found]
    path = settings.unk_dictionary
    dictionary = read_dictionary(path) if path is not None else MappingProxyType({})
    replacer = UnkReplacer(translator.src_tokenizer, translator.tgt_tokenizer, dictionary)
    return replacer.apply(found, lines)


def read_dictionary(path: str) -> Mapping[str, str]:
    """The entries of an UNK dictionary file: source word → target word, one word each
    (so an output keeps its word count, and --alignments its meaning). Blank lines are
    skipped; a source word's first entry counts (a lexical table sorted by probability
    gives its best first). Read again only when the file changes."""
    try:
        status = os.stat(path)
    except FileNotFoundError:
        raise UserError(f"unk dictionary {path}: no such file; give a file of {FORMAT}") from None
    except OSError as e:
        raise UserError(f"unk dictionary {path}: cannot be read ({e.strerror or e})") from None
    return _read(path, status.st_mtime_ns, status.st_size)


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, size: int) -> Mapping[str, str]:
    """The file's entries (`read_dictionary`); the time and size key the cache."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            lines = [line.removesuffix("\r") for line in f.read().split("\n")]
    except IsADirectoryError:
        raise UserError(f"unk dictionary {path}: a directory; give a file of {FORMAT}") from None
    except OSError as e:
        raise UserError(f"unk dictionary {path}: cannot be read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise UserError(f"unk dictionary {path}: not UTF-8 text; give {FORMAT}") from None
    entries: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        source, target = fields[0].strip(), fields[-1].strip()
        if len(fields) != 2 or len(source.split()) != 1 or len(target.split()) != 1:
            raise UserError(
                f"unk dictionary {path} line {number}: {line[:60]!r} is not "
                f"source_word<TAB>target_word; give {FORMAT}"
            )
        entries.setdefault(source, target)
    return MappingProxyType(entries)
