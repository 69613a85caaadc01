"""Weighted corpora end to end: a recipe's weighted data.train through the data paths
(nmt.data.prepare, nmt.data.dataset, nmt.data.prepared) and training's epochs
(nmt.training.loop.epoch_ids over nmt.data.weighted).

Checked here: `nmt train` on two corpora weighted 3:1 trains, its prepared dataset
counts each corpus (and `nmt prepare` says so), and an epoch draws from the corpora in
that proportion; the text path and the prepared path count the same corpora and draw the
same batches; a run resumed mid-epoch ends with the weights of an uninterrupted one (and
may not change the weights); a single corpus of weight 1 trains exactly as the plain
source does; other weights re-use the prepared dataset; with subword sampling the
weighted draw works on each epoch's segmentation; a corpus the filters or empty text
leave without pairs is refused in one line naming it, on both paths.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import set_args

from nmt.cli.main import app
from nmt.data import toy
from nmt.data.batching import EpochSchedule
from nmt.data.identity import Identity
from nmt.data.prepare import Data, prepare_data
from nmt.data.prepared import prepared_data, read_manifest
from nmt.errors import UserError
from nmt.events import Message
from nmt.recipe.load import load_recipe
from nmt.recipe.schema import Recipe
from nmt.training.loop import epoch_ids
from nmt.training.setup import train

TOY = "{toy: numbers, split: train, size: 200}"


def write_tsv(path: Path, pairs: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), "utf-8")
    return path


def weighted(second: str, a: float = 3, b: float = 1, first: str = TOY) -> str:
    """The override for a data.train of two corpora weighted a:b."""
    return f"data.train=[{{corpus: {first}, weight: {a}}}, {{corpus: {second}, weight: {b}}}]"


def other_corpus(tmp_path: Path, size: int = 200) -> str:
    """A TSV corpus of `size` toy pairs unlike TOY's (the test split's), as a source."""
    path = write_tsv(tmp_path / "other.tsv", toy.numbers("test", size))
    return f"{{tsv: {path}}}"


def drawn(data: Data, recipe: Recipe, epoch: int = 0, batch_tokens: int = 300) -> np.ndarray:
    """The pairs (indices into the concatenated corpora) epoch `epoch`'s batches hold,
    in the order they are taken."""
    schedule = EpochSchedule(epoch_ids(data, recipe), batch_tokens, recipe.seed, epoch)
    pairs = []
    for batch, place in schedule:
        pairs.append(schedule.ids[0].index[batch.indices])  # the selection's rows
        if place.epoch_end:
            return np.concatenate(pairs)
    raise AssertionError("unreachable")


def same_batches(a: Data, b: Data, recipe: Recipe, batches: int) -> None:
    one = iter(EpochSchedule(epoch_ids(a, recipe), 300, recipe.seed))
    two = iter(EpochSchedule(epoch_ids(b, recipe), 300, recipe.seed))
    for _ in range(batches):
        (x, xp), (y, yp) = next(one), next(two)
        assert xp == yp and x.indices == y.indices
        assert x.src.equal(y.src) and x.tgt_in.equal(y.tgt_in) and x.tgt_out.equal(y.tgt_out)


def test_nmt_train_draws_each_epoch_by_weight(
    runner, tmp_path, quickstart, tiny_overrides, nmt_cache
):
    overrides = [*tiny_overrides, weighted(other_corpus(tmp_path)), "train.max_steps=6"]
    result = runner.invoke(
        app, ["train", str(quickstart), *set_args(overrides), "--output-dir", str(tmp_path / "m")]
    )
    assert result.exit_code == 0, result.output
    line = "data.train: each epoch draws 300 + 100 pairs from its 2 corpora (200 + 200 pairs, "
    assert line + "weights 3 : 1)" in result.stdout
    (made,) = (nmt_cache / "prepared").iterdir()
    corpora = read_manifest(made)["splits"]["train"]["corpora"]
    assert [(c["origin"], c["read"], c["pairs"]) for c in corpora] == [
        ("toy:numbers", 200, 200),
        (str(tmp_path / "other.tsv"), 200, 200),
    ]
    recipe = load_recipe(quickstart, overrides)
    events: list = []
    data = prepared_data(recipe, events.append)
    assert Message(f"data: the prepared dataset {made} (made before: not read again)") in events
    pairs = drawn(data, recipe)
    # 400 draws split 3:1 by largest remainders: exactly 300 and 100 (each share is within
    # one pair of N × w / Σw by construction, so no sampling tolerance is needed)
    assert len(pairs) == 400
    assert np.bincount(pairs >= 200).tolist() == [300, 100]
    # the weight-3 corpus shows each of its 200 pairs once before any repeats
    assert np.bincount(np.bincount(pairs[pairs < 200], minlength=200)).tolist() == [0, 100, 100]
    assert len(set(pairs[pairs >= 200].tolist())) == 100  # the other: half of it, no repeat


def test_nmt_prepare_counts_each_corpus(runner, tmp_path, quickstart, tiny_overrides):
    overrides = [*tiny_overrides, weighted(other_corpus(tmp_path, 50))]
    out = tmp_path / "data"
    result = runner.invoke(
        app, ["prepare", str(quickstart), *set_args(overrides), "--output-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert f"prepared {out}: train 250 pairs (200 + 50 from 2 corpora; " in result.stdout


def test_text_and_prepared_paths_draw_the_same_batches(tmp_path, make_recipe):
    long = [("one two three four five six seven eight", "x")] * 3  # dropped: ratio
    path = write_tsv(tmp_path / "b.tsv", toy.numbers("test", 60) + long)
    recipe = make_recipe(tmp_path / "m", weighted(f"{{tsv: {path}}}", 1, 2))
    text, prepared = prepare_data(recipe), prepared_data(recipe)
    assert text.corpus_sizes == prepared.corpus_sizes == [200, 60]
    same_batches(text, prepared, recipe, batches=40)  # across the first epoch's end
    pairs = drawn(text, recipe, epoch=1)
    assert np.bincount(pairs >= 200).tolist() == [87, 173]  # 260 × 1/3 and × 2/3


def test_resume_mid_epoch_gives_the_weights_of_an_uninterrupted_run(tmp_path, make_recipe):
    second, data = other_corpus(tmp_path, 100), tmp_path / "data"
    options = ["train.eval_every=10", f"data.prepared={data}"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(make_recipe(straight, weighted(second), "train.max_steps=40", *options), device="cpu")
    train(make_recipe(split, weighted(second), "train.max_steps=20", *options), device="cpu")
    trainer = json.loads((split / "checkpoints" / "last" / "trainer.json").read_text())
    assert trainer["epoch"] >= 1 and trainer["position"] > 0  # mid-epoch, not the first
    train(make_recipe(split, weighted(second), "train.max_steps=40", *options), "cpu", True)
    last = Path("checkpoints") / "last" / "model.safetensors"
    assert (straight / last).read_bytes() == (split / last).read_bytes()
    # other weights would draw other epochs: a resume may not change them
    other = make_recipe(split, weighted(second, 1, 1), "train.max_steps=50", *options)
    with pytest.raises(UserError, match=rf"\A{split} was trained with other values of data.train;"):
        train(other, "cpu", True)


def test_a_single_corpus_of_weight_one_trains_as_the_plain_source(tmp_path, make_recipe):
    plain = make_recipe(tmp_path / "plain", f"data.train={TOY}")
    listed = make_recipe(tmp_path / "listed", f"data.train=[{{corpus: {TOY}, weight: 1}}]")
    a, b = prepared_data(plain), prepared_data(listed)
    assert a.corpus_sizes is None and b.corpus_sizes == [len(a.train.src_ids)]
    same_batches(a, b, plain, batches=30)
    train(plain, "cpu")
    train(listed, "cpu")
    weights = Path("model.safetensors")
    assert (tmp_path / "plain" / weights).read_bytes() == (
        tmp_path / "listed" / weights
    ).read_bytes()


def test_other_weights_reuse_the_prepared_dataset(tmp_path, make_recipe):
    second = other_corpus(tmp_path, 50)
    three, one = (
        make_recipe(tmp_path / "a", weighted(second)),
        make_recipe(tmp_path / "b", weighted(second, 1, 1)),
    )
    assert Identity.of(three).key == Identity.of(one).key
    prepared_data(three)
    events: list = []
    data = prepared_data(one, events.append)
    assert any("made before: not read again" in str(e) for e in events)
    assert np.bincount(drawn(data, one) >= 200).tolist() == [125, 125]


def test_weighted_draws_of_sampled_segmentations(tmp_path, make_recipe):
    recipe = make_recipe(
        tmp_path / "m", weighted(other_corpus(tmp_path, 100)), "tokenizer.sampling={alpha: 0.1}"
    )
    data = prepare_data(recipe)  # sampling: the text path
    assert data.corpus_sizes == [200, 100]
    for epoch in (0, 1):
        pairs = drawn(data, recipe, epoch)
        assert np.bincount(pairs >= 200).tolist() == [225, 75]


def test_a_corpus_the_filters_empty_is_refused_on_both_paths(tmp_path, make_recipe):
    path = write_tsv(tmp_path / "long.tsv", [(" ".join(["neun"] * 40), "neun")] * 5)
    recipe = make_recipe(tmp_path / "m", weighted(f"{{tsv: {path}}}"))
    expected = (
        r"\Adata.train\[1\].corpus: no pairs left after the length filters; raise "
        r"data.max_length \(100\) or data.max_ratio \(3.0\)\Z"
    )
    with pytest.raises(UserError, match=expected):
        prepare_data(recipe)
    with pytest.raises(UserError, match=expected):
        prepared_data(recipe)


def test_a_corpus_without_text_is_refused_on_both_paths(tmp_path, make_recipe):
    path = write_tsv(tmp_path / "empty.tsv", [("", "leer"), ("nichts", "")])
    recipe = make_recipe(tmp_path / "m", weighted(f"{{tsv: {path}}}"))
    expected = (
        rf"\Adata.train\[1\].corpus: {path} holds no sentence pairs with text on both sides; "
        r"give pairs or remove the entry\Z"
    )
    with pytest.raises(UserError, match=expected):
        prepare_data(recipe)
    with pytest.raises(UserError, match=expected):
        prepared_data(recipe)
