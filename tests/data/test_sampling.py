"""Subword regularization (`tokenizer.sampling`): training segmentations drawn per epoch.

Checked here: two epochs see different segmentations of the same sentences, and the same
seed the same ones; the ids of epoch e are a function of (seed, e) alone: the same in any
order of epochs, after other draws, and in another process (which SentencePiece's own
sampler does not give); the pairs that train are the same every epoch; valid uses the
best segmentation, and without sampling the best ids are handed over as they are. The
draws follow SentencePiece's distributions: the unigram lattice against an enumeration
of every segmentation, n-best and BPE-dropout against SentencePiece's own sampler; a run
of unknown characters is one <unk>. The restricted target vocabulary holds every piece a
draw can produce (an oracle over the vocabulary; no <unk> over several epochs, where the
best-only subset gives some). Recipe errors; a training run through the CLI; `--resume`
reproducing an uninterrupted run across epochs.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.cli import set_args
from safetensors.torch import load_file

from nmt.cli.main import app
from nmt.data.prepare import Data, prepare_data
from nmt.data.tokenizer import SentencePieceTokenizer, TargetSubset, train_tokenizers
from nmt.data.toy import numbers
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.recipe.load import load_recipe
from nmt.recipe.schema import TokenizerConfig
from nmt.training.setup import train
from nmt.vocab import UNK

SAMPLING = "tokenizer.sampling={alpha: 0.1}"
PAIRS = numbers("train", 300)
EN, DE = [s for s, _ in PAIRS], [t for _, t in PAIRS]


@pytest.fixture(scope="module", params=["unigram", "bpe"])
def model_type(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def data_of(quickstart, tiny_overrides):
    """data_of(*overrides): `prepare_data` of the tiny recipe, made once per overrides."""
    made: dict[tuple[str, ...], Data] = {}

    def make(*overrides: str) -> Data:
        if overrides not in made:
            recipe = load_recipe(quickstart, [*tiny_overrides, *overrides])
            made[overrides] = prepare_data(recipe)
        return made[overrides]

    return make


def test_epochs_differ_and_a_seed_repeats(data_of, model_type):
    data = data_of(SAMPLING, f"tokenizer.model_type={model_type}")
    epoch0, epoch1 = data.train_ids(0), data.train_ids(1)
    assert epoch0 != epoch1
    for side in (0, 1):  # most sentences are cut differently, on each side
        changed = sum(a != b for a, b in zip(epoch0[side], epoch1[side], strict=True))
        assert changed > len(epoch0[side]) / 4
    assert data.train_ids(0) == epoch0  # the same (seed, epoch): the same draw
    other = data_of(SAMPLING, f"tokenizer.model_type={model_type}", "seed=2")
    assert other.train_ids(0) != epoch0


def test_a_draw_is_a_segmentation_of_the_same_text(data_of, model_type):
    data = data_of(SAMPLING, f"tokenizer.model_type={model_type}")
    src, tgt = data.train_ids(3)
    assert data.src_tok.decode(src) == data.src_tok.decode(data.train.src_ids)
    assert data.tgt_tok.decode(tgt) == data.train.references
    best = sum(map(len, data.train.tgt_ids))
    assert sum(map(len, tgt)) > best  # sampled cuts are finer than the best one


@pytest.mark.parametrize("joint", ["true", "false"])
def test_the_same_pairs_train_every_epoch(data_of, joint):
    data = data_of(SAMPLING, f"tokenizer.joint={joint}")
    assert (data.sampler.src is data.sampler.tgt) == (joint == "true")  # one lattice cache
    n = len(data.train.sources)
    for epoch in range(3):
        src, tgt = data.train_ids(epoch)
        assert len(src) == len(tgt) == n and all(src) and all(tgt)


def test_epoch_ids_depend_on_seed_and_epoch_only(data_of, model_type):
    """In any order of epochs, after other draws and SentencePiece's own sampling."""
    data = data_of(SAMPLING, f"tokenizer.model_type={model_type}")
    third = data.train_ids(2)
    data.src_tok.sp.encode(EN, enable_sampling=True, alpha=0.1, nbest_size=-1)
    np.random.seed(5)
    for epoch in (0, 1, 5):
        data.train_ids(epoch)
    assert data.train_ids(2) == third


