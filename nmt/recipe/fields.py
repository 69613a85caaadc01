"""Per-field rules of recipe sections: `checked(default, test, rule)` and its shorthands.

A rule sits on a dataclass field as metadata, so each key's constraint is written once,
beside its default; `check_fields` applies the rules to a built section, whether its values
came from a recipe or were given later (decode options at translation time). nmt.recipe.load
re-exports these names.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import field, fields
from typing import Any

from nmt.errors import UserError
from nmt.recipe.reading import shown

# The optimizers step in float32, which ends at 3.4e38, and Adam's first step is the rate
# / (1 − β1) = 10 × the rate: a larger rate overflows there (a traceback, not a message).
# Any rate near this diverges at once, which the training loop then reports.
MAX_LEARNING_RATE = 1e37

# Model bounds, checked before anything is built (a recipe, --set, or a model directory's
# recipe.yaml). Layers: the deepest recurrent NMT, GNMT (Wu et al. 2016), stacked 8 and
# needed residual connections to train them, which nmt's plain stacks have none of
# (Sutskever and Luong used 4); 16 leaves room to try, while building 10^5 layers takes
# minutes even on the meta device. Sizes: published models use 1000-1024 units; at 16384
# one LSTM layer alone holds 2 billion parameters. The whole model, counted from the
# recipe (nmt.recipe.size), at most MAX_PARAMETERS: 8 GB of float32 weights, and about 4×
# that to train with Adam; the largest bundled recipe (sutskever2014) has 0.38 billion.
MAX_LAYERS = 16
MAX_SIZE = 16384
MAX_PARAMETERS = 2_000_000_000


def checked(default: Any, test: Callable[[Any], bool], rule: str) -> Any:
    """A field whose value, unless None, must pass `test`; errors quote `rule`."""
    return field(default=default, metadata={"test": test, "rule": rule})


def positive(default: Any) -> Any:
    return checked(default, lambda v: v > 0, "> 0")


def non_negative(default: Any) -> Any:
    return checked(default, lambda v: v >= 0, ">= 0")


def fraction(default: float, low_open: bool, high_open: bool) -> Any:
    rule = f"in {'(' if low_open else '['}0, 1{')' if high_open else ']'}"
    return checked(
        default,
        lambda v: (0 < v if low_open else 0 <= v) and (v < 1 if high_open else v <= 1),
        rule,
    )


def rate(default: float) -> Any:
    rule = f"in (0, {MAX_LEARNING_RATE:g}] (a larger rate overflows the optimizer's float32 step)"
    return checked(default, lambda v: 0 < v <= MAX_LEARNING_RATE, rule)


def size(default: int | None) -> Any:
    return checked(default, lambda v: 0 < v <= MAX_SIZE, f"in [1, {MAX_SIZE}]")


def layers(default: int) -> Any:
    rule = f"in [1, {MAX_LAYERS}] (deeper stacks without residual connections do not train)"
    return checked(default, lambda v: 0 < v <= MAX_LAYERS, rule)


def check_fields(section: Any, where: str, prefix: str) -> None:
    """Each field's own rule (`checked` above), for values from a recipe or given later.

    A ruled number must also be finite: inf passes `> 0` and NaN fails every rule unclearly.
    """
    for f in fields(section):
        value = getattr(section, f.name)
        if "test" not in f.metadata or value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(
                f"{where}: '{prefix}{f.name}' must be a finite number ({f.metadata['rule']}), "
                f"got {value}"
            )
        if not f.metadata["test"](value):
            raise UserError(
                f"{where}: '{prefix}{f.name}' must be {f.metadata['rule']}, got {shown(value)}"
            )
