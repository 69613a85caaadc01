"""A newcomer's mistakes get messages that name what they typed; help reads plainly."""

from __future__ import annotations

import pytest
from helpers.cli import set_args

from nmt import __version__
from nmt.cli.main import app

COMMANDS = [
    ["train"], ["translate"], ["average"], ["serve"], ["evaluate", "bleu"],
    ["evaluate", "perplexity"], ["evaluate", "by-length"], ["plot"], ["recipes", "show"],
    ["export"],
]  # fmt: skip


def test_a_bad_beam_names_the_flag(runner, model_dir, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("1 2\n", encoding="utf-8")
    for command in (
        ["translate", str(source), "--model", str(model_dir), "--beam", "0"],
        ["evaluate", "bleu", "--model", str(model_dir), "--source", str(source)]
        + ["--reference", str(source), "--beam", "0"],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 1
        assert "--beam 0: give a beam of 1 (greedy)" in result.output
        assert "decode.beam_size" not in result.output


@pytest.mark.parametrize(
    ("flag", "value", "says"),
    [
        ("--length-penalty", "-1", "--length-penalty -1.0: give 0 or more"),
        ("--min-length", "-2", "--min-length -2: give 0 or more"),
    ],
)
def test_other_bad_decode_flags_name_themselves(runner, model_dir, tmp_path, flag, value, says):
    source = tmp_path / "in.txt"
    source.write_text("1 2\n", encoding="utf-8")
    result = runner.invoke(app, ["translate", str(source), "--model", str(model_dir), flag, value])
    assert result.exit_code == 1 and says in result.output


@pytest.mark.parametrize(
    ("item", "says"),
    [
        ("train.max_steps=abc", "--set 'train.max_steps=abc': 'train.max_steps' must be int"),
        ("train.nosuch=3", "--set 'train.nosuch=3': unknown key 'train.nosuch'"),
        ("model.dropout=2", "--set 'model.dropout=2': "),
    ],
)
def test_a_bad_set_names_set_not_the_recipe_file(runner, tmp_path, item, says, quickstart):
    result = runner.invoke(app, ["train", str(quickstart), "--set", item])
    assert result.exit_code == 1 and says in result.output
    assert "quickstart.yaml" not in result.output


def test_a_mapping_without_spaces_gets_the_yaml_hint(runner, quickstart):
    result = runner.invoke(app, ["train", str(quickstart), "--set", "data.train={toy:numbers}"])
    assert result.exit_code == 1
    assert "put a space after each colon: data.train={toy: numbers}" in result.output


def test_a_broken_recipe_file_is_still_named(runner, tmp_path, quickstart):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(quickstart.read_text() + "\nextra_section: 1\n", encoding="utf-8")
    result = runner.invoke(app, ["train", str(recipe), "--set", "train.max_steps=3"])
    assert result.exit_code == 1 and f"{recipe}: unknown key 'extra_section'" in result.output


def test_version(runner):
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"nmt {__version__}\n"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_has_no_typer_placeholders(runner, command):
    result = runner.invoke(app, [*command, "--help"], prog_name="nmt", terminal_width=100)
    assert result.exit_code == 0
    assert "<bool>" not in result.output and "{" not in result.output.splitlines()[0]
    assert "Usage: nmt " + " ".join(command) in result.output


def test_train_finds_a_bundled_recipe_by_name(runner, tmp_path, monkeypatch, tiny_overrides):
    monkeypatch.chdir(tmp_path)  # no recipes/ folder here: the name alone finds it
    out = tmp_path / "run"
    args = ["train", "quickstart", *set_args([*tiny_overrides, "train.max_steps=2"])]
    result = runner.invoke(app, [*args, "--output-dir", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").is_file()


def test_train_suggests_a_bundled_name_for_a_typo_and_spots_a_model_dir(runner, model_dir):
    result = runner.invoke(app, ["train", "quikstart"])
    assert result.exit_code == 1 and "did you mean 'quickstart'?" in result.output
    result = runner.invoke(app, ["train", str(model_dir)])
    assert result.exit_code == 1 and "is a model directory" in result.output


def test_one_line_is_the_one_way_a_message_is_put_on_one_line():
    # nmt.errors.one_line (nmt_runtime.errors's, which the torch-free server uses too)
    # serves the recipe reader's YAML errors and the server's JSON errors
    from nmt.errors import one_line
    from nmt.recipe import reading
    from nmt_runtime.serve import app as serve_app

    assert one_line("while parsing\n  in 'x.yaml', line 2\n\tcolumn 3") == (
        "while parsing in 'x.yaml', line 2 column 3"
    )
    assert one_line(ValueError("a\nb")) == "a b"
    assert one_line("x" * 20_000 + " tail") == "x" * 10_000  # read within a bound
    assert reading.one_line is one_line and serve_app.one_line is one_line
