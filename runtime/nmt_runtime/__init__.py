"""nmt_runtime: translate with a model that `nmt export` wrote, without PyTorch.

    from nmt_runtime import Translator
    translator = Translator.load("exported/quickstart", threads=2)
    translator.translate(["three red dogs sleep"], beam_size=5)

It needs numpy, onnxruntime and sentencepiece, and imports nothing of torch or nmt. The
search is nmt's (nmt.decode.search), rewritten in numpy: the same translations and the
same scores as PyTorch for an fp32 export. Names are imported on first use, so reading a
manifest (`nmt_runtime.manifest`) does not load onnxruntime.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "Translator": "nmt_runtime.translator",
    "Translation": "nmt_runtime.translator",
    "DecodeSettings": "nmt_runtime.settings",
    "UserError": "nmt_runtime.errors",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'nmt_runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
