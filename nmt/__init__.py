"""nmt: recurrent sequence-to-sequence neural machine translation in PyTorch.

The Python entry point for translation is `Translator`; training goes through
`nmt.train.train(load_recipe(...))`, which is what `nmt train` calls.
"""

from nmt.config import Recipe, load_recipe
from nmt.errors import UserError
from nmt.translate import Translator

__version__ = "0.1.0"
__all__ = ["Recipe", "Translator", "UserError", "load_recipe", "__version__"]
