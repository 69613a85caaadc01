"""The one exception type for mistakes a user of the runtime can make and fix.

Like nmt's own `nmt.errors.UserError` (the runtime imports nothing of nmt): the message
is one line that names what the user gave (the directory, the file, the flag) and the fix;
the `nmt-runtime` command prints it and exits with status 1 instead of a traceback.
"""


class UserError(Exception):
    """A mistake in the user's input: an exported directory, a flag, a setting."""


def one_line(text: object, limit: int = 10_000) -> str:
    """`text` (a message, or an exception from a library) as one line, whitespace runs
    (newlines too) made one space: what a UserError, a log line or a JSON error body quotes.
    Only the first `limit` characters are read, as a parser's error can quote a whole file.
    nmt.errors re-exports it: one way for the toolkit and the runtime alike."""
    return " ".join(str(text)[:limit].split())
