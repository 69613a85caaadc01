"""`nmt vocab` and `nmt inspect` end to end, on the shared tiny model and on a prepared
dataset laid out as `nmt prepare` writes one (manifest.json, the tokenizer files under the
model directory's names, counts.npz), built here by hand.

Checked: vocab lists every id with its piece and score (a model directory) or count (a
dataset), says which in its header, `--top` keeps the most frequent / the first ids,
`--side target` reads the target tokenizer and names the output layer's share, `--json`
gives the same entries; inspect shows the settings, tensors with their shapes, the
parameter count (equal to the built model's) per module, the checkpoint format, the data
section and the scores; a path that is neither kind of directory, a file, a missing
directory, a damaged counts file and --top 0 are each one `error:` line.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import one_line_error

from nmt.cli.main import app
from nmt.data.tokenizer import load_tokenizers
from nmt.model.seq2seq import build_model
from nmt.recipe.load import load_recipe
from nmt.store import layout


@pytest.fixture
def dataset(model_dir: Path, tmp_path: Path) -> Path:
    """A prepared dataset's directory, as far as nmt vocab reads it: the shared model's
    tokenizer, a manifest, and counts where id i occurs 1000 - i times on each side."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(model_dir / layout.SENTENCEPIECE, data / layout.SENTENCEPIECE)
    (data / layout.DATASET_MANIFEST).write_text("{}", encoding="utf-8")
    size = len(load_tokenizers(load_recipe(model_dir / "recipe.yaml").tokenizer, data)[0].sp)
    counts = np.arange(1000, 1000 - size, -1, dtype=np.int64)
    counts[7] = 5000  # the most frequent
    np.savez(data / layout.COUNTS, source=counts, target=counts * 2)
    return data


def vocab_lines(runner, *args: str) -> list[str]:
    result = runner.invoke(app, ["vocab", *args])
    assert result.exit_code == 0, result.output
    return result.stdout.splitlines()


def test_vocab_of_a_model_directory_has_scores(runner, model_dir):
    header, *rows = vocab_lines(runner, str(model_dir))
    assert "(model directory)" in header and "score (the SentencePiece model's" in header
    assert [row.split("\t")[:2] for row in rows[:4]] == [
        ["0", "<pad>"],
        ["1", "<unk>"],
        ["2", "<s>"],
        ["3", "</s>"],
    ]
    assert [int(row.split("\t")[0]) for row in rows] == list(range(len(rows)))
    assert all(len(row.split("\t")) == 3 for row in rows)
    assert len(vocab_lines(runner, str(model_dir), "--top", "5")) == 1 + 5


def test_vocab_target_side_names_the_output_layer(runner, model_dir):
    header = vocab_lines(runner, str(model_dir), "--side", "target")[0]
    assert "target side" in header and "the output layer spans " in header


def test_vocab_of_a_dataset_has_counts_and_top_is_the_most_frequent(runner, dataset):
    header, *rows = vocab_lines(runner, str(dataset), "--top", "3")
    assert "(prepared dataset)" in header and "count (occurrences in the training split)" in header
    assert [row.split("\t")[0] for row in rows] == ["7", "0", "1"]
    assert rows[0].split("\t")[2] == "5000"
    target = vocab_lines(runner, str(dataset), "--side", "target", "--top", "1")[1]
    assert target.split("\t")[2] == "10000"


def test_vocab_json(runner, dataset):
    result = runner.invoke(app, ["vocab", str(dataset), "--top", "2", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["holder"] == "prepared dataset" and report["column"] == "count"
    assert report["entries"][0] == {"id": 7, "piece": report["entries"][0]["piece"], "count": 5000}


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p, "neither a model directory (no recipe.yaml) nor a prepared dataset"),
        (lambda p: p / "missing", "no such directory"),
        (lambda p: p / "file.txt", "is a file, not a directory"),
    ],
)
def test_vocab_of_another_path_is_one_line(runner, tmp_path, make, expected):
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    one_line_error(runner.invoke(app, ["vocab", str(make(tmp_path))]), expected)


def test_vocab_of_a_directory_without_tokenizers_is_one_line(runner, dataset):
    (dataset / layout.SENTENCEPIECE).unlink()
    result = runner.invoke(app, ["vocab", str(dataset)])
    one_line_error(result, "no tokenizer files (spm.model or vocab.txt, or src./tgt. ones)")


def test_vocab_with_damaged_counts_is_one_line(runner, dataset):
    (dataset / layout.COUNTS).write_bytes(b"junk")
    one_line_error(runner.invoke(app, ["vocab", str(dataset)]), "counts.npz: not a readable")
    np.savez(dataset / layout.COUNTS, source=np.ones(3, dtype=np.int64))
    one_line_error(runner.invoke(app, ["vocab", str(dataset)]), "3 'source' counts for a voc")
    result = runner.invoke(app, ["vocab", str(dataset), "--side", "target"])
    one_line_error(result, "no 'target' counts")
    one_line_error(runner.invoke(app, ["vocab", str(dataset), "--top", "0"]), "--top 0: give 1")


def test_inspect_shows_what_the_model_is(runner, model_dir):
    result = runner.invoke(app, ["inspect", str(model_dir)])
    assert result.exit_code == 0, result.output
    text = result.stdout
    recipe = load_recipe(model_dir / "recipe.yaml")
    m = recipe.model
    assert "checkpoint format 2" in text
    assert f"model: {m.cell}, {m.encoder_layers} encoder + {m.decoder_layers} decoder" in text
    assert f"attention {m.attention}" in text and f"bridge {m.bridge}" in text
    assert "  decoder.embed.weight " in text and "encoder.rnn" in text
    assert "trained on: " in text and '"toy": "numbers"' in text
    assert "results: bleu " in text


def test_inspect_json_counts_the_models_parameters(runner, model_dir):
    result = runner.invoke(app, ["inspect", str(model_dir), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    recipe = load_recipe(model_dir / "recipe.yaml")
    v = report["vocabulary"]
    model = build_model(recipe.model, v["source"], v["target"])
    assert report["parameters"] == sum(p.numel() for p in model.parameters())
    assert sum(report["modules"].values()) == report["parameters"]
    named = dict(model.named_parameters())
    assert all(list(named[name].shape) == shape for name, shape in report["tensors"].items())
    assert report["format"] == "2" and report["results"]["bleu"] >= 0
    assert report["data"]["source_lang"] == recipe.data.source_lang


def test_inspect_refuses_what_is_not_a_model_directory(runner, tmp_path, dataset):
    one_line_error(runner.invoke(app, ["inspect", str(tmp_path)]), "not a model directory")
    one_line_error(runner.invoke(app, ["inspect", str(dataset)]), "is a prepared dataset")
