"""Tokenizers the user brings: an existing SentencePiece model (`tokenizer.model`), or a
word vocabulary over pre-tokenized text (`tokenizer.vocab`), one per side with joint: false
(`target_model`, `target_vocab`). They are used as they are, never trained, and
`nmt train` copies them into the model directory under the usual names (spm.model,
vocab.txt, src./tgt.), so a model directory stays complete on its own.

nmt pads with id 0 and frames targets with ids 2 and 3 (nmt.vocab), and a model trained
with SentencePiece's defaults has <unk> <s> </s> at 0-2 and no <pad>. Such a model is
renumbered (nmt.data.spm_proto.with_nmt_specials): nmt's four special symbols take ids
0-3 in place of the model's own, and every other piece follows in its order with its
score, so text segments into the same pieces. The model directory keeps the renumbered
model. A model nmt trained, or one trained with `spm_train --pad_id=0 --unk_id=1
--bos_id=2 --eos_id=3`, is kept byte for byte.

A vocabulary file is one token per line; anything after the first whitespace on a line (a
count, as subword-nmt's `get_vocab.py`, OpenNMT-py's `build_vocab` and fairseq's dict.txt
write it) is ignored. Special symbols found in the file are dropped and put first, and a
token repeated keeps its first place. Its size is the file's: tokenizer.vocab_size is not
used for either kind.
"""

from __future__ import annotations

from pathlib import Path

from nmt.data.spm_proto import model_type, with_nmt_specials
from nmt.data.tokenizer import SentencePieceTokenizer, Tokenizer, WordTokenizer
from nmt.errors import UserError
from nmt.recipe.schema import TokenizerConfig
from nmt.vocab import SPECIALS

SPM_FLAGS = "--pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3"


def given_files(cfg: TokenizerConfig) -> list[tuple[str, str]]:
    """(recipe key, path) of each tokenizer file the recipe gives: none, one, or two."""
    keys = ("model", "target_model", "vocab", "target_vocab")
    return [(f"tokenizer.{k}", getattr(cfg, k)) for k in keys if getattr(cfg, k) is not None]


def given_tokenizers(cfg: TokenizerConfig) -> tuple[Tokenizer, Tokenizer] | None:
    """The source and target tokenizers the recipe names (one object for a joint one),
    each checked, or None when the recipe names none and they are to be trained."""
    files = given_files(cfg)
    if not files:
        return None
    loaded = [_load(cfg, key, Path(path)) for key, path in files]
    return (loaded[0], loaded[0]) if len(loaded) == 1 else (loaded[0], loaded[1])


def _load(cfg: TokenizerConfig, key: str, path: Path) -> Tokenizer:
    named = f"{key}: {path}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{named}: no such file; give the path of an existing file") from None
    except IsADirectoryError:
        raise UserError(f"{named} is a directory; give the file itself") from None
    except OSError as e:
        raise UserError(f"{named}: cannot be read ({e.strerror or e})") from None
    if cfg.type == "word":
        return _vocabulary(named, data)
    return _sentencepiece(cfg, named, data)


def _sentencepiece(cfg: TokenizerConfig, named: str, data: bytes) -> SentencePieceTokenizer:
    try:
        if not data:  # SentencePiece would take it as no model at all
            raise RuntimeError("empty")
        tokenizer = SentencePieceTokenizer(data)
    except RuntimeError:
        raise UserError(
            f"{named}: not a SentencePiece model (a .model file that spm_train wrote)"
        ) from None
    if _specials(tokenizer) != list(SPECIALS):  # renumbered: nmt's specials first
        found = " ".join(_specials(tokenizer))
        try:
            renumbered: SentencePieceTokenizer | None = None
            renumbered = SentencePieceTokenizer(with_nmt_specials(data))
        except (ValueError, RuntimeError):
            pass
        if renumbered is None or _specials(renumbered) != list(SPECIALS):
            raise UserError(
                f"{named}: its ids 0-3 are {found}, not nmt's {' '.join(SPECIALS)}, and "
                f"renumbering failed; train it with spm_train {SPM_FLAGS}"
            )
        tokenizer = renumbered
    kind = model_type(data)
    if cfg.sampling is not None and kind not in ("unigram", "bpe"):
        raise UserError(
            f"{named} is a {kind} model: tokenizer.sampling samples unigram and bpe models "
            "only; remove tokenizer.sampling"
        )
    if cfg.sampling is not None and kind != cfg.model_type:
        raise UserError(
            f"{named} is a {kind} model: set tokenizer.model_type: {kind}, which "
            "tokenizer.sampling samples by"
        )
    return tokenizer


def _specials(tokenizer: SentencePieceTokenizer) -> list[str]:
    return tokenizer.pieces(range(min(len(SPECIALS), tokenizer.vocab_size)))


def _vocabulary(named: str, data: bytes) -> WordTokenizer:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{named}: not UTF-8 text, so not a vocabulary file") from None
    tokens = [line.split()[0] for line in text.splitlines() if line.strip()]
    words = dict.fromkeys(t for t in tokens if t not in SPECIALS)
    if not words:
        raise UserError(f"{named}: no tokens; a vocabulary file has one token per line")
    return WordTokenizer([*SPECIALS, *words])
