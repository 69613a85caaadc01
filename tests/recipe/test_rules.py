"""nmt.recipe.rules on its own: `check_recipe` passes a bundled recipe, and a rule that
involves two keys, broken after the recipe was built, is one line naming where and both
keys (recipe loading runs the same checks: tests/recipe/test_config.py)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from nmt.errors import UserError
from nmt.recipe.load import load_recipe
from nmt.recipe.rules import check_model_size, check_recipe


def test_a_bundled_recipe_passes(quickstart):
    check_recipe(load_recipe(quickstart), "quickstart.yaml")


def test_a_rule_across_two_keys_names_both_and_where(quickstart):
    recipe = load_recipe(quickstart)
    model = dataclasses.replace(
        recipe.model, tie_embeddings=True, embedding_size=recipe.model.hidden_size + 2
    )
    broken = dataclasses.replace(recipe, model=model)
    expected = "my.yaml: model.tie_embeddings needs model.embedding_size == model.hidden_size"
    with pytest.raises(UserError, match="^" + re.escape(expected)):
        check_recipe(broken, "my.yaml")


def test_a_model_too_large_names_the_keys_that_make_it_large(quickstart):
    recipe = load_recipe(quickstart)
    huge = dataclasses.replace(recipe.model, hidden_size=200_000, embedding_size=200_000)
    with pytest.raises(UserError, match=r"^my\.yaml: the model would have .*'model\.hidden_size'"):
        check_model_size(dataclasses.replace(recipe, model=huge), "my.yaml")
