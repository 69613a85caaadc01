"""The one exception type for mistakes a user of the runtime can make and fix.

Like nmt's own `nmt.errors.UserError` (the runtime imports nothing of nmt): the message
is one line that names what the user gave (the directory, the file, the flag) and the fix;
the `nmt-runtime` command prints it and exits with status 1 instead of a traceback.
"""


class UserError(Exception):
    """A mistake in the user's input: an exported directory, a flag, a setting."""
