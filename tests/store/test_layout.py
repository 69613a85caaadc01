"""The model directory's names come from one module (nmt.store.layout), and so does the
one check, with one message, that a path given as a model directory is one."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from nmt.data.tokenizer import TargetSubset, file_names
from nmt.decode.translate import Translator
from nmt.errors import UserError
from nmt.recipe.schema import TokenizerConfig
from nmt.store import checkpoint, layout
from nmt.training import run_dir


def test_every_tokenizer_file_name_is_one_layout_lists():
    made = {
        name
        for kind, joint in itertools.product(("sentencepiece", "word"), (True, False))
        for name in file_names(TokenizerConfig(type=kind, joint=joint))
    }
    assert made | {TargetSubset.file_name} == set(layout.TOKENIZER_FILES)
    assert len(layout.TOKENIZER_FILES) == len(set(layout.TOKENIZER_FILES)) == 7


def test_the_names_of_checkpoints_are_layouts():
    assert checkpoint.RECIPE == layout.RECIPE == "recipe.yaml"
    assert checkpoint.WEIGHTS == layout.WEIGHTS == "model.safetensors"
    assert checkpoint.LAST == layout.LAST == Path("checkpoints/last")
    assert layout.step_file(120) == "step-00000120.safetensors"
    assert layout.kept_step(Path(layout.step_file(120))) == 120
    assert layout.kept_step(Path("step-x.safetensors")) is None
    assert Path(layout.step_file(7)).match(layout.STEP_FILES)


def test_what_a_run_writes_is_named_in_layout():
    # run_dir reads layout's list, tensorboard/ included (a run with train.tensorboard
    # writes it; before, --overwrite refused a directory holding one as not a run's)
    assert run_dir.RUN_FILES is layout.RUN_FILES
    assert run_dir._written_by_nmt(layout.TENSORBOARD)
    assert not run_dir._written_by_nmt("notes.txt")


def test_a_trained_model_directory_holds_only_layout_names(model_dir):
    names = {path.name for path in model_dir.iterdir()}
    assert names <= layout.RUN_FILES
    assert {layout.RECIPE, layout.WEIGHTS, layout.METRICS, layout.RESULTS} <= names
    last = {path.name for path in (model_dir / layout.LAST).iterdir()}
    assert last <= {layout.WEIGHTS, layout.OPTIMIZER, layout.TRAINER, layout.AVERAGE}


def test_check_model_dir_accepts_a_model_directory(model_dir):
    assert layout.check_model_dir(model_dir) == model_dir / layout.RECIPE


@pytest.mark.parametrize("flag", ["--model", "--init-from", None])
def test_check_model_dir_refuses_a_directory_without_a_recipe(tmp_path, flag):
    (tmp_path / "notes.txt").write_text("not a model", encoding="utf-8")
    named = f"{flag} {tmp_path}" if flag else str(tmp_path)
    with pytest.raises(UserError, match="not a model directory") as refused:
        layout.check_model_dir(tmp_path, flag)
    assert str(refused.value) == (
        f"{named}: not a model directory (no recipe.yaml); give the directory that nmt train "
        "wrote, e.g. runs/quickstart"
    )
    with pytest.raises(UserError, match="not a model directory"):
        layout.check_model_dir(tmp_path / "missing", flag)


def test_check_model_dir_tells_a_recipe_file_from_its_directory(model_dir):
    recipe = model_dir / layout.RECIPE
    with pytest.raises(UserError, match="is a file, not a model directory") as refused:
        layout.check_model_dir(recipe, None)
    assert str(refused.value) == (
        f"{recipe} is a file, not a model directory: give the directory that nmt train wrote "
        f"(holding recipe.yaml and model.safetensors), e.g. {model_dir}"
    )


def test_translate_refuses_through_the_one_check(tmp_path):
    with pytest.raises(UserError, match="not a model directory") as refused:
        Translator.load(tmp_path, "cpu")
    assert str(refused.value) == str(_refusal(tmp_path, "--model"))


def _refusal(path: Path, flag: str | None) -> UserError:
    try:
        layout.check_model_dir(path, flag)
    except UserError as error:
        return error
    raise AssertionError(f"{path} passed as a model directory")
