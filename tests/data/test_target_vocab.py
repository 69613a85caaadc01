"""The target vocabulary is what the target side uses (nmt.data.tokenizer.TargetSubset).

Checked here: ids round-trip through the restricted vocabulary (special symbols keep
their ids, a piece the target side never used becomes <unk>); the subset is saved beside
the tokenizer and loads back; a trained model's output layer spans the subset only, and
its translations are made of the subset's pieces; restrict_target: false keeps the whole
joint vocabulary.
"""

from __future__ import annotations

import pytest

from nmt.data.tokenizer import TargetSubset, load_tokenizers, tokenizer_files, train_tokenizers
from nmt.data.toy import numbers
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.recipe.schema import TokenizerConfig
from nmt.vocab import SPECIALS, UNK

PAIRS = numbers("train", 300)
ENGLISH, GERMAN = [s for s, _ in PAIRS], [t for _, t in PAIRS]
CFG = TokenizerConfig(vocab_size=120)


@pytest.fixture(scope="module")
def subset() -> TargetSubset:
    _, tgt = train_tokenizers(CFG, ENGLISH, GERMAN)
    return TargetSubset.of_texts(tgt, GERMAN)


def test_ids_round_trip_through_the_subset(subset):
    inner = subset.inner
    assert subset.vocab_size < inner.vocab_size  # English-only pieces are gone
    assert subset.kept[: len(SPECIALS)] == list(range(len(SPECIALS)))
    ids = subset.encode(GERMAN[:20])
    assert all(0 <= i < subset.vocab_size for row in ids for i in row)
    assert UNK not in {i for row in ids for i in row}  # every target piece is kept
    assert subset.decode(ids) == inner.decode(inner.encode(GERMAN[:20]))
    assert subset.pieces(ids[0]) == inner.pieces(inner.encode(GERMAN[:1])[0])


def test_a_piece_the_target_never_used_becomes_unk(subset):
    inner = subset.inner
    unused = [i for i in range(inner.vocab_size) if i not in subset.index]
    texts = {i: inner.decode([[i]])[0] for i in unused}
    # pieces that are a whole text on their own ("▁hundred", say), encoded back to themselves
    alone = [i for i in unused if inner.encode([texts[i]])[0] == [i]]
    assert alone
    assert [subset.encode([texts[i]])[0] for i in alone] == [[UNK]] * len(alone)


def test_the_subset_is_saved_and_loads_back(subset, tmp_path):
    src, _ = train_tokenizers(CFG, ENGLISH, GERMAN)
    for name, data in tokenizer_files(CFG, src, subset).items():
        (tmp_path / name).write_bytes(data)
    assert (tmp_path / "target_vocab.txt").read_text().splitlines()[1] == "1\t<unk>"
    _, loaded = load_tokenizers(CFG, tmp_path)
    assert isinstance(loaded, TargetSubset) and loaded.kept == subset.kept
    (tmp_path / "target_vocab.txt").write_text("0\t<pad>\n99999\tnope\n")
    with pytest.raises(UserError, match="target_vocab.txt"):
        load_tokenizers(CFG, tmp_path)


def test_a_model_writes_only_pieces_of_its_target_subset(model_dir):
    translator = Translator.load(model_dir, "cpu")
    subset = translator.tgt_tokenizer
    assert isinstance(subset, TargetSubset)
    assert translator.model.decoder.output.out_features == subset.vocab_size
    assert subset.vocab_size < subset.inner.vocab_size
    allowed = set(subset.inner.pieces(subset.kept[len(SPECIALS) :]))
    for found in translator.search([s for s, _ in numbers("test", 8)], beam_size=2):
        assert set(found[0].target_pieces) <= allowed


def test_restrict_target_false_keeps_the_joint_vocabulary(tmp_path, make_recipe):
    from nmt.training.setup import train

    out = tmp_path / "run"
    train(make_recipe(out, "tokenizer.restrict_target=false", "train.max_steps=2"), "cpu")
    assert not (out / "target_vocab.txt").exists()
    translator = Translator.load(out, "cpu")
    assert translator.tgt_tokenizer is translator.src_tokenizer
    assert translator.model.decoder.output.out_features == translator.src_tokenizer.vocab_size
