"""nmt.data.spm_proto without SentencePiece: the protobuf wire format read and written by
hand (the renumbering itself is tested on real models in tests/data/test_given.py)."""

from __future__ import annotations

import pytest

from nmt.data.spm_proto import _encode_varint, _field_bytes, fields, model_type, with_nmt_specials


def test_fields_read_back_what_was_written():
    message = _field_bytes(1, b"abc") + _field_bytes(40, 300) + _field_bytes(1, b"")
    assert [(n, v) for n, _, v, _ in fields(message)] == [(1, b"abc"), (40, 300), (1, b"")]
    assert b"".join(raw for *_, raw in fields(message)) == message


def test_a_negative_int32_is_a_ten_byte_varint():
    minus_one = _encode_varint((1 << 64) - 1)
    assert len(minus_one) == 10
    (field,) = fields(_encode_varint(43 << 3) + minus_one)
    assert field[2] == (1 << 64) - 1


@pytest.mark.parametrize("junk", [b"\x0a\x05ab", b"\xff\xff", b"\x0b", b"\x00\x01"])
def test_junk_is_a_value_error(junk):
    with pytest.raises(ValueError, match="truncated|wire type"):
        fields(junk)


def test_model_type_defaults_to_unigram_and_a_model_needs_pieces():
    assert model_type(b"") == "unigram"
    assert model_type(_field_bytes(2, _field_bytes(3, 2))) == "bpe"
    with pytest.raises(ValueError, match="no pieces"):
        with_nmt_specials(_field_bytes(2, b""))
