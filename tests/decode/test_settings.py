"""nmt.decode.settings: the decode settings printed beside a score name the length
penalty only where it is used (length_normalization gnmt), UNK replacement only where on."""

from __future__ import annotations

from nmt.decode.settings import decode_summary
from nmt.recipe.schema import DecodeConfig


def test_the_length_penalty_is_named_only_where_it_is_used():
    gnmt = decode_summary(DecodeConfig(beam_size=3, length_penalty=0.8))
    assert gnmt["beam_size"] == 3 and gnmt["length_penalty"] == 0.8
    for other in ("none", "average"):
        plain = decode_summary(DecodeConfig(beam_size=3, length_normalization=other))
        assert plain["length_normalization"] == other
        assert set(gnmt) - set(plain) == {"length_penalty"}
    assert "batch_tokens" not in gnmt  # how fast, not what is scored


def test_unk_replacement_is_named_only_where_it_is_on():
    assert "replace_unk" not in decode_summary(DecodeConfig())
    on = decode_summary(DecodeConfig(replace_unk=True))
    assert on["replace_unk"] is True and "unk_dictionary" not in on
    named = decode_summary(DecodeConfig(replace_unk=True, unk_dictionary="d.tsv"))
    assert named["unk_dictionary"] == "d.tsv"
