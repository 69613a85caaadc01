"""Tokenizers the user brings (nmt.data.given): `tokenizer.model`, an existing SentencePiece
model, and `tokenizer.vocab`, a word vocabulary over pre-tokenized text (one per side with
`target_model` / `target_vocab`).

Checked here: a given model is used as is (its pieces, its size, not the recipe's
vocab_size), and `nmt train` copies it into the model directory byte for byte, where
translation finds it; a vocabulary file with counts after its tokens (subword-nmt's and
OpenNMT-py's format) gives the words in file order after the specials; per-side files
load per side; the model type is read from the model itself (for tokenizer.sampling);
a model numbered as SentencePiece numbers by default (or with other special ids) is
renumbered to nmt's specials with the same segmentation; and a missing, unreadable or
non-SentencePiece file, and the keys set without their type or side, are each one line
naming the key and the path.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import sentencepiece as spm
from helpers.cli import one_line_error, set_args, translate, write_lines

from nmt.cli.main import app
from nmt.data import toy
from nmt.data.given import given_tokenizers, model_type
from nmt.data.prepare import prepare_data
from nmt.data.prepared import prepared_data, read_manifest
from nmt.data.tokenizer import SentencePieceTokenizer, WordTokenizer
from nmt.errors import UserError
from nmt.recipe.schema import SamplingConfig, TokenizerConfig
from nmt.vocab import SPECIALS

PAIRS = toy.numbers("train", 300)
NMT_IDS = {"pad_id": 0, "unk_id": 1, "bos_id": 2, "eos_id": 3}


def spm_model(path: Path, model_type: str = "unigram", **ids: int) -> Path:
    """A SentencePiece model trained outside nmt on the toy pairs (both sides), written to
    `path`; `ids` as spm_train's --pad_id etc. (default: SentencePiece's own)."""
    text = write_lines(path.with_suffix(".txt"), [s for pair in PAIRS for s in pair])
    spm.SentencePieceTrainer.train(
        input=str(text),
        model_prefix=str(path.with_suffix("")),
        vocab_size=90,
        model_type=model_type,
        minloglevel=2,
        **ids,
    )
    return path


@pytest.fixture(scope="module")
def own_model(tmp_path_factory) -> Path:
    return spm_model(tmp_path_factory.mktemp("own") / "own.model", "bpe", **NMT_IDS)


def test_a_given_sentencepiece_model_is_used_as_is(own_model):
    cfg = TokenizerConfig(model=str(own_model), vocab_size=8000)
    src, tgt = given_tokenizers(cfg)
    assert src is tgt and isinstance(src, SentencePieceTokenizer)
    assert src.to_bytes() == own_model.read_bytes()
    assert src.vocab_size == 90  # the model's, not the recipe's 8000


def test_no_given_file_means_train():
    assert given_tokenizers(TokenizerConfig()) is None


def test_the_model_type_is_read_from_the_model(own_model, tmp_path):
    assert model_type(own_model.read_bytes()) == "bpe"
    unigram = spm_model(tmp_path / "uni.model", "unigram", **NMT_IDS)
    assert model_type(unigram.read_bytes()) == "unigram"
    sampled = TokenizerConfig(model=str(own_model), sampling=SamplingConfig(alpha=0.1))
    with pytest.raises(UserError, match=r"own\.model is a bpe model: set tokenizer\.model_type"):
        given_tokenizers(sampled)  # model_type unigram, the default, would sample wrongly


@pytest.mark.parametrize(
    "ids",
    [{}, {"pad_id": 3, "bos_id": -1}, {"user_defined_symbols": ["<sep>"]}],
    ids=["defaults", "pad-at-3-no-bos", "user-symbol"],
)
@pytest.mark.parametrize("kind", ["unigram", "bpe"])
def test_a_model_with_other_specials_is_renumbered_and_segments_alike(tmp_path, kind, ids):
    path = spm_model(tmp_path / "theirs.model", kind, **ids)
    original = spm.SentencePieceProcessor(model_file=str(path))
    assert original.id_to_piece(0) == "<unk>"  # SentencePiece's own numbering
    (tok, _) = given_tokenizers(TokenizerConfig(model=str(path)))
    assert tok.pieces(range(4)) == list(SPECIALS)
    assert (tok.sp.pad_id(), tok.sp.unk_id(), tok.sp.bos_id(), tok.sp.eos_id()) == (0, 1, 2, 3)
    texts = [s for pair in toy.numbers("test", 100) for s in pair] + ["ÄÖ <sep> xyz </s>"]
    assert tok.sp.encode(texts, out_type=str) == original.encode(texts, out_type=str)
    assert tok.decode(tok.encode(texts)) == original.decode(original.encode(texts))
    assert model_type(tok.to_bytes()) == kind


def test_a_model_with_nmts_specials_is_kept_byte_for_byte(own_model):
    (tok, _) = given_tokenizers(TokenizerConfig(model=str(own_model)))
    assert tok.to_bytes() == own_model.read_bytes()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("directory", "is a directory"),
        (b"not a model", "not a SentencePiece model"),
        (b"", "not a SentencePiece model"),
    ],
)
def test_a_broken_model_file_is_one_line_naming_key_and_path(tmp_path, content, expected):
    path = tmp_path / "x.model"
    if content == "directory":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=f"^tokenizer.model: {path}.*{expected}") as error:
        given_tokenizers(TokenizerConfig(model=str(path)))
    assert "\n" not in str(error.value)


def test_a_vocabulary_file_with_counts_keeps_its_order(tmp_path):
    vocab = write_lines(tmp_path / "v.txt", ["hundred 208", "<unk>\t3", "one\t94", "", "one 1"])
    (tok, _) = given_tokenizers(TokenizerConfig(type="word", vocab=str(vocab)))
    assert isinstance(tok, WordTokenizer)
    assert tok.words == [*SPECIALS, "hundred", "one"]
    assert tok.encode(["one hundred two"]) == [[5, 4, 1]]


def test_a_vocabulary_that_is_not_one_is_refused(tmp_path):
    binary = tmp_path / "v.bin"
    binary.write_bytes(b"\xff\xfe\x00")
    cfg = TokenizerConfig(type="word", vocab=str(binary))
    with pytest.raises(UserError, match=f"^tokenizer.vocab: {binary}: not UTF-8 text"):
        given_tokenizers(cfg)
    empty = write_lines(tmp_path / "v.txt", ["", "<pad>"])
    with pytest.raises(UserError, match=f"^tokenizer.vocab: {empty}: no tokens"):
        given_tokenizers(dataclasses.replace(cfg, vocab=str(empty)))


def test_one_vocabulary_per_side(tmp_path):
    source = write_lines(tmp_path / "src.txt", ["one", "two"])
    target = write_lines(tmp_path / "tgt.txt", ["eins"])
    cfg = TokenizerConfig(type="word", joint=False, vocab=str(source), target_vocab=str(target))
    src, tgt = given_tokenizers(cfg)
    assert src.words[4:] == ["one", "two"] and tgt.words[4:] == ["eins"]
    missing = dataclasses.replace(cfg, target_vocab=str(tmp_path / "nope.txt"))
    with pytest.raises(UserError, match=r"^tokenizer\.target_vocab: .*nope\.txt: no such file"):
        given_tokenizers(missing)


def test_one_sentencepiece_model_per_side(own_model, tmp_path):
    target = spm_model(tmp_path / "tgt.model", "unigram", **NMT_IDS)
    cfg = TokenizerConfig(joint=False, model=str(own_model), target_model=str(target))
    src, tgt = given_tokenizers(cfg)
    assert src.to_bytes() == own_model.read_bytes() and tgt.to_bytes() == target.read_bytes()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["tokenizer.vocab=v.txt"], "tokenizer.vocab names a word tokenizer file: it needs "),
        (["tokenizer.type=word", "tokenizer.model=m"], "tokenizer.model names a sentencepiece"),
        (["tokenizer.target_model=m"], "tokenizer.target_model is the target side's file"),
        (
            ["tokenizer.joint=false", "tokenizer.model=m"],
            "tokenizer.joint: false with tokenizer.model or tokenizer.target_model: give both",
        ),
    ],
)
def test_the_keys_need_their_type_and_side(runner, quickstart, tmp_path, overrides, expected):
    args = ["train", str(quickstart), *set_args(overrides), "--output-dir", str(tmp_path / "r")]
    one_line_error(runner.invoke(app, args), expected)
    assert not (tmp_path / "r").exists()


def test_prepare_reports_the_given_tokenizer(make_recipe, own_model, tmp_path):
    recipe = make_recipe(tmp_path / "r", f"tokenizer.model={own_model}")
    events = []
    data = prepare_data(recipe, events.append)
    assert data.src_tok.vocab_size == 90
    lines = [str(getattr(e, "text", "")) for e in events]
    assert any("tokenizers as given (tokenizer.model " in line for line in lines), lines


def test_nmt_train_copies_the_given_model(runner, quickstart, tiny_overrides, own_model, tmp_path):
    out = tmp_path / "run"
    overrides = [*tiny_overrides, f"tokenizer.model={own_model}", "train.max_steps=2"]
    args = ["train", str(quickstart), *set_args(overrides), "--output-dir", str(out)]
    result = runner.invoke(app, [*args, "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (out / "spm.model").read_bytes() == own_model.read_bytes()
    own_model.rename(own_model.with_suffix(".gone"))  # the model directory needs it no more
    try:
        result = translate(runner, out, "-", input="one hundred\n")
        assert result.exit_code == 0, result.output
    finally:
        own_model.with_suffix(".gone").rename(own_model)


def test_nmt_train_refuses_a_missing_model_before_writing(runner, quickstart, tmp_path):
    out = tmp_path / "run"
    missing = tmp_path / "missing.model"
    overrides = [f"tokenizer.model={missing}"]
    args = ["train", str(quickstart), *set_args(overrides), "--output-dir", str(out)]
    one_line_error(runner.invoke(app, args), f"tokenizer.model: {missing}: no such file")
    assert not out.exists()


def test_a_prepared_dataset_uses_the_given_model_and_goes_stale_with_it(
    make_recipe, own_model, tmp_path
):
    given = tmp_path / "given.model"
    given.write_bytes(own_model.read_bytes())
    data_dir = tmp_path / "data"
    recipe = make_recipe(tmp_path / "r", f"tokenizer.model={given}", f"data.prepared={data_dir}")
    events = []
    data = prepared_data(recipe, events.append)
    assert data.src_tok.vocab_size == 90
    assert (data_dir / "spm.model").read_bytes() == own_model.read_bytes()
    assert read_manifest(data_dir)["tokenizers"] == "given"
    lines = [str(getattr(e, "text", "")) for e in events]
    assert any("tokenizers as given (tokenizer.model " in line for line in lines), lines
    spm_model(given, "unigram", **NMT_IDS)  # another model under the same name
    with pytest.raises(UserError, match=f"its input {given} has changed since"):
        prepared_data(recipe)
