"""The one exception type for mistakes a user can make and fix.

Library code raises `UserError` with a message that names the file (or key) at fault and
says how to fix it; the CLI prints that single line and exits non-zero instead of showing
a traceback. Anything else that escapes is a bug in nmt and keeps its traceback.

`one_line` is nmt_runtime's (the torch-free runtime, shipped with nmt), whose server puts
its JSON errors on one line with it too: one way for both.
"""

from nmt_runtime.errors import one_line

__all__ = ["UserError", "one_line"]


class UserError(Exception):
    """A mistake in the user's input: a recipe, a corpus, a model directory, a flag."""