@pytest.mark.parametrize(
    "kind",
    ["tokenizer.model_type=unigram", "tokenizer.model_type=bpe", "tokenizer.sampling.nbest=8"],
)
def test_epoch_ids_are_the_same_in_another_process(data_of, quickstart, tiny_overrides, kind):
    """What --resume relies on: a new process draws an epoch exactly as this one did.
    (SentencePiece's own sampler, seeded alike, draws differently in each process.)"""
    data = data_of(SAMPLING, kind)
    script = (
        "import json, sys\n"
        "from nmt.recipe.load import load_recipe\n"
        "from nmt.data.prepare import prepare_data\n"
        "recipe = load_recipe(sys.argv[1], json.loads(sys.argv[2]))\n"
        "json.dump(prepare_data(recipe).train_ids(4), sys.stdout)\n"
    )
    overrides = json.dumps([*tiny_overrides, SAMPLING, kind])
    done = subprocess.run(
        [sys.executable, "-c", script, str(quickstart), overrides],
        capture_output=True,
        text=True,
        check=True,
    )
    assert [list(side) for side in data.train_ids(4)] == json.loads(done.stdout)


def test_valid_and_translation_use_the_best_segmentation(data_of):
    data = data_of(SAMPLING)
    assert data.valid is not None
    assert data.valid.src_ids == data.src_tok.encode(data.valid.sources)
    assert data.valid.tgt_ids == data.tgt_tok.encode(data.valid.references)
    assert data.train.src_ids == data.src_tok.encode(data.train.sources)


def test_without_sampling_the_best_ids_are_handed_over_as_they_are(data_of):
    data = data_of()
    assert data.sampler is None
    src, tgt = data.train_ids(7)
    assert src is data.train.src_ids and tgt is data.train.tgt_ids


# ---------------------------------------------------------------------------- distributions


def tokenizer(model_type: str) -> SentencePieceTokenizer:
    _, tok = train_tokenizers(TokenizerConfig(vocab_size=120, model_type=model_type), EN, DE)
    assert isinstance(tok, SentencePieceTokenizer)
    return tok


def frequencies(draws) -> Counter:
    return Counter(tuple(x) for x in draws)


def distance(a: Counter, b: Counter) -> float:
    """Total variation distance between two distributions given as counts."""
    na, nb = sum(a.values()), sum(b.values())
    return 0.5 * sum(abs(a[k] / na - b[k] / nb) for k in a.keys() | b.keys())


def segmentations(word: str, index: dict[str, int]) -> list[list[str]]:
    """Every way to cut `word` into vocabulary pieces (a brute-force oracle)."""
    if not word:
        return [[]]
    return [
        [word[:k], *rest]
        for k in range(1, len(word) + 1)
        if word[:k] in index
        for rest in segmentations(word[k:], index)
    ]


def test_unigram_draws_follow_the_lattice_distribution():
    """p(x) ∝ exp(alpha · Σ score) over every segmentation: computed by enumeration, and
    matched by nmt's draws and by SentencePiece's own sampler alike."""
    tok, alpha, n = tokenizer("unigram"), 0.1, 20000
    word = "▁zweiundvierzig"
    seg = tok.segmenter("unigram", alpha, -1)
    exact = Counter()
    for pieces in segmentations(word, seg.index):
        ids = tuple(seg.index[p] for p in pieces)
        exact[ids] = math.exp(alpha * sum(seg.score[i] for i in ids))
    assert len(exact) > 4
    ours = frequencies(seg.sample(["zweiundvierzig"] * n, np.random.default_rng(0)))
    options = {"enable_sampling": True, "alpha": alpha, "nbest_size": -1, "num_threads": 1}
    theirs = frequencies(tok.sp.encode(["zweiundvierzig"] * n, **options))
    assert set(ours) <= set(exact)
    assert distance(ours, exact) < 0.03 and distance(theirs, exact) < 0.03


@pytest.mark.parametrize(
    ("model_type", "nbest", "text"),
    [("unigram", 4, "siebzehn rote Hunde"), ("bpe", -1, "rote Hunde")],
)
def test_nbest_and_bpe_dropout_draws_match_sentencepiece(model_type, nbest, text):
    """Draws of SentencePiece's own sampler (one thread: independent draws) and of nmt's
    have the same distribution; two nmt runs of other seeds differ by about 0.01 here."""
    tok, n = tokenizer(model_type), 20000
    seg = tok.segmenter(model_type, 0.3, nbest)
    ours = frequencies(seg.sample([text] * n, np.random.default_rng(0)))
    options = {"enable_sampling": True, "alpha": 0.3, "nbest_size": nbest, "num_threads": 1}
    theirs = frequencies(tok.sp.encode([text] * n, **options))
    assert len(theirs) > 3
    assert distance(ours, theirs) < 0.03


def test_a_character_outside_the_vocabulary_is_one_unk(model_type):
    tok = tokenizer(model_type)
    seg = tok.segmenter(model_type, 0.2, -1)
    for ids in seg.sample(["drei жж Hunde"] * 50, np.random.default_rng(0)):
        assert ids.count(UNK) == 1  # a run of unknown characters is one <unk>, as in spm
        assert tok.decode([ids]) == tok.decode(tok.encode(["drei жж Hunde"]))


