"""Prepared datasets (nmt.data.dataset, nmt.data.prepared, `nmt prepare`).

Checked here: `nmt prepare` then `nmt train` from the directory, end to end; training
from a prepared dataset gives the batches and weights of reading the text (several
tokenizer settings, the filters acting); a second run re-uses the dataset without
reading the text again; a stale dataset (an input changed, the tokenizer section
changed) is refused in one line naming the directory; one and two encoding workers
write identical files; a resumed run from a prepared dataset ends with the weights of
an uninterrupted one; the manifest counts what each filter dropped, and counts.npz the
ids; nothing is overwritten without --overwrite; subword sampling keeps reading the text;
the reservoir sample and the spill file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import set_args

from nmt.cli.main import app
from nmt.data import dataset as dataset_module
from nmt.data.batching import EpochSchedule
from nmt.data.dataset import _spilled, _unspilled, prepare_dataset
from nmt.data.prepare import prepare_data
from nmt.data.prepared import prepared_data, read_manifest, trains_from_prepared
from nmt.data.sample import Reservoir
from nmt.errors import UserError
from nmt.events import Message, Phase
from nmt.training import setup
from nmt.training.setup import train

PAIRS = [
    ("a b c", "x y z"),
    ("", "leer"),  # an empty side: skipped before tokenizing
    ("d e", "u v"),
    ("a a a a a a a a a a a a", "x"),  # a length ratio above 3
    ("b c d e f", "u v w x y"),
]


def write_corpus(directory: Path, pairs: list[tuple[str, str]], times: int = 1) -> str:
    """`pairs` × `times` as train.en + train.de; the recipe's pattern."""
    for lang, side in (("en", 0), ("de", 1)):
        lines = [p[side] for p in pairs] * times
        (directory / f"train.{lang}").write_text("".join(f"{x}\n" for x in lines), "utf-8")
    return f"{directory}/train.{{lang}}"


def files_of(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def weights(run_dir: Path) -> bytes:
    return (run_dir / "model.safetensors").read_bytes()


# ---------------------------------------------------------------- end to end


def test_prepare_then_train_from_the_directory(runner, tmp_path, quickstart, tiny_overrides):
    data = tmp_path / "data"
    prepared = runner.invoke(
        app, ["prepare", str(quickstart), *set_args(tiny_overrides), "--output-dir", str(data)]
    )
    assert prepared.exit_code == 0, prepared.output
    assert f"prepared {data}: train 300 pairs" in prepared.stdout
    manifest = read_manifest(data)
    assert manifest is not None and manifest["dtype"] == "uint16"
    assert {"spm.model", "target_vocab.txt", "counts.npz", "train.src.ids"} <= set(os.listdir(data))
    overrides = [*tiny_overrides, f"data.prepared={data}"]
    trained = runner.invoke(
        app,
        ["train", str(quickstart), *set_args(overrides), "--output-dir", str(tmp_path / "m")]
        + ["--device", "cpu"],
    )
    assert trained.exit_code == 0, trained.output
    assert f"data: the prepared dataset {data} (made before: not read again)" in trained.stdout
    assert "data.train: 300 pairs from toy:numbers" in trained.stdout
    assert (tmp_path / "m" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["tokenizer.type=word"],
        ["tokenizer.joint=false", "data.max_length=20", "tokenizer.restrict_target=false"],
    ],
    ids=["joint", "word", "per-side+filtered"],
)
def test_training_from_prepared_data_gives_the_weights_of_reading_the_text(
    tmp_path, make_recipe, monkeypatch, extra
):
    recipe = make_recipe(tmp_path / "prepared", *extra)
    assert trains_from_prepared(recipe)
    train(recipe, "cpu")
    monkeypatch.setattr(setup, "trains_from_prepared", lambda recipe: False)
    train(make_recipe(tmp_path / "text", *extra), "cpu")
    assert weights(tmp_path / "prepared") == weights(tmp_path / "text")


def test_prepared_batches_are_those_of_the_text(tmp_path, make_recipe):
    recipe = make_recipe(tmp_path / "m", "data.max_length=20")
    text, prepared = prepare_data(recipe), prepared_data(recipe)
    assert [r.tolist() for r in prepared.train.src_ids] == text.train.src_ids
    assert [r.tolist() for r in prepared.train.tgt_ids] == text.train.tgt_ids
    assert prepared.valid == text.valid and prepared.test == text.test
    a = iter(EpochSchedule(text.train_ids, 300, seed=5))
    b = iter(EpochSchedule(prepared.train_ids, 300, seed=5))
    for _ in range(30):  # across the first epoch's end
        (x, xp), (y, yp) = next(a), next(b)
        assert xp == yp and x.indices == y.indices
        assert x.src.equal(y.src) and x.tgt_out.equal(y.tgt_out) and x.tgt_in.equal(y.tgt_in)


