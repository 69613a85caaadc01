"""Durable file writes: a crash or a power loss leaves the old file or the new one.

Every file nmt writes goes to a temporary name in the same directory, is flushed and
fsynced, and is renamed over its final name; the directory is fsynced after the rename
so that the rename itself survives a power loss. Files that cannot be renamed over (a
terminal, a FIFO, /dev/null, /dev/full) are written in place.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from nmt.errors import UserError


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new entry in `directory` durable (a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory
    finally:
        os.close(fd)


def temporary_name(path: Path) -> Path:
    """Where a file is written before it is renamed over `path`: `.NAME.tmp` beside it."""
    return path.with_name(f".{path.name}.tmp")


def replace_durably(tmp: Path, path: Path) -> None:
    """Rename a finished (closed) temporary file or directory over `path`, durably."""
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_bytes(path: Path, data: bytes) -> None:
    tmp = temporary_name(path)
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    replace_durably(tmp, path)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def finite_or_none(obj: Any) -> Any:
    """`obj` with every NaN or infinity replaced by None, so it is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj


def to_json(obj: Any, indent: int | None = None) -> str:
    """Strict JSON (no bare NaN or Infinity, which JSON does not have): those become null."""
    return json.dumps(finite_or_none(obj), indent=indent, ensure_ascii=False, allow_nan=False)


def write_json(path: Path, obj: Any) -> None:
    write_text(path, to_json(obj, indent=2) + "\n")


def append_jsonl(path: Path, obj: Any) -> None:
    """One strict-JSON line appended and fsynced (a line is never half there on resume:
    `read_jsonl` drops a torn last line)."""
    with path.open("a", encoding="utf-8") as f:
        f.write(to_json(obj) + "\n")
        f.flush()
        os.fsync(f.fileno())


MEND = "mend or delete that line (nothing was changed)"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The objects of a JSON-lines file (see `numbered_jsonl`)."""
    return [row for _, row in numbered_jsonl(path)]


def numbered_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each line of a JSON-lines file; blank lines are skipped.

    The last line, if it is not JSON (or not whole UTF-8), was cut off by a crash while it
    was appended, and is left out. Any other line that is not a JSON object is damage: a
    UserError names the file and the line, since leaving it out (or stopping there) would
    silently lose the evaluations written after it.
    """
    if not path.is_file():
        return []
    lines = path.read_bytes().split(b"\n")
    if not lines[-1].strip():
        lines.pop()  # the end of the last whole line
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            if number == len(lines):
                break  # torn by a crash while it was appended
            reason = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8"
            raise UserError(f"{path}: line {number} is damaged ({reason}); {MEND}") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}: line {number} is not a JSON object; {MEND}")
        rows.append((number, row))
    return rows


# A full disk, or a user's exhausted quota: the errors `refuse_disk_full` turns into one line.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def _disk_full_error(error: BaseException) -> BaseException | None:
    """The error in `error`'s chain (itself, what it was raised from or while handling)
    that says the disk (or the quota) is full, or None. Libraries wrap it: torch.save
    raises a RuntimeError while handling the OSError; safetensors a SafetensorError whose
    text ends "(os error 28)"."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL:
            return current
        if any(f"(os error {number})" in str(current) for number in DISK_FULL):
            return current
        hidden = current.__suppress_context__  # `raise ... from None` ends the chain
        current = current.__cause__ or (None if hidden else current.__context__)
    return None


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` comes of a full disk or an exhausted quota (ENOSPC, EDQUOT)."""
    return _disk_full_error(error) is not None


@contextlib.contextmanager
def refuse_disk_full(path: Path, kept: Callable[[], str], exact: bool = True) -> Iterator[None]:
    """Writes to `path` in the block: a full disk becomes one UserError that names `path`
    and says what is kept (`kept()`, asked only then); other errors pass unchanged. With
    `exact=False`, `path` is only where the block writes (a directory): the file the
    error names, if it names one, is named instead."""
    try:
        yield
    except UserError:
        raise  # already one line (a write labelled nearer to it, say)
    except Exception as e:
        found = _disk_full_error(e)
        if found is None:
            raise
        named = None if exact else getattr(found, "filename", None)
        raise UserError(f"{named or path}: cannot be written, the disk is full; {kept()}") from None


def is_regular(path: Path) -> bool:
    """True for a regular file or a name that does not exist yet (so a rename can make it)."""
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except FileNotFoundError:
        return True


def same_file(a: os.stat_result, b: os.stat_result) -> bool:
    """Two stat results of one file: the same device and inode (hard links included)."""
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


class LabelledWriter:
    """A text file whose write errors (a full disk, say) become one UserError naming it."""

    def __init__(self, file: IO[str], label: str):
        self.file, self.label = file, label

    def write(self, text: str) -> None:
        with _labelled(self.label, "writing failed"):
            self.file.write(text)

    def flush(self) -> None:
        with _labelled(self.label, "writing failed"):
            self.file.flush()


@contextlib.contextmanager
def _labelled(label: str, what: str) -> Iterator[None]:
    try:
        yield
    except OSError as e:
        raise UserError(f"{label}: {what} ({e.strerror or e})") from None


@contextlib.contextmanager
def atomic_output(path: Path, option: str) -> Iterator[LabelledWriter]:
    """A text file that replaces `path` only if the block finishes without an error.

    Until then the old file (if any) stays as it was; on an error the temporary file is
    removed. A symbolic link is written through (its target is replaced, the link kept);
    a special file (a FIFO, a device) is written in place. Failures to open, write or
    rename (a full disk, a directory without write permission) become a UserError naming
    `option` and the path; errors raised by the block itself pass unchanged.
    """
    label = f"{option} {path}"
    real = Path(os.path.realpath(path)) if path.is_symlink() else path
    direct = not is_regular(real)
    target = real if direct else temporary_name(real)
    with _labelled(label, "cannot be written"):
        f = target.open("w", encoding="utf-8")
    done = False
    try:
        yield LabelledWriter(f, label)
        with _labelled(label, "writing failed"):
            f.flush()
            if not direct:
                os.fsync(f.fileno())
            f.close()
            if not direct:
                replace_durably(target, real)
        done = True
    finally:
        if not f.closed:
            with contextlib.suppress(OSError):  # data that could not be written is dropped
                f.close()
        if not done and not direct:
            target.unlink(missing_ok=True)
