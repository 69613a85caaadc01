"""The decode settings printed beside a score (`nmt evaluate bleu --model`), so that a
reader knows how the translations it scores were searched."""

from __future__ import annotations

from typing import Any

from nmt.recipe.schema import DecodeConfig


def decode_summary(settings: DecodeConfig) -> dict[str, Any]:
    """The decode settings that change a score, to print beside it: the length penalty
    only where it is used (length_normalization gnmt), the coverage penalty where > 0, UNK
    replacement (and its dictionary) where on. `settings` may be nmt_runtime's (an
    exported directory), which has neither."""
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
    if getattr(settings, "coverage_penalty", 0) > 0:  # an exported model's settings: none
        keys.insert(keys.index("min_length"), "coverage_penalty")
    if getattr(settings, "replace_unk", False):
        keys += ["replace_unk"] + (["unk_dictionary"] if settings.unk_dictionary else [])
    return {k: getattr(settings, k) for k in keys}