def test_a_second_run_reads_the_prepared_dataset(tmp_path, make_recipe, nmt_cache):
    events: list = []
    recipe = make_recipe(tmp_path / "a")
    train(recipe, "cpu", on_event=events.append)
    (made,) = list((nmt_cache / "prepared").iterdir())
    stamp = (made / "manifest.json").stat().st_mtime_ns
    assert any(isinstance(e, Phase) and e.name == "encoding data.train" for e in events)
    events.clear()
    train(
        dataclasses.replace(recipe, output_dir=str(tmp_path / "b")), "cpu", on_event=events.append
    )
    assert not any(isinstance(e, Phase) and "data.train" in e.name for e in events)
    assert Message(f"data: the prepared dataset {made} (made before: not read again)") in events
    assert (made / "manifest.json").stat().st_mtime_ns == stamp
    assert weights(tmp_path / "a") == weights(tmp_path / "b")


# ---------------------------------------------------------------- refused


def test_a_changed_input_is_refused_in_one_line(tmp_path, make_recipe):
    pattern = write_corpus(tmp_path, PAIRS, 20)
    data = tmp_path / "data"
    recipe = make_recipe(tmp_path / "m", f"data.train={pattern}", f"data.prepared={data}")
    prepare_dataset(recipe, data)
    with (tmp_path / "train.de").open("a", encoding="utf-8") as f:
        f.write("")  # same content...
    os.utime(tmp_path / "train.de", ns=(1, 1))  # ...touched
    with pytest.raises(UserError) as error:
        train(recipe, "cpu")
    message = str(error.value)
    assert "\n" not in message
    assert f"data.prepared {data}: its input {tmp_path / 'train.de'} has changed" in message
    assert "--overwrite" in message and not (tmp_path / "m").exists()


def test_other_tokenizer_settings_are_refused(tmp_path, make_recipe):
    data = tmp_path / "data"
    prepare_dataset(make_recipe(tmp_path / "m", f"data.prepared={data}"), data)
    before = files_of(data)
    recipe = make_recipe(tmp_path / "m", f"data.prepared={data}", "tokenizer.vocab_size=90")
    with pytest.raises(UserError, match="tokenizer.vocab_size was 100 and is now 90"):
        train(recipe, "cpu")
    assert files_of(data) == before


def test_nothing_is_overwritten_without_overwrite(tmp_path, make_recipe):
    data = tmp_path / "data"
    recipe = make_recipe(tmp_path / "m")
    prepare_dataset(recipe, data)
    before = files_of(data)
    with pytest.raises(UserError, match="already holds a prepared dataset; add --overwrite"):
        prepare_dataset(recipe, data)
    assert files_of(data) == before
    prepare_dataset(make_recipe(tmp_path / "m", "tokenizer.vocab_size=90"), data, overwrite=True)
    assert read_manifest(data)["settings"]["tokenizer"]["vocab_size"] == 90
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match="is not a prepared dataset"):
        prepare_dataset(recipe, mine, overwrite=True)
    assert os.listdir(mine) == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_sampling_reads_the_text(tmp_path, make_recipe, runner, quickstart, tiny_overrides):
    recipe = make_recipe(tmp_path / "m", "tokenizer.sampling={alpha: 0.1}")
    assert not trains_from_prepared(recipe)
    result = runner.invoke(
        app, ["prepare", str(quickstart), *set_args([*tiny_overrides, "tokenizer.sampling={}"])]
    )
    assert result.exit_code == 1 and "remove tokenizer.sampling" in result.output
    with pytest.raises(UserError, match="data.prepared holds fixed token ids"):
        make_recipe(tmp_path / "m", "tokenizer.sampling={}", f"data.prepared={tmp_path}")


# ---------------------------------------------------------------- what is stored


def test_one_and_two_workers_write_the_same_files(tmp_path, make_recipe, monkeypatch):
    monkeypatch.setattr(dataset_module, "CHUNK", 40)  # 300 pairs: 8 chunks
    recipe = make_recipe(tmp_path / "m")
    prepare_dataset(recipe, tmp_path / "one", workers=1)
    prepare_dataset(recipe, tmp_path / "two", workers=2)
    assert files_of(tmp_path / "one") == files_of(tmp_path / "two")


