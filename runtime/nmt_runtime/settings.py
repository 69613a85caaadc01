"""Decode settings: the model's defaults (decode.json, the recipe's decode section) and the
per-call overrides, checked by the same rules as nmt's recipes.

The field names are nmt's (`nmt.recipe.schema.DecodeConfig`), so search reads either
kind of object: nmt's own commands hand the runtime nmt's checked DecodeConfig.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nmt_runtime.errors import UserError

MAX_BEAM = 100  # as nmt.recipe.schema: a beam past 100 is a mistake, not a setting
MAX_LENGTH_PENALTY = 10.0
NORMALIZATIONS = ("none", "average", "gnmt")


@dataclass(frozen=True)
class DecodeSettings:
    beam_size: int = 5  # 1: greedy
    length_penalty: float = 0.6  # GNMT α, for length_normalization gnmt
    length_normalization: str = "gnmt"  # none | average | gnmt
    max_length_ratio: float = 2.0  # output may be this many times the source...
    max_length_offset: int = 5  # ...plus this many tokens
    min_length: int = 1  # tokens before </s> may be produced
    batch_tokens: int = 8000  # source tokens per translation batch
    max_input_length: int | None = 300  # longer sources are cut (counted); None: never

    def replace(self, **options: Any) -> DecodeSettings:
        """These settings with the given ones (those not None) replaced, checked."""
        known = {f.name for f in dataclasses.fields(self)}
        for key in options:
            if key not in known:
                choices = ", ".join(sorted(known))
                raise UserError(f"{key}: not a decode setting; use one of {choices}")
        chosen = {k: v for k, v in options.items() if v is not None}
        settings = dataclasses.replace(self, **chosen)
        settings.check()
        return settings

    def check(self) -> None:
        """One UserError naming the first setting out of its range."""
        rules = [
            ("beam_size", _int(self.beam_size) and 1 <= self.beam_size <= MAX_BEAM,
             f"give 1 (greedy) to {MAX_BEAM}"),
            ("length_normalization", self.length_normalization in NORMALIZATIONS,
             f"give one of {', '.join(NORMALIZATIONS)}"),
            ("length_penalty", _number(self.length_penalty)
             and 0 <= self.length_penalty <= MAX_LENGTH_PENALTY,
             f"give 0 to {MAX_LENGTH_PENALTY:g} (0.6 is usual)"),
            ("max_length_ratio", _number(self.max_length_ratio) and self.max_length_ratio > 0,
             "give a number above 0"),
            ("max_length_offset", _int(self.max_length_offset) and self.max_length_offset >= 0,
             "give 0 or more"),
            ("min_length", _int(self.min_length) and self.min_length >= 0, "give 0 or more"),
            ("batch_tokens", _int(self.batch_tokens) and self.batch_tokens > 0, "give 1 or more"),
            ("max_input_length", self.max_input_length is None
             or (_int(self.max_input_length) and self.max_input_length > 0),
             "give 1 or more, or null (never cut)"),
        ]  # fmt: skip
        for name, ok, fix in rules:
            if not ok:
                raise UserError(f"decode setting {name} {getattr(self, name)!r}: {fix}")


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return _int(value) or (isinstance(value, float) and math.isfinite(value))


def read(path: Path) -> DecodeSettings:
    """The decode defaults an exported directory holds, checked."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        settings = DecodeSettings(**{k: v for k, v in raw.items() if not k.startswith("_")})
    except (OSError, UnicodeDecodeError, ValueError, TypeError):
        raise UserError(
            f"{path}: not the decode settings nmt export writes; export the model again"
        ) from None
    try:
        settings.check()
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return settings
