"""Tokenizers (nmt.data.tokenizer): SentencePiece subwords and whole words behind one interface.

Checked here: the special symbols hold ids 0..3 in both kinds; SentencePiece (unigram and
BPE) trains on a tiny corpus, round-trips text, tolerates a vocabulary size the corpus
cannot fill, and maps unseen characters to <unk>; joint training gives one tokenizer for
both sides, per-side training two; tokenizers saved under `file_names` load back with
identical encodings; the word tokenizer ranks by frequency, ties alphabetically, and
decodes by joining words; a missing or broken tokenizer file (junk bytes, an empty file,
a SentencePiece model without nmt's specials, a vocab.txt not starting with them or not
UTF-8) is a `UserError` naming it, from the library and as one `error:` line from the CLI.
"""

from __future__ import annotations

import io
import re

import pytest
import sentencepiece as spm

from nmt.cli.main import app
from nmt.data import toy
from nmt.data.tokenizer import (
    BOS,
    EOS,
    PAD,
    SPECIALS,
    UNK,
    SentencePieceTokenizer,
    WordTokenizer,
    file_names,
    load_tokenizers,
    train_tokenizers,
)
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.recipe.schema import TokenizerConfig

PAIRS = toy.numbers("valid", 200)
ENGLISH = [en for en, _ in PAIRS]
GERMAN = [de for _, de in PAIRS]


def spm_config(**kw) -> TokenizerConfig:
    return TokenizerConfig(**{"type": "sentencepiece", "vocab_size": 80, **kw})


@pytest.fixture(scope="module", params=["unigram", "bpe"])
def spm_joint(request) -> SentencePieceTokenizer:
    cfg = spm_config(model_type=request.param)
    src, tgt = train_tokenizers(cfg, ENGLISH, GERMAN)
    return src


def test_specials_are_the_first_ids():
    assert (PAD, UNK, BOS, EOS) == (0, 1, 2, 3)
    assert SPECIALS == ("<pad>", "<unk>", "<s>", "</s>")


def test_sentencepiece_specials(spm_joint):
    assert [spm_joint.sp.id_to_piece(i) for i in range(4)] == list(SPECIALS)
    assert spm_joint.sp.pad_id() == PAD and spm_joint.sp.unk_id() == UNK
    assert spm_joint.sp.bos_id() == BOS and spm_joint.sp.eos_id() == EOS


def test_sentencepiece_round_trip(spm_joint):
    texts = ENGLISH[:50] + GERMAN[:50]
    ids = spm_joint.encode(texts)
    assert all(isinstance(i, int) for row in ids for i in row)
    assert all(4 <= i < spm_joint.vocab_size for row in ids for i in row)
    assert spm_joint.decode(ids) == texts


def test_sentencepiece_vocab_size_is_the_asked_size(spm_joint):
    assert spm_joint.vocab_size == 80


def test_sentencepiece_subwords_are_shorter_than_characters(spm_joint):
    text = "dreihundertzweiundvierzig"
    assert len(spm_joint.encode([text])[0]) < len(text)


def test_sentencepiece_unseen_character_is_unk(spm_joint):
    assert UNK in spm_joint.encode(["ж"])[0]


def test_sentencepiece_pieces(spm_joint):
    ids = spm_joint.encode(["one red dog sleeps"])[0]
    assert "".join(spm_joint.pieces(ids)).replace("▁", " ").strip() == "one red dog sleeps"


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_soft_vocab_limit(model_type):
    """More pieces than a tiny corpus supports gives a smaller vocabulary, not an error."""
    texts = ["ab ab ba", "ba ab"]
    tok = SentencePieceTokenizer.train(texts, 5000, model_type)
    assert 4 < tok.vocab_size < 5000
    assert tok.decode(tok.encode(texts)) == texts


def test_joint_gives_one_tokenizer_for_both_sides():
    src, tgt = train_tokenizers(spm_config(joint=True), ENGLISH, GERMAN)
    assert src is tgt


def test_per_side_gives_two_tokenizers():
    src, tgt = train_tokenizers(spm_config(joint=False, vocab_size=60), ENGLISH, GERMAN)
    assert src is not tgt
    assert src.to_bytes() != tgt.to_bytes()
    # each side's vocabulary is learnt from its own language only
    assert any("ß" in piece for piece in tgt.pieces(range(tgt.vocab_size)))
    assert not any("ß" in piece for piece in src.pieces(range(src.vocab_size)))
    assert tgt.encode(["dreißig"])[0] != src.encode(["dreißig"])[0]
    assert UNK in src.encode(["dreißig"])[0] and UNK not in tgt.encode(["dreißig"])[0]


