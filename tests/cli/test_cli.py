"""The `nmt` command line end to end: train, translate, evaluate (Typer's CliRunner).

Checked here: a user's mistake (unknown recipe key, misaligned or missing corpus, an
existing directory, a directory that is no model, mismatched files) ends in one
`error: ...` line on stderr naming the culprit, a non-zero exit and no traceback;
`nmt translate` writes one line per input line from a file or stdin, to stdout or
--output, with --greedy / --beam / --nbest / --attention-out / --plot doing what they
say; `nmt evaluate bleu` scores files (or translates and scores) as one JSON object with
sacreBLEU signatures, and `nmt evaluate perplexity` reports a consistent cross-entropy
and perplexity. One test runs the installed `nmt` console script in a real process.
The files the CLI reads and writes (pipes, hard links, full disks) are tested in
test_cli_files.py.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cli import (
    REFERENCES,
    SOURCES,
    assert_user_error,
    translate,
    unstamped,
    write_lines,
)

from nmt.cli.main import app
from nmt.decode.translate import Translator
from nmt.recipe.load import load_recipe


@pytest.fixture(scope="module")
def translator(model_dir) -> Translator:
    return Translator.load(model_dir, "cpu")


@pytest.fixture
def source_file(tmp_path) -> Path:
    """Two sentences around an empty line."""
    return write_lines(tmp_path / "in.en", [SOURCES[0], "", SOURCES[1]])


# ---------------------------------------------------------------- nmt train


def test_help_lists_the_three_commands(runner):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "translate", "evaluate"):
        assert command in result.stdout


def test_train_prints_progress_and_a_summary(model_dir):
    printed = unstamped((model_dir.parent / "train.stdout").read_text(encoding="utf-8"))
    evaluations = re.findall(r"^eval +epoch +([\d.]+) +step +(\d+) ", printed, re.MULTILINE)
    assert [int(step) for _, step in evaluations] == [20, 40]
    assert 0 < float(evaluations[0][0]) < float(evaluations[1][0])  # fractional epochs grow
    assert "test: BLEU" in printed and "nrefs:1" in printed
    assert "trained 40 steps" in printed and str(model_dir) in printed


@pytest.mark.parametrize("where", ["set", "file"])
def test_train_unknown_recipe_key(runner, quickstart, tmp_path, where):
    if where == "set":
        args = [str(quickstart), "--set", "model.hiden_size=32"]
    else:
        recipe = tmp_path / "typo.yaml"
        recipe.write_text(
            quickstart.read_text(encoding="utf-8").replace("hidden_size:", "hiden_size:"),
            encoding="utf-8",
        )
        args = [str(recipe)]
    result = runner.invoke(app, ["train", *args, "--output-dir", str(tmp_path / "run")])
    line = assert_user_error(result, "model.hiden_size")
    assert "hidden_size" in line.replace("hiden_size", "")  # suggests the valid key
    assert not (tmp_path / "run").exists()


def test_train_misaligned_corpus(runner, quickstart, tiny_overrides, tmp_path):
    write_lines(tmp_path / "train.en", ["one dog sleeps", "two cats run", "i see one car"])
    write_lines(tmp_path / "train.de", ["ein Hund schläft", "zwei Katzen laufen"])
    overrides = [*tiny_overrides, f"data.train={tmp_path}/train.{{lang}}"]
    args = [str(quickstart), "--output-dir", str(tmp_path / "run"), "--device", "cpu"]
    result = runner.invoke(app, ["train", *args, *(a for o in overrides for a in ("--set", o))])
    assert_user_error(
        result, str(tmp_path / "train.en"), str(tmp_path / "train.de"), "has 3 lines", "has 2"
    )


def test_train_missing_corpus_file(runner, quickstart, tiny_overrides, tmp_path):
    overrides = [*tiny_overrides, f"data.train={tmp_path}/absent.{{lang}}"]
    args = [str(quickstart), "--output-dir", str(tmp_path / "run"), "--device", "cpu"]
    result = runner.invoke(app, ["train", *args, *(a for o in overrides for a in ("--set", o))])
    assert_user_error(result, str(tmp_path / "absent.en"), "no such file", "data.train")


def test_train_into_an_existing_model_dir(runner, quickstart, tiny_overrides, copy_model):
    run_dir = copy_model()
    mtime = (run_dir / "model.safetensors").stat().st_mtime_ns
    sets = [a for o in tiny_overrides for a in ("--set", o)]
    result = runner.invoke(
        app, ["train", str(quickstart), *sets, "--output-dir", str(run_dir), "--device", "cpu"]
    )
    assert_user_error(result, str(run_dir), "--resume", "--overwrite")
    assert (run_dir / "model.safetensors").stat().st_mtime_ns == mtime


def test_train_output_dir_that_is_a_file(runner, quickstart, tiny_overrides, tmp_path):
    target = tmp_path / "model"
    target.write_text("a file, not a directory")
    sets = [a for o in tiny_overrides for a in ("--set", o)]
    result = runner.invoke(
        app, ["train", str(quickstart), *sets, "--output-dir", str(target), "--device", "cpu"]
    )
    assert_user_error(result, str(target))
    assert target.read_text() == "a file, not a directory"


# ---------------------------------------------------------------- nmt translate


def test_translate_a_file_to_stdout(runner, model_dir, translator, source_file):
    result = translate(runner, model_dir, str(source_file))
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")
    assert lines[-1] == ""  # every line ends in a newline
    assert lines[:-1] == translator.translate([SOURCES[0], "", SOURCES[1]])
    assert lines[1] == ""
    assert "decoding with beam 5" in result.stderr  # settings go to stderr, not the output


def test_translate_stdin(runner, model_dir, translator):
    text = f"{SOURCES[2]}\n\n{SOURCES[3]}\n"
    result = translate(runner, model_dir, "-", input=text)
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\n")[:-1] == translator.translate([SOURCES[2], "", SOURCES[3]])


def test_translate_empty_input_warns(runner, model_dir, tmp_path):
    empty = tmp_path / "empty.en"
    empty.write_text("", encoding="utf-8")
    result = translate(runner, model_dir, str(empty))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "had no lines" in result.stderr


def test_translate_to_an_output_file(runner, model_dir, translator, source_file, tmp_path):
    out = tmp_path / "out.de"
    result = translate(runner, model_dir, str(source_file), "--output", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    written = out.read_text(encoding="utf-8")
    assert written.split("\n")[:-1] == translator.translate([SOURCES[0], "", SOURCES[1]])


@pytest.mark.parametrize(("flag", "beam_size"), [(["--greedy"], 1), (["--beam", "3"], 3)])
def test_translate_search_flags(runner, model_dir, translator, source_file, flag, beam_size):
    result = translate(runner, model_dir, str(source_file), *flag)
    assert result.exit_code == 0, result.output
    lines = [SOURCES[0], "", SOURCES[1]]
    assert result.stdout.split("\n")[:-1] == translator.translate(lines, beam_size=beam_size)
    assert f"decoding with beam {beam_size}," in result.stderr


def test_translate_length_penalty_flag(runner, model_dir, source_file):
    result = translate(runner, model_dir, str(source_file), "--length-penalty", "1.5")
    assert result.exit_code == 0, result.output
    assert "(length penalty 1.5)" in result.stderr


def test_translate_nbest(runner, model_dir, translator, tmp_path):
    src = write_lines(tmp_path / "in.en", SOURCES[:3])
    result = translate(runner, model_dir, str(src), "--nbest", "2", "--beam", "3")
    assert result.exit_code == 0, result.output
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert all(len(row) == 3 for row in rows)
    assert [int(row[0]) for row in rows] == [0, 0, 1, 1, 2, 2]
    expected = translator.search(SOURCES[:3], nbest=2, beam_size=3)
    for i, hyps in enumerate(expected):
        mine = rows[2 * i : 2 * i + 2]
        assert [row[2] for row in mine] == [h.text for h in hyps]
        scores = [float(row[1]) for row in mine]
        assert scores == sorted(scores, reverse=True)
        assert scores == pytest.approx([h.score for h in hyps], abs=1e-3)


def test_translate_nbest_wider_than_beam(runner, model_dir, source_file):
    result = translate(runner, model_dir, str(source_file), "--nbest", "2", "--greedy")
    assert_user_error(result, "--nbest 2")


def test_translate_nbest_zero(runner, model_dir, source_file):
    result = translate(runner, model_dir, str(source_file), "--nbest", "0")
    assert_user_error(result, "nbest")


def read_attention(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_translate_attention_out(runner, model_dir, translator, source_file, tmp_path):
    out = tmp_path / "attention.jsonl"
    result = translate(runner, model_dir, str(source_file), "--attention-out", str(out))
    assert result.exit_code == 0, result.output
    records = read_attention(out)
    assert [r["line"] for r in records] == [0, 1, 2]
    assert records[1] == {"line": 1, "source": [], "target": [], "attention": []}
    texts = result.stdout.split("\n")
    for i in (0, 2):
        r = records[i]
        assert r["target"][-1] == "</s>"
        assert r["source"] == translator.src_tokenizer.pieces(
            translator.src_tokenizer.encode([SOURCES[i // 2]])[0]
        )
        assert len(r["attention"]) == len(r["target"])
        for row in r["attention"]:
            assert sum(row) == pytest.approx(1.0, abs=1e-4)
            assert sum(row[len(r["source"]) :]) == 0.0  # nothing on padding
        # the attention belongs to the translation that was written
        assert translator.tgt_tokenizer.inner.sp.decode_pieces(r["target"][:-1]) == texts[i]


def test_translate_attention_out_has_one_column_per_source_piece(
    runner, model_dir, source_file, tmp_path
):
    out = tmp_path / "attention.jsonl"
    result = translate(runner, model_dir, str(source_file), "--attention-out", str(out))
    assert result.exit_code == 0, result.output
    for r in read_attention(out):
        assert all(len(row) == len(r["source"]) for row in r["attention"])


def test_translate_plot(runner, model_dir, source_file, tmp_path):
    plots = tmp_path / "plots"
    result = translate(runner, model_dir, str(source_file), "--plot", str(plots))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in plots.iterdir()) == ["attention-0.png", "attention-2.png"]
    for png in plots.iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    few = tmp_path / "few"
    result = translate(runner, model_dir, str(source_file), "--plot", str(few), "--plot-count", "1")
    assert result.exit_code == 0, result.output
    assert [p.name for p in few.iterdir()] == ["attention-0.png"]


def test_translate_with_a_model_that_is_a_file(runner, model_dir, source_file):
    recipe = model_dir / "recipe.yaml"
    result = translate(runner, recipe, str(source_file))
    assert_user_error(result, f"--model {recipe} is a file", "--model wants the directory")


def test_translate_plot_naming_an_existing_file(runner, model_dir, source_file, tmp_path):
    taken = write_lines(tmp_path / "notes.txt", ["mine"])
    result = translate(runner, model_dir, str(source_file), "--plot", str(taken))
    assert_user_error(result, f"--plot {taken} is a file, not a directory")
    below = taken / "plots"
    result = translate(runner, model_dir, str(source_file), "--plot", str(below))
    assert_user_error(result, f"--plot {below}: {taken} is a file")
    assert taken.read_text(encoding="utf-8") == "mine\n"


def test_translate_with_a_directory_that_is_not_a_model(runner, tmp_path, source_file):
    (tmp_path / "notes.txt").write_text("not a model")
    result = translate(runner, tmp_path, str(source_file))
    assert_user_error(result, str(tmp_path), "not a model directory")


def test_translate_a_missing_input_file(runner, model_dir, tmp_path):
    result = translate(runner, model_dir, str(tmp_path / "absent.en"))
    assert_user_error(result, str(tmp_path / "absent.en"), "no such file")


@pytest.mark.parametrize("normalization", ["none", "average", "gnmt"])
def test_translate_decode_options(runner, model_dir, translator, source_file, normalization):
    options = ["--beam", "3", "--length-normalization", normalization, "--min-length", "4"]
    result = translate(runner, model_dir, str(source_file), *options)
    assert result.exit_code == 0, result.output
    assert f"beam 3, {normalization} length normalization" in result.stderr
    assert "min length 4" in result.stderr
    lines = [SOURCES[0], "", SOURCES[1]]
    expected = translator.translate(
        lines, beam_size=3, length_normalization=normalization, min_length=4
    )
    assert result.stdout.split("\n")[:-1] == expected
    found = translator.search(
        lines, beam_size=3, length_normalization=normalization, min_length=4
    )  # at least min-length tokens before </s>
    assert all(len(f[0].target_pieces) >= 4 for f in (found[0], found[2]))


@pytest.mark.parametrize("normalization", ["none", "average", "gnmt"])
def test_the_length_penalty_is_shown_only_where_it_is_used(
    runner, model_dir, source_file, tmp_path, normalization
):
    result = translate(runner, model_dir, str(source_file), "--length-normalization", normalization)
    assert result.exit_code == 0, result.output
    assert ("length penalty" in result.stderr) == (normalization == "gnmt")
    ref = write_lines(tmp_path / "ref.de", REFERENCES[:3])
    args = ["--source", str(source_file), "--reference", str(ref), "--device", "cpu"]
    args += ["--length-normalization", normalization, "--greedy"]
    report = evaluate_json(runner, "bleu", "--model", str(model_dir), *args)
    assert ("length_penalty" in report["decode"]) == (normalization == "gnmt")
    assert report["decode"]["max_input_length"] == 300 and report["truncated"] == 0
    text = runner.invoke(app, ["evaluate", "bleu", "--model", str(model_dir), *args])
    assert text.exit_code == 0 and ("length_penalty" in text.stdout) == (normalization == "gnmt")


@pytest.mark.slow
def test_translate_cuts_a_very_long_line_and_says_which(runner, model_without_cap_key, tmp_path):
    # A line of a million characters: cut to decode.max_input_length (a recipe.yaml that
    # does not name it gets 300), and the summary names the lines cut.
    assert load_recipe(model_without_cap_key / "recipe.yaml").decode.max_input_length == 300
    huge = " ".join(["three hundred forty-two red dogs sleep"] * 25_000)
    source = write_lines(tmp_path / "in.en", [SOURCES[0], huge, SOURCES[1], huge])
    attention = tmp_path / "attention.jsonl"
    args = [str(source), "--greedy", "--attention-out", str(attention)]
    result = translate(runner, model_without_cap_key, *args)
    assert result.exit_code == 0, result.output
    assert "inputs cut at 300 tokens" in result.stderr
    assert (
        "warning: 2 lines were longer than decode.max_input_length (300 tokens) and cut to "
        "it: lines 2, 4; to translate them whole, set decode.max_input_length: null"
    ) in result.stderr
    records = [json.loads(line) for line in attention.read_text(encoding="utf-8").splitlines()]
    assert [len(r["source"]) == 300 for r in records] == [False, True, False, True]
    assert len(result.stdout.split("\n")[:-1]) == 4


def test_translate_refuses_to_write_over_its_input(runner, model_dir, source_file):
    before = source_file.read_bytes()
    result = translate(runner, model_dir, str(source_file), "--output", str(source_file))
    assert_user_error(result, str(source_file), "input file too")
    assert source_file.read_bytes() == before


def test_translate_missing_input_leaves_the_output_alone(runner, model_dir, tmp_path):
    output = write_lines(tmp_path / "keep.de", ["an earlier translation"])
    result = translate(runner, model_dir, str(tmp_path / "absent.en"), "--output", str(output))
    assert_user_error(result, "absent.en")
    assert output.read_text(encoding="utf-8") == "an earlier translation\n"


def test_translate_stdin_that_is_not_utf8(runner, model_dir):
    result = translate(runner, model_dir, "-", input=b"one dog\n" + b"caf\xe9\n")
    assert_user_error(result, "standard input:2", "not valid UTF-8")


# ---------------------------------------------------------------- nmt evaluate


@pytest.fixture
def hyp_ref(tmp_path) -> tuple[Path, Path]:
    """A reference and a hypothesis that gets some sentences right and others wrong."""
    ref = write_lines(tmp_path / "ref.de", REFERENCES)
    hyps = [de if i % 2 == 0 else "ein Vogel fällt" for i, de in enumerate(REFERENCES)]
    return write_lines(tmp_path / "hyp.de", hyps), ref


def evaluate_json(runner, *args: str) -> dict:
    result = runner.invoke(app, ["evaluate", *args, "--json"])
    assert result.exit_code == 0, result.output
    (line,) = result.stdout.splitlines()  # one JSON object on one line
    return json.loads(line)


def test_evaluate_files(runner, hyp_ref):
    hyp, ref = hyp_ref
    report = evaluate_json(runner, "bleu", str(hyp), "--reference", str(ref))
    assert report["sentences"] == len(REFERENCES)
    for metric in ("bleu", "chrf", "ter"):
        assert 0 < report[metric]["score"] < 100, metric
        assert report[metric]["signature"].startswith("nrefs:1|")
    assert "tok:13a" in report["bleu"]["signature"]


def test_evaluate_a_perfect_hypothesis(runner, tmp_path):
    ref = write_lines(tmp_path / "ref.de", REFERENCES)
    report = evaluate_json(runner, "bleu", str(ref), "--reference", str(ref))
    assert report["bleu"]["score"] == 100.0
    assert report["chrf"]["score"] == 100.0
    assert report["ter"]["score"] == 0.0


def test_evaluate_chosen_metrics_only(runner, hyp_ref):
    hyp, ref = hyp_ref
    report = evaluate_json(runner, "bleu", str(hyp), "--reference", str(ref), "--metrics", "bleu")
    assert "bleu" in report and "chrf" not in report and "ter" not in report


@pytest.mark.parametrize(("metrics", "message"), [("bleu,meteor", "meteor"), ("", "no metric")])
def test_evaluate_bad_metrics(runner, hyp_ref, metrics, message):
    hyp, ref = hyp_ref
    result = runner.invoke(
        app, ["evaluate", "bleu", str(hyp), "--reference", str(ref), "--metrics", metrics]
    )
    assert_user_error(result, message)


def test_evaluate_compare(runner, hyp_ref, tmp_path):
    hyp, ref = hyp_ref
    other = write_lines(tmp_path / "other.de", ["ein Vogel fällt"] * len(REFERENCES))
    report = evaluate_json(
        runner, "bleu", str(hyp), "--reference", str(ref), "--compare", str(other)
    )
    compare = report["compare"]
    assert compare["baseline"] == str(other)
    for metric in ("bleu", "chrf", "ter"):
        assert 0 <= compare[metric]["p_value"] <= 1
        assert compare[metric]["score"] == pytest.approx(report[metric]["score"], abs=0.01)
    assert compare["bleu"]["score"] > compare["bleu"]["baseline"]


def test_evaluate_text_report(runner, hyp_ref):
    hyp, ref = hyp_ref
    result = runner.invoke(app, ["evaluate", "bleu", str(hyp), "--reference", str(ref)])
    assert result.exit_code == 0, result.output
    assert "BLEU" in result.stdout and "chrF" in result.stdout and "TER" in result.stdout
    assert "nrefs:1" in result.stdout


def test_evaluate_mismatched_line_counts(runner, tmp_path):
    ref = write_lines(tmp_path / "ref.de", REFERENCES)
    hyp = write_lines(tmp_path / "hyp.de", REFERENCES[:-1])
    result = runner.invoke(app, ["evaluate", "bleu", str(hyp), "--reference", str(ref)])
    n = len(REFERENCES)
    assert_user_error(result, str(hyp), str(ref), f"has {n - 1} lines", f"has {n}")


def test_evaluate_hypothesis_and_model_together(runner, model_dir, hyp_ref, tmp_path):
    hyp, ref = hyp_ref
    result = runner.invoke(
        app, ["evaluate", "bleu", str(hyp), "--reference", str(ref), "--model", str(model_dir)]
    )
    assert_user_error(result, "either HYPOTHESIS")


def test_evaluate_translates_with_a_model(runner, model_dir, translator, tmp_path):
    src = write_lines(tmp_path / "test.en", SOURCES)
    ref = write_lines(tmp_path / "test.de", REFERENCES)
    out = tmp_path / "hyp.de"
    args = ["--source", str(src), "--reference", str(ref), "--device", "cpu"]
    report = evaluate_json(
        runner, "bleu", "--model", str(model_dir), *args, "--greedy", "--output", str(out)
    )
    assert report["sentences"] == len(SOURCES)
    assert report["decode"]["beam_size"] == 1
    assert report["decode"]["length_normalization"] == "gnmt"
    assert report["translate_seconds"] >= 0
    assert "hypotheses" not in report  # written with --output, not printed
    for metric in ("bleu", "chrf", "ter"):
        assert report[metric]["signature"].startswith("nrefs:1|")
    greedy = translator.translate(SOURCES, beam_size=1)
    assert out.read_text(encoding="utf-8").split("\n")[:-1] == greedy

    report = evaluate_json(runner, "bleu", "--model", str(model_dir), *args, "--beam", "2")
    assert report["decode"]["beam_size"] == 2


def test_evaluate_perplexity(runner, model_dir, tmp_path):
    src = write_lines(tmp_path / "test.en", [*SOURCES, ""])
    ref = write_lines(tmp_path / "test.de", [*REFERENCES, "ein Hund"])
    result = runner.invoke(
        app,
        ["evaluate", "perplexity", "--model", str(model_dir), "--source", str(src)]
        + ["--reference", str(ref), "--device", "cpu", "--json"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["sentences"] == len(SOURCES) and report["skipped_empty"] == 1
    assert report["tokens"] > len(SOURCES)  # subwords plus one </s> per sentence
    assert report["cross_entropy"] > 0
    assert report["perplexity"] == pytest.approx(math.exp(report["cross_entropy"]), rel=1e-3)


def test_evaluate_perplexity_with_a_directory_that_is_not_a_model(runner, tmp_path):
    src = write_lines(tmp_path / "s.en", SOURCES)
    ref = write_lines(tmp_path / "r.de", REFERENCES)
    args = ["--source", str(src), "--reference", str(ref)]
    result = runner.invoke(app, ["evaluate", "perplexity", "--model", str(tmp_path), *args])
    assert_user_error(result, "not a model directory")


# ---------------------------------------------------------------- the console script


@pytest.mark.slow
def test_console_script_runs_in_a_real_process(hyp_ref, tmp_path):
    hyp, ref = hyp_ref
    nmt = Path(sys.executable).parent / "nmt"
    assert nmt.is_file(), "the nmt console script is not installed next to this Python"
    done = subprocess.run(
        [str(nmt), "evaluate", "bleu", str(hyp), "--reference", str(ref), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert 0 < report["bleu"]["score"] < 100

    short = write_lines(tmp_path / "short.de", REFERENCES[:2])
    done = subprocess.run(
        [str(nmt), "evaluate", "bleu", str(short), "--reference", str(ref)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


# ---------------------------------------------------------------- checked before any work


@pytest.mark.parametrize("where", ["missing-dir/out.de", "."])
def test_translate_output_that_cannot_be_written(runner, model_dir, source_file, tmp_path, where):
    target = tmp_path / where
    assert_user_error(
        translate(runner, model_dir, str(source_file), "--output", str(target)), "--output"
    )


def test_translate_keeps_an_existing_output_when_the_flags_are_wrong(
    runner, model_dir, source_file, tmp_path
):
    keep = write_lines(tmp_path / "keep.de", ["precious"])
    result = translate(
        runner, model_dir, str(source_file), "--output", str(keep), "--nbest", "3", "--beam", "1"
    )
    assert_user_error(result, "--nbest 3")
    assert keep.read_text(encoding="utf-8") == "precious\n"


def test_evaluate_output_that_cannot_be_written(runner, model_dir, tmp_path):
    src = write_lines(tmp_path / "s.en", SOURCES)
    ref = write_lines(tmp_path / "r.de", REFERENCES)
    result = runner.invoke(
        app,
        [
            "evaluate",
            "bleu",
            "--model",
            str(model_dir),
            "--source",
            str(src),
            "--reference",
            str(ref),
            "--output",
            str(tmp_path / "nodir" / "x.de"),
            "--device",
            "cpu",
        ],
    )
    assert_user_error(result, "does not exist")


@pytest.mark.parametrize("flag", [["--beam", "3"], ["--greedy"], ["--output", "x.txt"]])
def test_evaluate_decode_options_need_a_model(runner, hyp_ref, flag):
    hyp, ref = hyp_ref
    result = runner.invoke(app, ["evaluate", "bleu", str(hyp), "--reference", str(ref), *flag])
    assert_user_error(result, "only with --model")


def test_perplexity_skips_a_line_that_tokenizes_to_nothing(runner, model_dir, tmp_path):
    src = write_lines(tmp_path / "s.en", [SOURCES[0], "\u200b"])
    ref = write_lines(tmp_path / "r.de", [REFERENCES[0], "ein"])
    args = [
        "evaluate",
        "perplexity",
        "--model",
        str(model_dir),
        "--source",
        str(src),
        "--reference",
        str(ref),
        "--json",
        "--device",
        "cpu",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["sentences"], report["skipped_empty"]) == (1, 1)
