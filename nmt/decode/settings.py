"""Scores users can trust: sacreBLEU's BLEU, chrF and TER, each with its signature.

Scores are computed on detokenized text against the raw reference, as sacreBLEU intends,
so they compare across toolkits. `compare` runs sacreBLEU's paired bootstrap resampling
(Koehn 2004), with ties counted, to say whether one system's lead over another is more
than luck, and `perplexity` measures how well a model predicts a reference translation.
"""

from __future__ import annotations

from typing import Any

from nmt.recipe.schema import DecodeConfig


def decode_summary(settings: DecodeConfig) -> dict[str, Any]:
    """The decode settings that change a score, to print beside it: the length penalty
    only where it is used (length_normalization gnmt)."""
    keys = [
        "beam_size",
        "length_normalization",
        "length_penalty",
        "min_length",
        "max_length_ratio",
        "max_length_offset",
        "max_input_length",
    ]
    if settings.length_normalization != "gnmt":
        keys.remove("length_penalty")
    return {k: getattr(settings, k) for k in keys}