def test_file_names():
    assert file_names(TokenizerConfig(type="sentencepiece", joint=True)) == (
        "spm.model",
        "spm.model",
    )
    assert file_names(TokenizerConfig(type="sentencepiece", joint=False)) == (
        "src.spm.model",
        "tgt.spm.model",
    )
    assert file_names(TokenizerConfig(type="word", joint=True)) == ("vocab.txt", "vocab.txt")
    assert file_names(TokenizerConfig(type="word", joint=False)) == (
        "src.vocab.txt",
        "tgt.vocab.txt",
    )


def save(tokenizers, cfg, model_dir):
    for name, tok in zip(file_names(cfg), tokenizers, strict=True):
        (model_dir / name).write_bytes(tok.to_bytes())


@pytest.mark.parametrize("kind", ["sentencepiece", "word"])
@pytest.mark.parametrize("joint", [True, False])
def test_save_and_load_give_identical_encodings(tmp_path, kind, joint):
    cfg = TokenizerConfig(type=kind, vocab_size=70, joint=joint)
    src, tgt = train_tokenizers(cfg, ENGLISH, GERMAN)
    save((src, tgt), cfg, tmp_path)
    src2, tgt2 = load_tokenizers(cfg, tmp_path)
    assert type(src2) is type(src) and type(tgt2) is type(tgt)
    assert (src2 is tgt2) == joint
    texts = ENGLISH[:20] + GERMAN[:20] + ["unseen wörter ж"]
    assert src2.encode(texts) == src.encode(texts)
    assert tgt2.encode(texts) == tgt.encode(texts)
    assert src2.vocab_size == src.vocab_size and tgt2.vocab_size == tgt.vocab_size


@pytest.mark.parametrize("kind", ["sentencepiece", "word"])
def test_missing_tokenizer_file_is_named(tmp_path, kind):
    cfg = TokenizerConfig(type=kind, vocab_size=50, joint=False)
    src, tgt = train_tokenizers(cfg, ENGLISH, GERMAN)
    src_name, tgt_name = file_names(cfg)
    (tmp_path / src_name).write_bytes(src.to_bytes())
    with pytest.raises(UserError, match=re.escape(str(tmp_path / tgt_name))) as e:
        load_tokenizers(cfg, tmp_path)
    assert str(tmp_path / tgt_name) in str(e.value)


def test_empty_model_dir(tmp_path):
    with pytest.raises(UserError, match="spm.model"):
        load_tokenizers(TokenizerConfig(), tmp_path)


FIX = "copy the model directory again or train again"


@pytest.mark.parametrize(
    ("kind", "content", "words"),
    [
        ("sentencepiece", b"\x00junk\xffbytes, not a protobuf" * 10, "not a SentencePiece model"),
        ("sentencepiece", b"", "not a SentencePiece model"),
        ("word", b"the\ncat\n", "its first lines must be <pad> <unk> <s> </s>"),
        ("word", b"", "its first lines must be"),
        ("word", "<pad>\n<unk>\n<s>\n</s>\nGr\xfc\xdfe\n".encode("latin-1"), "not UTF-8"),
    ],
    ids=["spm-junk", "spm-empty", "words-no-specials", "words-empty", "words-latin1"],
)
@pytest.mark.parametrize("joint", [True, False])
def test_broken_tokenizer_file_is_named(tmp_path, kind, content, words, joint):
    cfg = TokenizerConfig(type=kind, vocab_size=50, joint=joint)
    save(train_tokenizers(cfg, ENGLISH, GERMAN), cfg, tmp_path)
    broken = tmp_path / file_names(cfg)[1]  # the target side's, or the joint file
    broken.write_bytes(content)
    with pytest.raises(UserError, match="^" + re.escape(f"{broken}: ")) as e:
        load_tokenizers(cfg, tmp_path)
    message = str(e.value)
    assert message.startswith(f"{broken}: ") and words in message and FIX in message