def test_manifest_counts_what_each_filter_dropped(tmp_path, make_recipe):
    pattern = write_corpus(tmp_path, PAIRS, 20)
    recipe = make_recipe(
        tmp_path / "m", f"data.train={pattern}", "tokenizer.type=word", "data.max_length=4"
    )
    manifest = prepare_dataset(recipe, tmp_path / "data")
    train_counts = manifest["splits"]["train"]
    # per 5 pairs: one empty side, one ratio 12 (and too long), one of 5 tokens (too long)
    assert {k: train_counts[k] for k in ("read", "empty_text", "too_long", "bad_ratio")} == {
        "read": 100,
        "empty_text": 20,
        "too_long": 40,
        "bad_ratio": 0,
    }
    assert train_counts["pairs"] == 40
    assert train_counts["tokens"] == {"source": 20 * 5, "target": 20 * 5}
    assert manifest["settings"]["data"]["max_length"] == 4
    assert {i["path"] for i in manifest["inputs"]} == {
        str(tmp_path / "train.en"),
        str(tmp_path / "train.de"),
    }
    counts = np.load(tmp_path / "data" / "counts.npz")
    assert counts["source"].sum() == 100 and counts["target"].sum() == 100
    assert counts["target"].dtype == np.int64
    assert len(counts["target"]) == manifest["vocab"]["target"]


@pytest.mark.slow
def test_resume_from_a_prepared_dataset_reproduces_an_uninterrupted_run(tmp_path, make_recipe):
    data = tmp_path / "data"
    options = ["train.eval_every=6", f"data.prepared={data}"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(make_recipe(straight, "train.max_steps=24", *options), device="cpu")
    stamp = (data / "manifest.json").stat().st_mtime_ns
    train(make_recipe(split, "train.max_steps=12", *options), device="cpu")
    trainer = json.loads((split / "checkpoints" / "last" / "trainer.json").read_text())
    assert trainer["position"] > 0  # mid-epoch
    events: list = []
    train(make_recipe(split, "train.max_steps=24", *options), "cpu", True, on_event=events.append)
    assert not any(isinstance(e, Phase) and "data.train" in e.name for e in events)
    assert (data / "manifest.json").stat().st_mtime_ns == stamp
    last = Path("checkpoints") / "last" / "model.safetensors"
    assert (straight / last).read_bytes() == (split / last).read_bytes()


# ---------------------------------------------------------------- the parts


def test_a_reservoir_keeps_a_short_stream_whole_and_samples_a_long_one():
    short = Reservoir(10, np.random.default_rng(1))
    for i in range(10):
        short.offer(i)
    assert short.items == list(range(10))
    hits = np.zeros(1000)
    for seed in range(300):
        sample = Reservoir(100, np.random.default_rng(seed))
        for i in range(1000):
            sample.offer(i)
        assert len(set(sample.items)) == 100
        hits[sample.items] += 1
    # each item is kept with probability 0.1: 30 of 300 draws, early or late in the stream
    assert abs(hits[:500].mean() - 30) < 2 and abs(hits[500:].mean() - 30) < 2


@pytest.mark.parametrize("text", ["plain", "two\nlines", "\tnot stripped", "cr\rinside", "ü"])
def test_the_spill_file_gives_each_text_back(text):
    line = _spilled(text)
    assert line.count(b"\n") == 1 and _unspilled(line) == text


@pytest.mark.slow
def test_workers_start_from_a_script_without_a_main_guard(tmp_path, quickstart, tiny_overrides):
    """A script that calls nmt at its top level (no `if __name__ == "__main__"`) is not
    run again by the encoding workers (spawned ones would import it anew)."""
    script = tmp_path / "script.py"
    script.write_text(
        "from pathlib import Path\n"
        "from nmt.data import dataset\n"
        "from nmt.recipe.load import load_recipe\n"
        "dataset.CHUNK = 40\n"
        f"recipe = load_recipe({str(quickstart)!r}, {tiny_overrides!r})\n"
        f"dataset.prepare_dataset(recipe, Path({str(tmp_path / 'data')!r}), workers=2)\n"
        "print('prepared')\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0 and done.stdout == "prepared\n", done.stderr


def test_a_pipe_is_read_as_text_unless_data_prepared_names_a_directory(tmp_path, make_recipe):
    """A FIFO cannot be identified without reading it: nmt train reads it as before (and
    nothing here opens it, which would block)."""
    for lang in ("en", "de"):
        os.mkfifo(tmp_path / f"train.{lang}")
    pipes = f"data.train={tmp_path}/train.{{lang}}"
    assert not trains_from_prepared(make_recipe(tmp_path / "m", pipes))
    assert trains_from_prepared(make_recipe(tmp_path / "m", pipes, f"data.prepared={tmp_path}/d"))
