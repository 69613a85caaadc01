"""Warm start (`nmt train RECIPE --init-from RUN_DIR`): a new run that begins from a
trained model's weights and tokenizers, with a fresh optimizer, schedule and trainer
state, as OpenNMT-py's --train_from with --reset_optim, for continued training on new
data (fine-tuning).

The tokenizers must be the trained model's, or its embeddings would read other ids: the
new run takes RUN_DIR's tokenizer section and files (only `tokenizer.sampling`, a
training-time choice, stays the recipe's) and encodes the new data with them. The
model section must build the same shapes; anything else is one error naming both
directories and the keys that differ.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from nmt.errors import UserError
from nmt.recipe.load import load_recipe, recipe_to_dict
from nmt.recipe.schema import Recipe
from nmt.store import checkpoint
from nmt.store.layout import check_model_dir


def init_recipe(recipe: Recipe, init_from: Path) -> Recipe:
    """`recipe` with the tokenizer section of the model directory `init_from`."""
    trained = load_recipe(check_model_dir(init_from, "--init-from"))
    tokenizer = dataclasses.replace(trained.tokenizer, sampling=recipe.tokenizer.sampling)
    return dataclasses.replace(recipe, tokenizer=tokenizer)


def load_init_weights(model: torch.nn.Module, recipe: Recipe, init_from: Path) -> None:
    """Load `init_from`'s weights into `model`, or say which model keys differ."""
    weights = init_from / checkpoint.WEIGHTS
    try:
        checkpoint.check_shapes(weights, model)
    except UserError:
        trained = load_recipe(init_from / checkpoint.RECIPE).model
        ours, theirs = recipe_to_dict(recipe)["model"], dataclasses.asdict(trained)
        differ = [
            f"model.{k} ({theirs[k]} there, {v} here)" for k, v in ours.items() if theirs[k] != v
        ]
        raise UserError(
            f"--init-from {init_from}: its weights do not fit the model of {recipe.output_dir}'s "
            f"recipe ({', '.join(differ) or 'other vocabulary sizes'}); use the model section "
            f"of {init_from / checkpoint.RECIPE}"
        ) from None
    checkpoint.load_weights(weights, model, next(model.parameters()).device)