# ---------------------------------------------------------------------------- target subset


def test_reachable_is_every_vocabulary_piece_inside_a_normalized_text(model_type):
    """Oracle: for each piece of the vocabulary, is it a substring of a normalized text?"""
    tok = tokenizer(model_type)
    normalized = ["".join(p) for p in tok.sp.encode(DE, out_type=str)]
    expected = {
        i for i in range(4, tok.vocab_size) if any(tok.pieces([i])[0] in t for t in normalized)
    }
    assert tok.reachable(DE) == expected
    best = {i for ids in tok.encode(DE) for i in ids}
    assert best < expected  # the best cut alone misses pieces a draw can use


def test_no_sampled_target_piece_becomes_unk(model_type):
    tok = tokenizer(model_type)
    subset = TargetSubset.of_texts(tok, DE, sampled=True)
    best_only = TargetSubset.of_texts(tok, DE)
    seg = tok.segmenter(model_type, 0.1, -1)
    unk_in_best_only = 0
    for epoch in range(6):
        drawn = seg.sample(DE, np.random.default_rng(epoch))
        ids = subset.compact(drawn)
        assert UNK not in {i for row in ids for i in row}
        assert subset.decode(ids) == DE
        unk_in_best_only += sum(UNK in row for row in best_only.compact(drawn))
    assert unk_in_best_only > 0  # the case this guards against does happen


def test_a_trained_run_keeps_the_sampled_pieces(data_of):
    sampled, plain = data_of(SAMPLING), data_of()
    assert isinstance(sampled.tgt_tok, TargetSubset)
    assert set(plain.tgt_tok.kept) < set(sampled.tgt_tok.kept)
    for epoch in range(4):
        _, tgt = sampled.train_ids(epoch)
        assert UNK not in {i for row in tgt for i in row}


# ---------------------------------------------------------------------------- recipes


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["tokenizer.type=word"], "needs tokenizer.type sentencepiece"),
        (["tokenizer.model_type=bpe", "tokenizer.sampling={nbest: 8}"], "unigram only"),
        (["tokenizer.model_type=bpe", "tokenizer.sampling={alpha: 1}"], "make it < 1"),
        (["tokenizer.sampling={nbest: 1}"], "'tokenizer.sampling.nbest' must be -1"),
        (["tokenizer.sampling={alpha: 0}"], "'tokenizer.sampling.alpha' must be in (0, 1]"),
        (["tokenizer.sampling={apha: 0.1}"], "did you mean 'tokenizer.sampling.alpha'"),
    ],
)
def test_recipe_errors(make_recipe, tmp_path, overrides, words):
    with pytest.raises(UserError, match=re.escape(words)) as e:
        make_recipe(tmp_path, SAMPLING, *overrides)
    assert words in str(e.value)


# ---------------------------------------------------------------------------- training


@pytest.mark.slow
def test_training_with_sampling_through_the_cli(runner, quickstart, tiny_overrides, tmp_path):
    out = tmp_path / "run"
    args = set_args([*tiny_overrides, "tokenizer.sampling={alpha: 0.2, nbest: -1}"])
    args += set_args(["train.max_steps=40", "train.eval_every=40"])  # two epochs and more
    result = runner.invoke(
        app, ["train", str(quickstart), *args, "--output-dir", str(out), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    state = json.loads((out / "checkpoints" / "last" / "trainer.json").read_text())
    assert state["epoch"] >= 1  # it crossed into a second, freshly drawn epoch
    assert "sampling" in (out / "recipe.yaml").read_text(encoding="utf-8")
    translator = Translator.load(out, "cpu")
    assert len(translator.translate(["three red dogs"], beam_size=2)) == 1


@pytest.mark.slow
def test_resume_with_sampling_reproduces_an_uninterrupted_run(tmp_path, make_recipe):
    """Stopped mid-way through the second epoch, resumed across the third: every weight as
    in one uninterrupted run, because each epoch's draw depends on (seed, epoch) only."""
    options = [SAMPLING, "train.eval_every=15", "model.dropout=0.0"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(make_recipe(straight, "train.max_steps=60", *options), device="cpu")
    train(make_recipe(split, "train.max_steps=30", *options), device="cpu")
    train(make_recipe(split, "train.max_steps=60", *options), "cpu", resume=True)
    last = Path("checkpoints") / "last"
    a, b = (load_file(str(d / last / "model.safetensors")) for d in (straight, split))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    state = json.loads((split / last / "trainer.json").read_text())
    assert state["epoch"] >= 2  # the resumed part drew a new epoch of its own
