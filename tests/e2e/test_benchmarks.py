"""The benchmark scripts still run against the library (they are not timed here).

Benchmarks import the trainer's and translator's own functions, so a change of signature
breaks them silently unless something runs them: each script runs once on the tiny
quickstart recipe and must print the JSON it promises.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers.cli import set_args


@pytest.fixture
def run(root):
    """run(script, *args): benchmarks/SCRIPT's standard output (it must exit with 0)."""

    def script_output(script: str, *args: str) -> str:
        command = [sys.executable, str(root / "benchmarks" / script), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=root)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return script_output


@pytest.mark.slow
def test_train_speed_reports_tokens_per_second(quickstart, tiny_overrides, run):
    out = run(
        "train_speed.py", str(quickstart), *set_args(tiny_overrides), "--steps", "3",
        "--warmup", "1", "--device", "cpu",
    )  # fmt: skip
    report = json.loads(out)
    assert report["results"]["fp32"]["target_tokens_per_second"] > 0


@pytest.mark.slow
def test_decode_speed_reports_sentences_per_second(model_dir, tmp_path, run):
    source = tmp_path / "src.txt"
    source.write_text("one red dog sleeps\ni see three cats\n", encoding="utf-8")
    out = run(
        "decode_speed.py", "--model", str(model_dir), "--source", str(source), "--beam", "1",
        "--beam", "2", "--repeat", "1", "--device", "cpu", "--precision", "fp32",
        "--precision", "int8",
    )  # fmt: skip
    results = json.loads(out)["results"]
    assert results["fp32_beam1_batch8000"]["sentences_per_second"] > 0
    assert results["int8_beam2_batch8000"]["output_tokens_per_second"] > 0


@pytest.mark.slow
def test_decode_speed_reports_each_number_of_constraints(model_dir, tmp_path, run):
    source = tmp_path / "src.txt"
    source.write_text("i see one woman\nthey want one old man\n", encoding="utf-8")
    references = tmp_path / "ref.txt"
    references.write_text("ich sehe eine Frau\nsie wollen einen alten Mann\n", encoding="utf-8")
    out = run(
        "decode_speed.py", "--model", str(model_dir), "--source", str(source), "--beam", "1",
        "--beam", "3", "--repeat", "1", "--device", "cpu", "--constraints", "0",
        "--constraints", "2", "--constraint-source", str(references),
    )  # fmt: skip
    results = json.loads(out)["results"]
    assert set(results) == {
        "fp32_beam1_batch8000_constraints0",  # greedy: without constraints only
        "fp32_beam3_batch8000_constraints0",
        "fp32_beam3_batch8000_constraints2",
    }
    assert results["fp32_beam3_batch8000_constraints2"]["mean_constraints_per_line"] == 2
    assert results["fp32_beam3_batch8000_constraints2"]["sentences_per_second"] > 0


@pytest.mark.slow
def test_decode_speed_times_each_option_alone_and_scoring(model_dir, tmp_path, run):
    source = tmp_path / "src.txt"
    source.write_text("i see one woman\nthey want one old man\n", encoding="utf-8")
    references = tmp_path / "ref.txt"
    references.write_text("ich sehe eine Frau\nsie wollen einen alten Mann\n", encoding="utf-8")
    out = run(
        "decode_speed.py", "--model", str(model_dir), "--source", str(source), "--beam", "2",
        "--repeat", "1", "--device", "cpu", "--option", "attention=true",
        "--option", "coverage_penalty=0.2", "--score-reference", str(references),
    )  # fmt: skip
    results = json.loads(out)["results"]
    assert set(results) == {
        "fp32_beam2_batch8000",
        "fp32_beam2_batch8000_attention-True",
        "fp32_beam2_batch8000_coverage_penalty-0.2",
        "fp32_score",
    }
    assert results["fp32_score"]["pairs_per_second"] > 0


@pytest.mark.slow
def test_serve_speed_reports_requests_per_second(model_dir, tmp_path, run):
    source = tmp_path / "src.txt"
    source.write_text("1 2 3\n4 5\n6 7 8 9\n", encoding="utf-8")
    out = run(
        "serve_speed.py", "--model", str(model_dir), "--source", str(source), "--clients", "1",
        "--clients", "3", "--repeat", "1",
    )  # fmt: skip
    report = json.loads(out)
    assert report["nmt_translate"]["lines_per_second"] > 0
    assert report["serve_by_clients"]["3"]["requests_per_second"] > 0
    assert report["serve_by_clients"]["1"]["p99_ms"] >= report["serve_by_clients"]["1"]["p50_ms"]


@pytest.mark.slow
def test_ddp_speed_reports_scaling(tmp_path, quickstart, tiny_overrides, run):
    sets = [
        arg
        for item in tiny_overrides
        if not item.startswith("train.max_steps")
        for arg in ("--set", item)
    ]
    out = run(
        "ddp_speed.py", str(quickstart), "--procs", "1", "--procs", "2", "--steps", "3",
        "--repeat", "1", *sets,
    )  # fmt: skip
    results = json.loads(out)["results"]
    assert results["1"]["scaling_efficiency"] == 1.0
    assert results["2"]["target_tokens_per_second"] > 0


