"""A SentencePiece model file read and renumbered as bytes, without protobuf (which nmt does
not depend on): what nmt.data.given needs of a model it did not train.

The file is a serialized `ModelProto` (sentencepiece_model.proto): field 1 repeats the
pieces (`SentencePiece`: piece = 1, score = 2, type = 3 with NORMAL 1, UNKNOWN 2, CONTROL 3),
field 2 is the `TrainerSpec` (model_type = 3; unk_id 40, bos_id 41, eos_id 42, pad_id 43;
their pieces 45-48). A piece's id is its place among the pieces. Protobuf readers take
fields in any order and the last of a repeated scalar, so a field is replaced by writing
the message without it and appending the new value.
"""

from __future__ import annotations

import struct

from nmt.vocab import SPECIALS

MODEL_TYPES = {1: "unigram", 2: "bpe", 3: "word", 4: "char"}
NORMAL, UNKNOWN, CONTROL = 1, 2, 3
PIECES, TRAINER_SPEC = 1, 2
# TrainerSpec: the special ids (unk, bos, eos, pad) and their pieces, with proto defaults
ID_FIELDS = {"unk": (40, 0), "bos": (41, 1), "eos": (42, 2), "pad": (43, -1)}
PIECE_FIELDS = {"unk": 45, "bos": 46, "eos": 47, "pad": 48}
NMT_ORDER = ("pad", "unk", "bos", "eos")  # nmt.vocab: PAD, UNK, BOS, EOS = 0, 1, 2, 3

Field = tuple[int, int, bytes | int, bytes]  # number, wire type, value, the field's bytes


def fields(message: bytes) -> list[Field]:
    """The fields of a serialized message, in order; ValueError if it is not one."""
    out: list[Field] = []
    i = 0
    while i < len(message):
        start = i
        key, i = _varint(message, i)
        number, wire = key >> 3, key & 7
        value: bytes | int
        if wire == 0:
            value, i = _varint(message, i)
        elif wire == 2:
            size, i = _varint(message, i)
            value, i = message[i : i + size], i + size
        elif wire in (1, 5):  # fixed 64 / 32 bits
            size = 8 if wire == 1 else 4
            value, i = message[i : i + size], i + size
        else:
            raise ValueError(f"wire type {wire}")
        if i > len(message) or number == 0:
            raise ValueError("truncated")
        out.append((number, wire, value, message[start:i]))
    return out


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if i >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[i]
        value |= (byte & 0x7F) << shift
        i, shift = i + 1, shift + 7
        if not byte & 0x80:
            return value, i


def _last(message: bytes, number: int, default: bytes | int | None = None) -> bytes | int | None:
    found = [value for n, _, value, _ in fields(message) if n == number]
    return found[-1] if found else default


def _signed(value: bytes | int | None, default: int) -> int:
    """An int32 field's value (negative ones are ten-byte varints)."""
    if not isinstance(value, int):
        return default
    return value - (1 << 64) if value >= 1 << 63 else value


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field_bytes(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return _encode_varint(number << 3) + _encode_varint(value)
    return _encode_varint(number << 3 | 2) + _encode_varint(len(value)) + value


def model_type(proto: bytes) -> str:
    """The algorithm the model was trained with: unigram (the proto's default), bpe, word
    or char."""
    spec = _last(proto, TRAINER_SPEC, b"")
    number = _last(spec, 3, 1) if isinstance(spec, bytes) else 1
    return MODEL_TYPES.get(number if isinstance(number, int) else 1, "unigram")


def with_nmt_specials(proto: bytes) -> bytes:
    """The model with nmt's special symbols as ids 0-3 (<pad> <unk> <s> </s>) and every
    other piece after them in its own order, with its score and type: the same
    segmentation, renumbered. The model's own unknown piece, and its bos, eos and pad
    pieces where it has them, give way to nmt's. ValueError if `proto` is no model."""
    top = fields(proto)
    pieces = [value for n, w, value, _ in top if n == PIECES and w == 2]
    spec = _last(proto, TRAINER_SPEC, b"")
    if not pieces or not isinstance(spec, bytes):
        raise ValueError("no pieces")
    types = [_last(p, 3, NORMAL) for p in pieces]  # type: ignore[arg-type]
    special = {types.index(UNKNOWN)} if UNKNOWN in types else set()
    for name in ("bos", "eos", "pad"):
        number, default = ID_FIELDS[name]
        i = _signed(_last(spec, number), default)
        if 0 <= i < len(pieces) and types[i] == CONTROL:
            special.add(i)
    kept = [p for i, p in enumerate(pieces) if i not in special]
    named = dict(zip(NMT_ORDER, SPECIALS, strict=True))
    new = [_piece(named[name], UNKNOWN if name == "unk" else CONTROL) for name in NMT_ORDER]
    replaced = {*(number for number, _ in ID_FIELDS.values()), *PIECE_FIELDS.values()}
    spec_out = b"".join(raw for n, _, _, raw in fields(spec) if n not in replaced)
    for k, name in enumerate(NMT_ORDER):
        spec_out += _field_bytes(ID_FIELDS[name][0], k)
        spec_out += _field_bytes(PIECE_FIELDS[name], named[name].encode())
    rest = b"".join(raw for n, _, _, raw in top if n not in (PIECES, TRAINER_SPEC))
    body = b"".join(_field_bytes(PIECES, p) for p in [*new, *kept])
    return body + _field_bytes(TRAINER_SPEC, spec_out) + rest


def _piece(text: str, kind: int) -> bytes:
    score = _encode_varint(2 << 3 | 5) + struct.pack("<f", 0.0)
    return _field_bytes(1, text.encode()) + score + _field_bytes(3, kind)
