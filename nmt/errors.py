"""The one exception type for mistakes a user can make and fix.

Library code raises `UserError` with a message that names the file (or key) at fault and
says how to fix it; the CLI prints that single line and exits non-zero instead of showing
a traceback. Anything else that escapes is a bug in nmt and keeps its traceback.
"""


class UserError(Exception):
    """A mistake in the user's input: a recipe, a corpus, a model directory, a flag."""


def one_line(text: object, limit: int = 10_000) -> str:
    """`text` (a message, or an exception from a library) as one line, whitespace runs
    (newlines too) made one space: what a UserError, a log line or a JSON error body quotes.
    Only the first `limit` characters are read, as a parser's error can quote a whole file."""
    return " ".join(str(text)[:limit].split())
