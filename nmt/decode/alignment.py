"""Word alignments from attention, in Pharaoh format (`nmt translate --alignments`, the
`alignment` of a `Translation` and of the JSON API).

A model attends over pieces; users align words, the whitespace-separated words of the
source line and of the output. So each piece is first mapped to its word
(`piece_words`): SentencePiece marks the first piece of every word with "▁"; a word
tokenizer's pieces are the words. The attention of the chosen hypothesis, (target pieces
+ </s>) × source pieces, is then summed into words, the </s> row left out: a target
word's row is the sum of its pieces' rows, a source word's column the sum of its pieces'
columns (the attention mass the word got, so a word cut into three pieces is not split
three ways). Each target word is aligned to the source word of highest mass, as fairseq's
--print-alignment does for pieces (Luong et al. 2015's "hard" alignment):

    source "drei rote Hunde", output "three red dogs" → "0-0 1-1 2-2"

Pairs are `i-j`, i the source word and j the target word, both 0-based, one per target
word, in target order.
"""

from __future__ import annotations

from collections.abc import Sequence

from nmt.data.tokenizer import SentencePieceTokenizer, TargetSubset, Tokenizer

WORD_START = "▁"  # SentencePiece's mark of a piece that begins a word (U+2581)


def piece_words(pieces: Sequence[str], marked: bool) -> list[int | None]:
    """Each piece's word index (0-based), None for a piece with no text of its own.

    `marked`: the pieces are SentencePiece's, where "▁" stands for the space before a
    word: a piece with text begins a word if a "▁" came since the last text (or none came
    before it), and continues the last one otherwise; a bare "▁" is a space, no word's
    (so the words are those of the detokenized text's split()). Otherwise every piece is
    a word of its own (a word tokenizer's).
    """
    if not marked:
        return list(range(len(pieces)))
    words: list[int | None] = []
    word, space = -1, True
    for piece in pieces:
        space = space or piece.startswith(WORD_START)
        if not piece.strip(WORD_START):
            words.append(None)
            continue
        if space:
            word, space = word + 1, False
        words.append(word)
    return words


def marks_words(tokenizer: Tokenizer) -> bool:
    """Whether the tokenizer's pieces mark word starts with "▁" (SentencePiece's do)."""
    inner = tokenizer.inner if isinstance(tokenizer, TargetSubset) else tokenizer
    return isinstance(inner, SentencePieceTokenizer)


def align_pieces(
    attention: Sequence[Sequence[float]],
    source: tuple[Sequence[str], Tokenizer],
    target: tuple[Sequence[str], Tokenizer],
) -> list[tuple[int, int]]:
    """`word_alignment` of a hypothesis from its pieces and the tokenizers that made them."""
    (src_pieces, src_tok), (tgt_pieces, tgt_tok) = source, target
    src_words = piece_words(src_pieces, marks_words(src_tok))
    return word_alignment(attention, src_words, piece_words(tgt_pieces, marks_words(tgt_tok)))


def word_alignment(
    attention: Sequence[Sequence[float]],
    source_words: Sequence[int | None],
    target_words: Sequence[int | None],
) -> list[tuple[int, int]]:
    """(source word, target word) pairs, one per target word, in target order.

    attention: (T + 1) × S rows, one per target piece and a last one for </s> (left
    out); source_words (S,) and target_words (T,) the word of each piece (`piece_words`;
    pieces of no word are left out).
    """
    n_source = max((w for w in source_words if w is not None), default=-1) + 1
    if n_source == 0:
        return []
    mass: dict[int, list[float]] = {}
    for row, word in zip(attention[: len(target_words)], target_words, strict=True):
        if word is None:
            continue
        sums = mass.setdefault(word, [0.0] * n_source)
        for weight, source_word in zip(row, source_words, strict=True):
            if source_word is not None:
                sums[source_word] += weight
    return [(max(range(n_source), key=sums.__getitem__), j) for j, sums in sorted(mass.items())]


def pharaoh(alignment: Sequence[tuple[int, int]]) -> str:
    """ "i-j i-j ...": the pairs as Pharaoh (Moses, fast_align) write them."""
    return " ".join(f"{i}-{j}" for i, j in alignment)
