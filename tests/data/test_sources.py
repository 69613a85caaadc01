"""Every corpus source trains the quickstart model, and every bad input is one clear line.

Each source kind of `data.train` is written into tmp_path from the toy corpus and
trained for a few steps through the CLI. The hub source goes through the real
`datasets.load_dataset` call, pointed at a local directory of JSONL files (the hub itself
is unreachable here). Each bad input must end with exit status 1 and a single `error:`
line on stderr that names the file, with no traceback.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.checkout import RECIPES
from typer.testing import CliRunner

from nmt.cli.main import app
from nmt.data import toy

QUICKSTART = str(RECIPES / "quickstart.yaml")
FAST = [
    "model.embedding_size=16",
    "model.hidden_size=32",
    "tokenizer.vocab_size=100",
    "data.valid={toy: numbers, split: valid, size: 10}",
    "data.test=null",
    "train.batch_tokens=400",
    "train.max_steps=4",
    "train.eval_every=4",
]
PAIRS = toy.numbers("train", 120)


def train(tmp_path: Path, *overrides: str):
    args = ["train", QUICKSTART, "--output-dir", str(tmp_path / "model"), "--device", "cpu"]
    for item in [*FAST, *overrides]:
        args += ["--set", item]
    return CliRunner().invoke(app, args)


def write_parallel(root: Path, gz: bool = False) -> str:
    for lang, side in (("en", 0), ("de", 1)):
        text = "".join(p[side] + "\n" for p in PAIRS).encode("utf-8")
        name = root / f"train.{lang}{'.gz' if gz else ''}"
        name.write_bytes(gzip.compress(text) if gz else text)
    return str(root / f"train.{{lang}}{'.gz' if gz else ''}")


def write_jsonl(path: Path, nested: bool = False) -> None:
    rows = [{"en": en, "de": de} for en, de in PAIRS]
    rows = [{"translation": r} for r in rows] if nested else rows
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")


def trained(result, tmp_path: Path, origin: str) -> None:
    assert result.exit_code == 0, result.output
    assert f"data.train: {len(PAIRS)} pairs from {origin}" in result.stdout
    assert (tmp_path / "model" / "model.safetensors").is_file()


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzip"])
def test_parallel_files(tmp_path, gz):
    pattern = write_parallel(tmp_path, gz)
    trained(train(tmp_path, f"data.train={pattern}"), tmp_path, str(tmp_path))


def test_tsv(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("".join(f"{en}\t{de}\n" for en, de in PAIRS), encoding="utf-8")
    trained(train(tmp_path, f"data.train={{tsv: {path}}}"), tmp_path, str(path))


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_jsonl(tmp_path, nested):
    path = tmp_path / "train.jsonl"
    write_jsonl(path, nested)
    trained(train(tmp_path, f"data.train={{jsonl: {path}}}"), tmp_path, str(path))


@pytest.mark.parametrize("nested", [False, True], ids=["flat", "nested"])
def test_hub_code_path_on_a_local_dataset(tmp_path, nested):
    hub = tmp_path / "hub"
    hub.mkdir()
    write_jsonl(hub / "train.jsonl", nested)  # load_dataset names the split after the file
    result = train(tmp_path, f"data.train={{hub: {hub}, split: train}}")
    trained(result, tmp_path, f"hub:{hub}")


def test_dataset_dir(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = {"translation": [{"en": en, "de": de} for en, de in PAIRS]}
    saved = tmp_path / "saved"
    datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows)}).save_to_disk(str(saved))
    result = train(tmp_path, f"data.train={{dataset_dir: {saved}, split: train}}")
    trained(result, tmp_path, str(saved))


# ------------------------------------------------------------------ bad input


def fails(result, *words: str) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def test_missing_file(tmp_path):
    fails(
        train(tmp_path, f"data.train={tmp_path}/nope.{{lang}}"),
        f"{tmp_path}/nope.en",
        "no such file",
    )


def test_misaligned_files(tmp_path):
    pattern = write_parallel(tmp_path)
    with open(tmp_path / "train.de", "a", encoding="utf-8") as f:
        f.write("eine Zeile zu viel\n")
    fails(
        train(tmp_path, f"data.train={pattern}"),
        "train.en has 120 lines",
        "train.de has 121",
        "line-aligned",
    )


def test_not_utf8(tmp_path):
    pattern = write_parallel(tmp_path)
    with open(tmp_path / "train.de", "ab") as f:
        f.write("Grüße\n".encode("latin-1"))
    with open(tmp_path / "train.en", "a", encoding="utf-8") as f:
        f.write("greetings\n")
    fails(
        train(tmp_path, f"data.train={pattern}"),
        f"{tmp_path}/train.de:121",
        "not valid UTF-8",
        "iconv",
    )


def test_tsv_wrong_columns(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("a\tb\nc\td\te\n", encoding="utf-8")
    fails(train(tmp_path, f"data.train={{tsv: {path}}}"), f"{path}:2", "found 3")


def test_empty_after_filtering(tmp_path):
    pattern = write_parallel(tmp_path)
    fails(
        train(tmp_path, f"data.train={pattern}", "data.max_length=1"),
        "data.train",
        "no pairs left",
        "data.max_length",
    )


def test_corpus_with_only_empty_pairs(tmp_path):
    (tmp_path / "e.en").write_text("\n\n", encoding="utf-8")
    (tmp_path / "e.de").write_text("\n\n", encoding="utf-8")
    fails(train(tmp_path, f"data.train={tmp_path}/e.{{lang}}"), "data.train", "no sentence pairs")


@pytest.mark.slow
def test_unreachable_hub_dataset(tmp_path):
    """A subprocess: huggingface_hub reads its offline switch when first imported."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    args = [
        "train",
        QUICKSTART,
        "--output-dir",
        str(tmp_path / "m"),
        "--device",
        "cpu",
        "--set",
        "data.train={hub: nmt-tests/no-such-dataset, split: train}",
    ]
    done = subprocess.run(
        [sys.executable, "-m", "nmt.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("error: ")]
    assert "could not load hub dataset nmt-tests/no-such-dataset" in line
    assert "local files" in line


def test_unknown_recipe_key(tmp_path):
    fails(
        train(tmp_path, "model.hiden_size=3"),
        "unknown key 'model.hiden_size'",
        "did you mean 'model.hidden_size'",
    )


def test_cut_off_gzip_file(tmp_path):
    write_parallel(tmp_path, gz=True)
    whole = (tmp_path / "train.en.gz").read_bytes()
    (tmp_path / "train.en.gz").write_bytes(whole[: len(whole) // 2])
    fails(
        train(tmp_path, f"data.train={tmp_path}/train.{{lang}}.gz"),
        "train.en.gz",
        "cannot be read to the end",
    )


def test_toy_split_asked_for_more_than_it_holds(tmp_path, monkeypatch):
    monkeypatch.setattr(toy, "_COUNTS", (2,))  # shrink the sentence space to a few hundred
    monkeypatch.setattr(toy, "_NOUN_KEYS", ("dog",))
    fails(
        train(tmp_path, "data.train={toy: numbers, split: train, size: 100000}"),
        "toy train split holds only about",
        "ask for fewer",
    )


def test_a_line_that_tokenizes_to_nothing_is_dropped(tmp_path):
    for lang, side, odd in (("en", 0, "\u200b"), ("de", 1, "ein")):
        lines = [p[side] for p in PAIRS] + [odd]
        (tmp_path / f"train.{lang}").write_text("".join(f"{x}\n" for x in lines), "utf-8")
    result = train(
        tmp_path, f"data.train={tmp_path}/train.{{lang}}", f"data.valid={tmp_path}/train.{{lang}}"
    )  # the odd pair in valid too
    assert result.exit_code == 0, result.output
    assert "dropped 1 pairs that tokenize to nothing" in result.stdout
