"""`nmt translate --model EXPORTED_DIR` and `nmt evaluate bleu --model EXPORTED_DIR`
translate with nmt_runtime, writing what the model directory itself gives."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.slow  # exports models: seconds each

pytest.importorskip("onnxruntime")

from helpers.exporting import exported, sources  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from nmt.cli.main import app  # noqa: E402
from nmt.errors import UserError  # noqa: E402
from nmt.export.loaded import ExportedTranslator, load_translator  # noqa: E402


def test_nmt_translate_an_exported_directory_as_the_model_directory(tmp_path):
    run, out = exported("lstm_tied_shared_restricted")
    # ten lines: the twelfth's 40-token beams of a random model hold two hypotheses 1e-4
    # apart, closer than fp32 sums in two orders agree (tests/runtime checks the scores)
    (tmp_path / "in.txt").write_text("\n".join(sources(10)) + "\n", encoding="utf-8")
    runner = CliRunner()
    written = {}
    for name, model in (("torch", run), ("runtime", out)):
        target = tmp_path / f"{name}.txt"
        done = runner.invoke(
            app,
            ["translate", str(tmp_path / "in.txt"), "--model", str(model), "--beam", "3",
             "--nbest", "2", "--output", str(target), "--threads", "1"],
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        written[name] = [row.split("\t")[::2] for row in target.read_text().splitlines()]
    assert written["runtime"] == written["torch"]  # index and text of every n-best row


def test_nmt_evaluate_bleu_with_an_exported_directory(tmp_path):
    run, out = exported("gru_bahdanau")
    lines = sources(6)
    (tmp_path / "src.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    scores = []
    for model in (run, out):
        done = runner.invoke(
            app,
            ["evaluate", "bleu", "--model", str(model), "--source", str(tmp_path / "src.txt"),
             "--reference", str(tmp_path / "ref.txt"), "--json", "--greedy"],
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        scores.append(done.stdout[done.stdout.index("{") :])
    assert '"bleu"' in scores[1]
    assert scores[0].split('"bleu"')[1][:40] == scores[1].split('"bleu"')[1][:40]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--device", "cuda"], "--device cuda: an exported directory .* runs on the CPU"),
        (["--precision", "int8"], "--precision int8: an exported directory .* keeps the precision"),
        (["--model", "OTHER"], "--model .* is an exported directory, which translates alone"),
    ],
)
def test_what_an_exported_directory_cannot_do_is_one_line(tmp_path, args, message):
    run, out = exported("gru_bahdanau")
    args = [str(run) if a == "OTHER" else a for a in args]
    (tmp_path / "in.txt").write_text("one\n", encoding="utf-8")
    done = CliRunner().invoke(app, ["translate", str(tmp_path / "in.txt"), "--model", str(out),
                                    *args])  # fmt: skip
    assert done.exit_code == 1
    assert re.search("error: " + message, done.output), done.output
    assert done.output.count("\n") == 1


def test_runtime_mistakes_become_nmt_user_errors():
    _, out = exported("gru_bahdanau")
    translator = load_translator([out])
    assert isinstance(translator, ExportedTranslator)
    assert translator.recipe.data.target_lang == "de" and translator.size == 1
    with pytest.raises(UserError, match=r"--nbest 4 needs a beam at least that wide"):
        translator.search(["one"], nbest=4, beam_size=2)


def test_a_coverage_penalty_is_refused_for_an_exported_directory(tmp_path):
    _, out = exported("gru_bahdanau")
    (tmp_path / "in.txt").write_text("\n".join(sources(2)) + "\n", encoding="utf-8")
    args = ["translate", str(tmp_path / "in.txt"), "--model", str(out), "--coverage-penalty"]
    done = CliRunner().invoke(app, [*args, "0.2"])
    assert done.exit_code != 0
    assert "error: --coverage-penalty 0.2: an exported model has no coverage penalty" in (
        done.stderr
    )
    assert CliRunner().invoke(app, [*args, "0"]).exit_code == 0  # none asked: translates


def test_alignments_are_refused_for_an_exported_directory(tmp_path):
    _, out = exported("gru_bahdanau")
    (tmp_path / "in.txt").write_text("\n".join(sources(2)) + "\n", encoding="utf-8")
    done = CliRunner().invoke(
        app, ["translate", str(tmp_path / "in.txt"), "--model", str(out), "--alignments"]
    )
    assert done.exit_code != 0
    assert "error: --alignments: an exported model gives no alignments" in done.stderr


def test_constraints_are_refused_for_an_exported_directory(tmp_path):
    _, out = exported("gru_bahdanau")
    (tmp_path / "in.txt").write_text("\n".join(sources(2)) + "\n", encoding="utf-8")
    (tmp_path / "terms.tsv").write_text("eine\n\n", encoding="utf-8")
    args = ["translate", str(tmp_path / "in.txt"), "--model", str(out), "--beam", "3"]
    done = CliRunner().invoke(app, [*args, "--constraints", str(tmp_path / "terms.tsv")])
    assert done.exit_code != 0
    assert "error: --constraints " in done.stderr
    assert "an exported model has no constrained search" in done.stderr


@pytest.mark.parametrize("flag", [["--replace-unk"], ["--unk-dictionary", "DICT"]])
def test_unk_replacement_is_refused_for_an_exported_directory(tmp_path, flag):
    _, out = exported("gru_bahdanau")
    (tmp_path / "in.txt").write_text("\n".join(sources(2)) + "\n", encoding="utf-8")
    (tmp_path / "dict.tsv").write_text("eins\tone\n", encoding="utf-8")
    flag = [str(tmp_path / "dict.tsv") if a == "DICT" else a for a in flag]
    done = CliRunner().invoke(
        app, ["translate", str(tmp_path / "in.txt"), "--model", str(out), *flag]
    )
    assert done.exit_code != 0
    assert re.search(r"error: --(replace-unk|unk-dictionary \S+): an exported model gives no "
                     "attention to copy", done.stderr), done.stderr  # fmt: skip
    assert done.stderr.count("\n") == 1