def data_scale(run, tmp_path, *args: str) -> dict:
    """benchmarks/data_scale.py on 300 pairs joined from toy pairs (standing in for
    Tatoeba's), a tiny model (the recipe's own is too slow for a test) for 2 steps: the
    report of that one size."""
    from nmt.data.toy import numbers

    base = tmp_path / "base"
    base.mkdir(exist_ok=True)
    pairs = numbers("train", 2000)
    (base / "train.en").write_text("".join(f"{en}\n" for en, _ in pairs), encoding="utf-8")
    (base / "train.de").write_text("".join(f"{de}\n" for _, de in pairs), encoding="utf-8")
    tiny = ["model.embedding_size=16", "model.hidden_size=32", "model.encoder_layers=1"]
    tiny += ["model.decoder_layers=1", "tokenizer.vocab_size=100", "train.batch_tokens=800"]
    tiny += ["train.precision=fp32"]
    out = run(
        "data_scale.py", "--pairs", "300", "--steps", "2", "--tatoeba", str(base),
        "--workdir", str(tmp_path / "work"), *set_args(tiny), *args,
    )  # fmt: skip
    (size,) = json.loads(out)["sizes"]
    return size


@pytest.mark.slow
def test_data_scale_with_nmt_prepare(tmp_path, run):
    """Runs once `nmt prepare` exists (issue 23, item 1): prepare measured, then training
    from the prepared dataset."""
    from nmt.cli.main import app

    if "prepare" not in {c.name for c in app.registered_commands}:
        pytest.skip("no nmt prepare in this checkout")
    size = data_scale(run, tmp_path, "--workers", "1")
    prepare, train = size["nmt"]["prepare"], size["nmt"]["train"]
    assert prepare["exit"] == 0, prepare
    assert prepare["pairs_per_second"] > 0 and prepare["disk_bytes"] > 0
    assert 0 < prepare["peak_rss_anon_gb"] <= prepare["peak_rss_gb"]
    assert train["exit"] == 0 and train["seconds_to_first_step"] > 0, train
    again = data_scale(run, tmp_path, "--reuse-prepared")["nmt"]  # the same workdir
    assert again["prepare"] == {"reused": str(tmp_path / "work" / "runs-300" / "prepared")}
    assert again["train"]["exit"] == 0 and again["train"]["steps"] == 2, again


@pytest.mark.slow
def test_data_scale_reports_time_to_first_step_and_memory(tmp_path, run):
    """Trained straight from the text (--no-prepare), as nmt trains without nmt prepare."""
    size = data_scale(run, tmp_path, "--no-prepare")
    assert size["corpus"]["pairs"] == 300
    assert 20 <= size["corpus"]["words_per_pair"]["en"] <= 30
    train = size["nmt"]["train"]
    assert train["exit"] == 0 and train["steps"] == 2, train
    assert 0 < train["seconds_to_first_step"] <= train["wall_seconds"]
    assert 0 < train["peak_rss_anon_gb"] <= train["peak_rss_gb"]
    assert train["tokens_per_second"] > 0
    lines = (tmp_path / "work" / "runs-300" / "train.log").read_text(encoding="utf-8")
    assert "step       1  loss" in lines


@pytest.mark.slow
def test_unk_replacement_reports_bleu_with_and_without(tmp_path, quickstart, tiny_overrides, run):
    from typer.testing import CliRunner

    from nmt.cli.main import app
    from nmt.data.toy import numbers

    model = tmp_path / "words"  # a word vocabulary of 40: most German number words <unk>
    overrides = [*tiny_overrides, "tokenizer.type=word", "tokenizer.vocab_size=40"]
    overrides += ["train.max_steps=120", "train.eval_every=200"]
    trained = CliRunner().invoke(
        app, ["train", str(quickstart), *set_args(overrides), "--output-dir", str(model)]
    )
    assert trained.exit_code == 0, trained.output
    pairs = numbers("test", 10)
    source, reference, dictionary = tmp_path / "src.txt", tmp_path / "ref.txt", tmp_path / "d.tsv"
    source.write_text("".join(f"{en}\n" for en, _ in pairs), encoding="utf-8")
    reference.write_text("".join(f"{de}\n" for _, de in pairs), encoding="utf-8")
    dictionary.write_text("three\tdrei\n", encoding="utf-8")
    out = run(
        "unk_replacement.py", "--model", str(model), "--source", str(source), "--reference",
        str(reference), "--unk-dictionary", str(dictionary), "--device", "cpu",
    )  # fmt: skip
    report = json.loads(out)
    assert report["sentences"] == 10 and report["output_unk_token_share"] > 0
    for name in ("plain", "replace_unk", "replace_unk_dictionary"):
        assert report[name]["bleu"]["signature"].startswith("nrefs:1|case:mixed")
    assert 0 < report["replace_unk"]["against_plain"]["p_value"] <= 1
