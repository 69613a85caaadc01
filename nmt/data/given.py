"""Tokenizers the user brings: an existing SentencePiece model (`tokenizer.model`), or a
word vocabulary over pre-tokenized text (`tokenizer.vocab`), one per side with joint: false
(`target_model`, `target_vocab`). They are used as they are, never trained, and
`nmt train` copies them into the model directory under the usual names (spm.model,
vocab.txt, src./tgt.), so a model directory stays complete on its own.

A SentencePiece model must hold nmt's special symbols at ids 0-3 (<pad> <unk> <s> </s>):
nmt pads with id 0 and frames targets with ids 2 and 3, and a model trained with
SentencePiece's defaults has no <pad> and <unk> at 0, so its ids would mean other things.
Renumbering it would need protobuf, which nmt does not depend on; the error says which
`spm_train` flags make a fitting model.

A vocabulary file is one token per line; anything after the first whitespace on a line (a
count, as subword-nmt's `get_vocab.py`, OpenNMT-py's `build_vocab` and fairseq's dict.txt
write it) is ignored. Special symbols found in the file are dropped and put first, and a
token repeated keeps its first place. Its size is the file's: tokenizer.vocab_size is not
used for either kind.
"""

from __future__ import annotations

from pathlib import Path

from nmt.data.tokenizer import SentencePieceTokenizer, Tokenizer, WordTokenizer
from nmt.errors import UserError
from nmt.recipe.schema import TokenizerConfig
from nmt.vocab import SPECIALS

SPM_FLAGS = "--pad_id=0 --unk_id=1 --bos_id=2 --eos_id=3"
# SentencePiece's ModelProto: field 2 is the TrainerSpec, whose field 3 is model_type
MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}


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
    found = tokenizer.pieces(range(min(len(SPECIALS), tokenizer.vocab_size)))
    if found != list(SPECIALS):
        raise UserError(
            f"{named}: its ids 0-3 are {' '.join(found)}, not nmt's {' '.join(SPECIALS)}; "
            f"train it with spm_train {SPM_FLAGS} (or let nmt train one: remove the key)"
        )
    kind = model_type(data)
    if cfg.sampling is not None and kind != cfg.model_type:
        raise UserError(
            f"{named} is a {kind} model: set tokenizer.model_type: {kind}, which "
            "tokenizer.sampling samples by"
        )
    return tokenizer


def model_type(proto: bytes) -> str:
    """The algorithm a SentencePiece model was trained with (unigram, bpe, word, char),
    read from its serialized ModelProto without protobuf (a missing field: unigram, the
    proto's default)."""
    spec = _field(proto, 2)
    number = _field(spec, 3) if isinstance(spec, bytes) else None
    return MODEL_TYPES.get(number if isinstance(number, int) else 1, "unigram")


def _field(message: bytes, wanted: int) -> bytes | int | None:
    """The last value of field `wanted` in a serialized protobuf message."""
    found: bytes | int | None = None
    i = 0
    while i < len(message):
        key, i = _varint(message, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(message, i)
        elif wire == 2:
            size, i = _varint(message, i)
            value, i = message[i : i + size], i + size
        elif wire in (1, 5):  # fixed 64 / 32 bits
            value, i = None, i + (8 if wire == 1 else 4)
        else:  # groups: not in SentencePiece's proto
            return found
        if number == wanted:
            found = value
    return found


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while i < len(data):
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            break
    return value, i


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