def test_sentencepiece_model_without_nmt_specials(tmp_path):
    proto = io.BytesIO()  # SentencePiece's own id layout: <unk>=0, <s>=1, </s>=2, no <pad>
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(ENGLISH), model_writer=proto, vocab_size=60, minloglevel=2
    )
    (tmp_path / "spm.model").write_bytes(proto.getvalue())
    with pytest.raises(UserError, match="spm.model: a SentencePiece model without nmt's special"):
        load_tokenizers(TokenizerConfig(), tmp_path)


def assert_one_error_line(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert sum(x.startswith("error: ") for x in lines) == 1, result.stderr
    line = lines[-1]  # informational lines may come before it, never after
    assert line.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in line, (fragment, line)


def test_junk_sentencepiece_model_in_a_model_directory(copy_model, runner, tmp_path):
    model = copy_model()
    (model / "spm.model").write_bytes(b"this is not a SentencePiece model\n" * 20)
    with pytest.raises(UserError, match=re.escape(str(model / "spm.model"))) as e:
        Translator.load(model, "cpu")
    assert str(model / "spm.model") in str(e.value) and FIX in str(e.value)

    source = tmp_path / "in.en"
    source.write_text("one red dog sleeps\n", encoding="utf-8")
    result = runner.invoke(
        app, ["translate", str(source), "--model", str(model), "--device", "cpu"]
    )
    assert_one_error_line(result, str(model / "spm.model"), "not a SentencePiece model", FIX)
    assert result.stdout == ""

    reference = tmp_path / "ref.de"
    reference.write_text("ein roter Hund schläft\n", encoding="utf-8")
    args = ["bleu", "--model", str(model), "--source", str(source), "--reference", str(reference)]
    result = runner.invoke(app, ["evaluate", *args, "--device", "cpu"])
    assert_one_error_line(result, str(model / "spm.model"), "not a SentencePiece model")


# ---------------------------------------------------------------------------- words

WORDS = ["the dog sees the cat", "the cat sees a dog", "a bird"]


def test_word_vocabulary_by_frequency_then_alphabet():
    tok = WordTokenizer.train(WORDS, 9)
    # the: 3; cat, dog, a, sees: 2 (alphabetical: a, cat, dog, sees); bird: 1 (cut)
    assert tok.words == [*SPECIALS, "the", "a", "cat", "dog", "sees"]
    assert tok.vocab_size == 9


def test_word_vocabulary_smaller_than_asked():
    tok = WordTokenizer.train(WORDS, 1000)
    assert tok.vocab_size == len(SPECIALS) + 6


def test_word_specials_in_text_are_not_words():
    tok = WordTokenizer.train(["<s> x </s> <unk> <pad>"], 8000)
    assert tok.words == [*SPECIALS, "x"]


def test_word_encode_uses_unk_for_the_rest():
    tok = WordTokenizer.train(WORDS, 6)
    assert tok.words[4:] == ["the", "a"]
    assert tok.encode(["the bird sees a", ""]) == [[4, UNK, UNK, 5], []]


def test_word_decode_joins_words_and_drops_pad_bos_eos():
    tok = WordTokenizer.train(WORDS, 9)
    ids = tok.encode(["the cat sees a dog"])[0]
    assert tok.decode([ids]) == ["the cat sees a dog"]
    assert tok.decode([[BOS, *ids, EOS, PAD, PAD]]) == ["the cat sees a dog"]
    assert tok.decode([[4, UNK]]) == ["the <unk>"]
    assert tok.pieces([BOS, 4, EOS]) == ["the"]


def test_word_save_load_round_trip(tmp_path):
    tok = WordTokenizer.train(["Grüße aus Köln", "aus"], 8000)
    (tmp_path / "vocab.txt").write_bytes(tok.to_bytes())
    again = WordTokenizer.load(tmp_path / "vocab.txt")
    assert again.words == tok.words
    assert again.encode(["aus Köln x"]) == tok.encode(["aus Köln x"])


def test_word_vocabulary_must_start_with_specials():
    with pytest.raises(ValueError, match="starts with the special symbols"):
        WordTokenizer(["the", "cat"])


def test_special_symbols_written_in_word_text_are_unknown_words():
    tok = WordTokenizer.train(["a b", "a"], 100)
    assert tok.encode(["a </s> <s> <pad> b"]) == [[tok.index["a"], UNK, UNK, UNK, tok.index["b"]]]
