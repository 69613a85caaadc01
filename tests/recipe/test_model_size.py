"""nmt.recipe.size counts a recipe's parameters without building the model: the count must
be exactly what `build_model` builds, for every cell, attention, bridge, depth and way of
sharing weights, so the recipe check refuses what it should and nothing else."""

from __future__ import annotations

import itertools

import pytest

from nmt.model.seq2seq import build_model
from nmt.recipe.fields import MAX_PARAMETERS
from nmt.recipe.load import load_recipe
from nmt.recipe.schema import ModelConfig
from nmt.recipe.size import model_parameters, recipe_parameters


def built(cfg: ModelConfig, src: int, tgt: int) -> int:
    target_ids = list(range(tgt)) if cfg.share_embeddings and tgt != src else None
    model = build_model(cfg, src, tgt, target_ids=target_ids)
    return sum(p.numel() for p in model.parameters())  # a shared parameter once


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize(
    "attention", ["none", "bahdanau", "luong_dot", "luong_general", "luong_concat"]
)
def test_the_count_equals_the_built_model(cell, attention):
    options = itertools.product(
        ["linear", "zeros", "copy"], [True, False], [False, True], [False, True], [(1, 1), (2, 3)]
    )
    for bridge, bidirectional, share, tie, (enc, dec) in options:
        if (attention, bridge) == ("none", "zeros") or (bridge == "copy" and enc != dec):
            continue  # recipes the check refuses
        cfg = ModelConfig(
            cell=cell, embedding_size=12 if tie else 10, hidden_size=12, encoder_layers=enc,
            decoder_layers=dec, bidirectional=bidirectional, attention=attention, bridge=bridge,
            share_embeddings=share, tie_embeddings=tie,
        )  # fmt: skip
        for src, tgt in [(50, 50), (50, 30)]:
            assert model_parameters(cfg, src, tgt) == built(cfg, src, tgt), (cfg, src, tgt)


def test_input_feeding_off_is_counted():
    cfg = ModelConfig(embedding_size=8, hidden_size=12, input_feeding=False)
    assert model_parameters(cfg, 40, 30) == built(cfg, 40, 30)


def test_every_bundled_recipe_is_within_the_limit(quickstart):
    for path in sorted(quickstart.parent.glob("*.yaml")):
        assert 0 < recipe_parameters(load_recipe(path)) < MAX_PARAMETERS / 4, path.name
