"""How every verb ends on a user's mistake: one line on stderr and exit status 1.

Standard output that cannot be written (redirected to a full disk, `> /dev/full`, or a
pipe whose reader left) ends the same way, as `error: standard output: ...`, instead of
a traceback: while a verb runs, `sys.stdout` is a thin wrapper whose write errors are a
UserError of their own kind.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import typer

from nmt.errors import UserError

F = TypeVar("F", bound=Callable[..., Any])


class StdoutError(UserError):
    """Standard output cannot be written."""


def user_errors(command: F) -> F:
    """Turn a `UserError` raised by the library, or a failure to write standard output,
    into `error: ...` and a non-zero exit."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        real = sys.stdout
        if real is not None:  # None: no standard streams at all (pythonw)
            sys.stdout = _Stdout(real)
        try:
            result = command(*args, **kwargs)
            sys.stdout.flush()  # what is still buffered: a failure is reported, not lost
            return result
        except UserError as e:
            if isinstance(e, StdoutError):
                _drop_stdout(real)
            typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from None
        finally:
            sys.stdout = real

    return wrapper  # type: ignore[return-value]


class _Stdout:
    """`sys.stdout` while a verb runs: the same stream, with its write and flush errors
    (OSError) turned into a StdoutError. Everything else is the stream's own, so Typer's
    `echo` takes it as the text stream it is."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        with _labelled():
            return self._stream.write(text)

    def flush(self) -> None:
        with _labelled():
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def _labelled() -> Iterator[None]:
    try:
        yield
    except OSError as e:
        raise StdoutError(f"standard output: writing failed ({e.strerror or e})") from None


def _drop_stdout(stream: Any) -> None:
    """Point standard output's descriptor at /dev/null: what could not be written is
    dropped, and the interpreter's last flush at exit succeeds instead of printing a
    traceback of its own. (A test's in-memory stream has no descriptor: nothing to do.)"""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
