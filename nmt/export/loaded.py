"""nmt's own commands (`nmt translate`, `nmt evaluate bleu`) translating with an exported
directory: `load_translator` hands back nmt_runtime's Translator for one, nmt's own
(nmt.decode.translate) for model directories.

    translator = load_translator([Path("exported/quickstart")], "auto", "fp32", threads=2)

The runtime's Translator answers what those commands ask of nmt's (`search`,
`search_settings`, `translate`, `decode_config`, `size`, `truncated`), and gives the same
translations as PyTorch for an fp32 export; `recipe` carries what they read of a recipe
(the languages, the decode settings), since an exported directory has none.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from nmt.decode.translate import Translator
from nmt.device import Precision
from nmt.errors import UserError
from nmt.store.exported import INSTALL, exported_model


def load_translator(
    model_dirs: Sequence[Path],
    device: str = "auto",
    precision: Precision = "fp32",
    threads: int | None = None,
) -> Any:
    """A Translator for `model_dirs`: nmt_runtime's for one exported directory (on the CPU,
    at the precision it was exported with), nmt's own otherwise."""
    first = exported_model(
        model_dirs,
        device,
        precision,
        "--model {first} is an exported directory, which translates alone",
    )
    if first is None:
        return Translator.load(list(model_dirs), device, precision)
    try:
        from nmt_runtime.translator import Translator as RuntimeTranslator
    except ImportError as e:
        raise UserError(
            f"--model {first}: translating an exported directory needs {e.name}, which is "
            f"not installed: {INSTALL}"
        ) from None
    return ExportedTranslator(_nmt_errors(RuntimeTranslator.load)(first, threads=threads))


def _nmt_errors(function: Callable[..., Any]) -> Callable[..., Any]:
    """`function`, raising the runtime's UserError as nmt's (which the CLI reports)."""
    from nmt_runtime.errors import UserError as RuntimeUserError

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except RuntimeUserError as e:
            raise UserError(str(e)) from None

    return call


class ExportedTranslator:
    """nmt_runtime's Translator as nmt's commands use it: its methods raise nmt's
    UserError, and `recipe` holds the languages and decode settings they read."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.recipe = SimpleNamespace(
            data=SimpleNamespace(source_lang=inner.source_lang, target_lang=inner.target_lang),
            decode=inner.decode,
        )

    def decode_config(self, settings: Any = None, **overrides: Any) -> Any:
        """The runtime's decode settings of one call (`_no_coverage` first)."""
        return _nmt_errors(self.inner.decode_config)(settings, **_no_coverage(overrides))

    def search_settings(self, *args: Any, **overrides: Any) -> Any:
        """The runtime's check of a search request (`_no_coverage` first)."""
        return _nmt_errors(self.inner.search_settings)(*args, **_no_coverage(overrides))

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.inner, name)  # attributes (truncated, size) read live
        return _nmt_errors(value) if callable(value) else value


def _no_coverage(overrides: dict[str, Any]) -> dict[str, Any]:
    """The overrides without coverage_penalty, replace_unk and unk_dictionary, which
    nmt_runtime does not have: None, 0 or false (not asked) is dropped, more is refused in
    one line rather than ignored."""
    beta = overrides.pop("coverage_penalty", None)
    if beta:
        raise UserError(
            f"--coverage-penalty {beta:g}: an exported model has no coverage penalty; "
            "translate with the model directory, or give 0"
        )
    replace, dictionary = overrides.pop("replace_unk", None), overrides.pop("unk_dictionary", None)
    if replace or dictionary:
        flag = "--replace-unk" if replace else f"--unk-dictionary {dictionary}"
        raise UserError(
            f"{flag}: an exported model gives no attention to copy source words by; "
            "translate with the model directory"
        )
    return overrides
