"""nmt: recurrent sequence-to-sequence neural machine translation in PyTorch.

The public Python API, the same path the CLI takes:

    from nmt import Translator, load_recipe, train

    results = train(load_recipe("recipes/quickstart.yaml"))     # what `nmt train` does
    results.test.bleu                                           # a TrainResults
    translator = Translator.load("runs/quickstart")
    translator.translate(["three red dogs sleep"], beam_size=5)

The names are imported on first use, so `import nmt.errors` (or the serving code) does
not load PyTorch until a model is needed. The packages, from the top: cli, serve and
report, training, decode, model and data, recipe, store, and the shared bottom (errors,
vocab, device, events, progress, metrics): docs/design.md draws the map.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name → the module that defines it
_PUBLIC = {
    "Translator": "nmt.decode.translate",
    "train": "nmt.training.setup",
    "TrainResults": "nmt.training.results",
    "load_recipe": "nmt.recipe.load",
    "Recipe": "nmt.recipe.schema",
    "score": "nmt.metrics",
    "UserError": "nmt.errors",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'nmt' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
