"""Every recipe in recipes/ is usable: the quickstart with every cell × attention, and the
full-size classic and Multi30k recipes at reduced size on the toy corpus; and every variant
of benchmarks/ablation.py makes a valid recipe of the Multi30k one.

The classic recipes (Sutskever, Bahdanau, Luong) cannot train here at full size; these
tests keep each recipe's architecture (layers, directions, cell, attention, bridge,
reversal, tokenizer kind, optimizer, schedule) and shrink only sizes and data.
"""

from __future__ import annotations

import importlib.util

import pytest
from helpers.checkout import RECIPES, ROOT
from typer.testing import CliRunner

from nmt.cli.main import app
from nmt.decode.translate import Translator
from nmt.recipe.load import load_recipe

TOY = [
    "data.train={toy: numbers, split: train, size: 400}",
    "data.valid={toy: numbers, split: valid, size: 20}",
    "data.test={toy: numbers, split: test, size: 20}",
]


def cli(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.stdout  # stderr carries the log lines


def sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "attention", ["none", "bahdanau", "luong_dot", "luong_general", "luong_concat"]
)
@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_quickstart_trains_with_every_cell_and_attention(tmp_path, cell, attention):
    model = tmp_path / "model"
    cli(
        "train",
        str(RECIPES / "quickstart.yaml"),
        "--set",
        f"model.cell={cell}",
        "--set",
        f"model.attention={attention}",
        "--set",
        "train.max_steps=30",
        *sets(TOY),
        "--output-dir",
        str(model),
        "--device",
        "cpu",
    )
    saved = load_recipe(model / "recipe.yaml")
    assert (saved.model.cell, saved.model.attention) == (cell, attention)
    source = tmp_path / "in.txt"
    source.write_text("three red dogs sleep\n\ni see one cat\n", encoding="utf-8")
    out = cli("translate", str(source), "--model", str(model), "--device", "cpu")
    assert len(out.splitlines()) == 3 and out.splitlines()[1] == ""


SHRINK = [
    "model.embedding_size=16",
    "model.hidden_size=16",
    "model.encoder_hidden_size=16",
    "tokenizer.vocab_size=60",
    "train.batch_tokens=300",
    "train.max_steps=3",
    "train.eval_every=3",
    "decode.beam_size=3",
    *TOY,
]


@pytest.mark.parametrize(
    "name", ["sutskever2014_wmt14_en_fr", "bahdanau2015_rnnsearch", "luong2015_wmt14_en_de"]
)
def test_classic_recipe_trains_at_reduced_size(tmp_path, name):
    full = load_recipe(RECIPES / f"{name}.yaml")
    extra = ["tokenizer.target_vocab_size=50"] if full.tokenizer.target_vocab_size else []
    model = tmp_path / name
    cli(
        "train",
        str(RECIPES / f"{name}.yaml"),
        *sets([*SHRINK, *extra]),
        "--output-dir",
        str(model),
        "--device",
        "cpu",
    )
    translator = Translator.load(model, "cpu")
    small, net = translator.recipe, translator.model
    # The architecture is the paper's; only the sizes changed.
    for key in (
        "cell",
        "encoder_layers",
        "decoder_layers",
        "bidirectional",
        "reverse_input",
        "attention",
        "input_feeding",
        "bridge",
    ):
        assert getattr(small.model, key) == getattr(full.model, key), key
    assert net.encoder.rnn.num_layers == full.model.encoder_layers
    assert net.encoder.reverse_input == full.model.reverse_input
    assert (len(net.decoder.bridge_h) > 0) == (full.model.bridge == "linear")
    assert small.tokenizer.type == full.tokenizer.type == "word"
    assert (model / "src.vocab.txt").is_file() and (model / "tgt.vocab.txt").is_file()
    assert small.train.optimizer == full.train.optimizer
    assert len(translator.translate(["one red dog sleeps", ""])) == 2


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(RECIPES.glob("multi30k_*.yaml")), ids=lambda p: p.stem)
def test_multi30k_recipe_trains_at_reduced_size(tmp_path, path):
    full = load_recipe(path, ["data.use=local"])
    assert "multi30k" in str(full.data.train)  # the documented --set names the local files
    model = tmp_path / path.stem
    cli(
        "train",
        str(path),
        *sets([*SHRINK, "model.encoder_hidden_size=8"]),
        "--output-dir",
        str(model),
        "--device",
        "cpu",
    )
    assert load_recipe(model / "recipe.yaml").model.attention == full.model.attention


def ablation_variants() -> dict[str, list[str]]:
    spec = importlib.util.spec_from_file_location("ablation", ROOT / "benchmarks" / "ablation.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.VARIANTS


@pytest.mark.parametrize("name", list(ablation_variants()))
def test_ablation_variant_makes_a_valid_recipe(name):
    """What benchmarks/ablation.py loads before it trains each variant (not trained here)."""
    overrides = ablation_variants()[name]
    recipe = load_recipe(
        RECIPES / "multi30k_de_en.yaml",
        ["data.use=local", *overrides, "train.max_epochs=5", f"output_dir=runs/ablation/{name}"],
    )
    model = recipe.model
    assert f"model.attention={model.attention}" in overrides
    assert model.feeds_input == name.endswith("+feed")
    assert model.reverse_input == name.endswith("+reverse")
