"""The one exception type for mistakes a user can make and fix.

Library code raises `UserError` with a message that names the file (or key) at fault and
says how to fix it; the CLI prints that single line and exits non-zero instead of showing
a traceback. Anything else that escapes is a bug in nmt and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input: a recipe, a corpus, a model directory, a flag."""
