"""Shared fixtures: one tiny quickstart model trained once per session, and tiny recipes.

Tests take what they share from here as fixtures (`root`, `quickstart`, `tiny_overrides`,
`model_dir`, ...), never by importing this module; functions with arguments that several
modules call live in tests/helpers/.

The model is the recipes/quickstart.yaml recipe shrunk with `--set` overrides (16-dim
embeddings, 32-dim states, 100 subwords, 300 training pairs, 40 steps), trained through
the real CLI. It learns next to nothing, so tests that use it assert structure and
equalities, never scores. Tests must treat its directory as read-only: copy it
(`copy_model`) before training into it again.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.checkout import QUICKSTART, ROOT
from helpers.cli import set_args
from typer.testing import CliRunner

from nmt.cli.main import app
from nmt.recipe.load import load_recipe
from nmt.recipe.schema import Recipe

# key=value overrides that make the quickstart recipe train in about a second on a CPU.
TINY = [
    "model.embedding_size=16",
    "model.hidden_size=32",
    "tokenizer.vocab_size=100",
    "data.train={toy: numbers, split: train, size: 300}",
    "data.valid={toy: numbers, split: valid, size: 20}",
    "data.test={toy: numbers, split: test, size: 20}",
    "train.batch_tokens=500",
    "train.max_steps=20",
    "train.eval_every=10",
    "train.log_every=10",
]
MODEL_STEPS = 40  # steps of the shared session model
# what the shared model is trained with: two evaluations, at steps 20 and 40
MODEL_OVERRIDES = [*TINY, f"train.max_steps={MODEL_STEPS}", "train.eval_every=20"]


@pytest.fixture(autouse=True, scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Prepared datasets (nmt.data.identity.cache_root) of the session's shared fixtures
    go to a temporary directory, never to ~/.cache/nmt."""
    import os

    os.environ["NMT_CACHE_DIR"] = str(tmp_path_factory.mktemp("nmt-cache"))


@pytest.fixture(autouse=True)
def nmt_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's prepared datasets in a temporary directory of its own (NMT_CACHE_DIR,
    subprocesses too), beside its tmp_path: tests that list tmp_path find only theirs."""
    cache = tmp_path_factory.mktemp("nmt-cache")
    monkeypatch.setenv("NMT_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(autouse=True)
def torch_threads_restored():
    """Every test ends with torch's global thread count as it began. A CLI verb run
    in-process with --threads sets it for the whole session, and a later test that
    compares an in-process training with a subprocess one (test_kill_9_...) then sums in
    another order and differs in the last bit of its weights."""
    import torch

    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="session")
def tiny_overrides() -> list[str]:
    """The overrides that shrink the quickstart recipe (a fresh copy per use is the caller's)."""
    return list(TINY)


@pytest.fixture(scope="session")
def model_overrides() -> list[str]:
    """The overrides the shared model (`model_dir`) was trained with."""
    return list(MODEL_OVERRIDES)


@pytest.fixture(scope="session")
def model_steps() -> int:
    return MODEL_STEPS


@pytest.fixture(scope="session")
def root() -> Path:
    """The checkout: the folder holding nmt/, cli/, recipes/, benchmarks/ and README.md."""
    return ROOT


@pytest.fixture(scope="session")
def quickstart() -> Path:
    """recipes/quickstart.yaml, the recipe the tiny runs shrink (`tiny_overrides`)."""
    return QUICKSTART


@pytest.fixture
def make_recipe() -> Callable[..., Recipe]:
    """make_recipe(output_dir, *overrides): the tiny quickstart recipe, extra overrides last."""

    def make(output_dir: Path, *overrides: str) -> Recipe:
        recipe = load_recipe(QUICKSTART, [*TINY, *overrides])
        return dataclasses.replace(recipe, output_dir=str(output_dir))

    return make


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, runner: CliRunner) -> Path:
    """A tiny quickstart model trained once through `nmt train`; read-only for tests."""
    out = tmp_path_factory.mktemp("shared") / "model"
    result = runner.invoke(
        app,
        ["train", str(QUICKSTART), *set_args(MODEL_OVERRIDES), "--output-dir", str(out)]
        + ["--device", "cpu"],
    )
    if result.exit_code != 0:
        raise RuntimeError(f"training the shared model failed:\n{result.output}")
    # what `nmt train` printed, beside (not inside) the model directory
    (out.parent / "train.stdout").write_text(result.stdout, encoding="utf-8")
    return out


@pytest.fixture
def copy_model(model_dir: Path, tmp_path: Path) -> Callable[[str], Path]:
    """copy_model(name): a private copy of the shared model (timestamps kept) in tmp_path."""

    def copy(name: str = "model") -> Path:
        target = tmp_path / name
        shutil.copytree(model_dir, target)
        return target

    return copy


@pytest.fixture
def model_without_cap_key(copy_model: Callable[[str], Path]) -> Path:
    """A copy of the shared model whose recipe.yaml does not name decode.max_input_length,
    as a recipe written by hand does not: it gets the default."""
    model = copy_model("uncapped")
    recipe = model / "recipe.yaml"
    text = recipe.read_text(encoding="utf-8")
    recipe.write_text(re.sub(r"\n  max_input_length: .*", "", text), encoding="utf-8")
    assert "max_input_length" not in recipe.read_text(encoding="utf-8")
    return model
